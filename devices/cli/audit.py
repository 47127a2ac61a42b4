"""get-audit-log (Search-AdminAuditLog): who changed what, oldest first.

The filters are the audit page's: actor, action, object, a date range, plus
the source (the door: ui, cli, api, gate, system, self-service, directory, mail-link).
"""

import re
from datetime import datetime, time, timedelta

from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from devices.models import AuditEvent, AuditSource

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
_TYPE_AND_ID = re.compile(r"(?P<type>[A-Za-z_]\w*)/(?P<id>[^/\s]+)")


def register(verbs) -> None:
    p = add_verb(verbs, "get-audit-log", get_audit_log, "Show the audit log, oldest first.")
    p.add_argument(
        "--since",
        metavar="WHEN",
        help="from this ISO date or date-time on, e.g. 2025-03-01 or 2025-03-01T14:30;"
        " without a UTC offset it is local time",
    )
    p.add_argument(
        "--until",
        metavar="WHEN",
        help="up to this ISO date (that whole day included) or before this date-time",
    )
    p.add_argument("--actor", metavar="NAME", help="login name, or cli, system, gate...")
    p.add_argument(
        "--action",
        metavar="ACTION",
        help="e.g. rule.create, or rule for every rule.* action",
    )
    p.add_argument(
        "--object",
        metavar="TEXT",
        help="part of the object's name (e.g. a DeviceId or an alias, any case),"
        " or TYPE/ID such as MobileDevice/42",
    )
    p.add_argument(
        "--source",
        metavar="SOURCE",
        help=f"only changes made through this door: {', '.join(AuditSource.values)}",
    )
    p.add_argument(
        "--limit", type=int, metavar="N", help="only the N most recent events (still oldest first)"
    )
    add_format_option(p)


def parse_when(value: str, option: str = "--since") -> tuple[datetime, bool]:
    """The instant an ISO date or date-time names, and whether it was a date only."""
    # The date first: parse_datetime also reads a bare date, as midnight.
    try:
        day = parse_date(value.strip())
        when = datetime.combine(day, time.min) if day else parse_datetime(value.strip())
    except ValueError:  # well-formed but impossible, e.g. 2025-02-30
        day = when = None
    if when is None:
        raise CliError(f"{option} takes an ISO date or date-time, not {value!r}.")
    return (timezone.make_aware(when) if timezone.is_naive(when) else when), day is not None


def parse_since(value: str) -> datetime:
    return parse_when(value, "--since")[0]


def parse_until(value: str) -> datetime:
    """The end of the range, exclusive: the next midnight for a date, else the instant."""
    when, is_day = parse_when(value, "--until")
    if is_day:
        when = timezone.make_aware(datetime.combine(when.date() + timedelta(days=1), time.min))
    return when


def object_filter(text: str) -> Q:
    text = text.strip()
    if not text:
        raise CliError("--object must not be empty.")
    match = Q(object_repr__icontains=text) | Q(object_type__iexact=text)
    typed = _TYPE_AND_ID.fullmatch(text)
    if typed:
        match |= Q(object_type__iexact=typed["type"], object_id=typed["id"])
    return match


def parse_source(value: str) -> str:
    for source in AuditSource.values:
        if value.strip().lower() == source:
            return source
    raise CliError(f"Unknown source {value!r}: use one of {', '.join(AuditSource.values)}.")


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
    if args.until is not None:
        events = events.filter(time__lt=parse_until(args.until))
    if args.source is not None:
        events = events.filter(source=parse_source(args.source))
    if args.object is not None:
        events = events.filter(object_filter(args.object))
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
