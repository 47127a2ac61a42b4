"""get-audit-log (Search-AdminAuditLog): who changed what, oldest first."""

from datetime import datetime, time

from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from devices.models import AuditEvent

from . import CliError, add_verb
from .output import add_format_option, render

FIELDS = (
    "time",
    "actor",
    "source",
    "action",
    "object_type",
    "object_id",
    "object_repr",
    "before",
    "after",
    "message",
    "client_ip",
    "request_id",
)
TABLE = ("time", "actor", "source", "action", "object_repr", "message")


def register(verbs) -> None:
    p = add_verb(verbs, "get-audit-log", get_audit_log, "Show the audit log, oldest first.")
    p.add_argument(
        "--since",
        metavar="WHEN",
        help="ISO date or date-time, e.g. 2025-03-01 or 2025-03-01T14:30;"
        " without a UTC offset it is local time",
    )
    p.add_argument("--actor", metavar="NAME", help="login name, or cli, system, gate...")
    p.add_argument(
        "--action",
        metavar="ACTION",
        help="e.g. rule.create, or rule for every rule.* action",
    )
    p.add_argument(
        "--limit", type=int, metavar="N", help="only the N most recent events (still oldest first)"
    )
    add_format_option(p)


def parse_since(value: str) -> datetime:
    try:
        when = parse_datetime(value.strip())
        if when is None:
            day = parse_date(value.strip())
            when = datetime.combine(day, time.min) if day else None
    except ValueError:  # well-formed but impossible, e.g. 2025-02-30
        when = None
    if when is None:
        raise CliError(f"--since takes an ISO date or date-time, not {value!r}.")
    return timezone.make_aware(when) if timezone.is_naive(when) else when


def event_row(event: AuditEvent) -> dict:
    return {
        "time": event.time,
        "actor": event.actor_name,
        "source": event.source,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "object_repr": event.object_repr,
        "before": event.before,
        "after": event.after,
        "message": event.message,
        "client_ip": event.client_ip,
        "request_id": event.request_id,
    }


def get_audit_log(out, args) -> None:
    events = AuditEvent.objects.all()
    if args.since is not None:
        events = events.filter(time__gte=parse_since(args.since))
    if args.actor is not None:
        events = events.filter(actor_name__iexact=args.actor.strip())
    if args.action is not None:
        action = args.action.strip()
        events = events.filter(Q(action=action) | Q(action__startswith=f"{action}."))
    if args.limit is not None:
        if args.limit < 1:
            raise CliError("--limit must be 1 or more.")
        newest = events.order_by("-time", "-id")[: args.limit]
        rows = reversed([event_row(e) for e in newest])
    else:
        rows = (event_row(e) for e in events.order_by("time", "id").iterator(chunk_size=2000))
    render(out, rows, args.format, fields=FIELDS, table=TABLE, empty="No audit events.")
