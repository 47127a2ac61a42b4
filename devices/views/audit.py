"""The audit log (Search-AdminAuditLog): who changed what, through which door.

Newest first, paged by keyset (the time and id of the last row seen), so a
page costs one query however long the log grows; no COUNT over the whole log.
The CSV export streams every matching event with the same filters.
"""

import json
from datetime import UTC, datetime, timedelta

from django.contrib.auth.decorators import login_required
from django.db.models import Count, IntegerField, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from .. import csv_export
from ..forms import AUDIT_ACTIONS, PAGE_SIZES, AuditFilterForm
from ..models import AuditEvent, AuditSource, DeviceStateChange
from ..permissions import can_manage_policies, can_manage_rules, staff_required
from ..web import warn_about_page_size

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CSV_COLUMNS = (
    "time",
    "actor",
    "source",
    "client_ip",
    "request_id",
    "action",
    "object_type",
    "object_repr",
    "message",
    "before",
    "after",
)
# Objects an event's link would no longer find.
GONE = ("device.remove", "device.purge", "rule.delete", "policy.delete", "org_device_id.remove")


def cursor_of(event) -> str:
    return f"{(event.time - EPOCH) // timedelta(microseconds=1)}_{event.pk}"


def parse_cursor(value: str):
    """(time, id) from cursor_of(), or None for anything else."""
    try:
        micros, pk = (int(part) for part in value.split("_"))
        return EPOCH + timedelta(microseconds=micros), pk
    except (ValueError, OverflowError):
        return None


def with_change_counts(events):
    """Each event's number of state changes, counted in the list query itself.

    A correlated COUNT per row of the page, rather than a join with GROUP BY,
    which would aggregate the whole filtered log before the LIMIT.
    """
    changes = (
        DeviceStateChange.objects.filter(event=OuterRef("pk"))
        .order_by()
        .values("event")
        .annotate(n=Count("id"))
        .values("n")
    )
    return events.annotate(n_changes=Coalesce(Subquery(changes, output_field=IntegerField()), 0))


def _page(events, request, size: int) -> dict:
    """One keyset page, newest first: `before` pages to older events, `after` to newer."""
    before = parse_cursor(request.GET.get("before", ""))
    after = parse_cursor(request.GET.get("after", "")) if before is None else None
    if after is not None:
        t, pk = after
        rows = list(
            events.filter(Q(time__gt=t) | Q(time=t, id__gt=pk)).order_by("time", "id")[: size + 1]
        )
        has_newer = len(rows) > size
        rows = rows[:size][::-1]
        has_older = True
    else:
        if before is not None:
            t, pk = before
            events = events.filter(Q(time__lt=t) | Q(time=t, id__lt=pk))
        rows = list(events.order_by("-time", "-id")[: size + 1])
        has_older = len(rows) > size
        rows = rows[:size]
        has_newer = before is not None
    return {
        "rows": rows,
        "older": cursor_of(rows[-1]) if rows and has_older else "",
        "newer": cursor_of(rows[0]) if rows and has_newer else "",
        "paged": before is not None or after is not None,
    }


def _short(value) -> str:
    if value in (None, "", []):
        return "—"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "…"


def differences(before, after) -> list[str]:
    """'default_access_level: Allow → Quarantine' for each key an update changed."""
    if not isinstance(before, dict) or not isinstance(after, dict):
        return []
    lines = []
    for key in [*before, *(k for k in after if k not in before)]:
        if before.get(key) != after.get(key):
            lines.append(f"{key}: {_short(before.get(key))} → {_short(after.get(key))}")
    return lines


def object_link(event, *, can_rules: bool) -> str:
    """The page of the event's object, when it has one and still may."""
    if not event.object_id or event.action in GONE:
        return ""
    if event.object_type == "MobileDevice":
        return f"/devices/{event.object_id}/"
    if event.object_type == "Mailbox":
        return f"/mailboxes/{event.object_id}/"
    if event.object_type == "DeviceAccessRule":
        return f"/rules/{event.object_id}/edit" if can_rules else f"/rules/#rule-{event.object_id}"
    if event.object_type == "AccessPolicy":
        return f"/policies/#policy-{event.object_id}"
    if event.object_type == "OrgSettings":
        return "/settings/"
    return ""


@require_GET
@login_required
@staff_required
def audit_list(request):
    form = AuditFilterForm(request.GET, auto_id="a-%s")
    events = with_change_counts(form.filter(AuditEvent.objects.all()))
    warn_about_page_size(request)
    page = _page(events, request, form.value("per_page"))
    can_rules = can_manage_rules(request.user)
    for event in page["rows"]:
        event.changes = differences(event.before, event.after)
        event.link = object_link(event, can_rules=can_rules)
    params = request.GET.copy()
    for name in ("before", "after"):
        params.pop(name, None)
    return render(
        request,
        "devices/audit.html",
        {
            "form": form,
            "page": page,
            "query": params.urlencode(),
            "sources": AuditSource.choices,
            "actions": AUDIT_ACTIONS,
            "page_sizes": PAGE_SIZES,
            "per_page": form.value("per_page"),
            "can_policies": can_manage_policies(request.user),
        },
    )


class _Echo:
    """The CSV writer writes into this; each row goes straight to the response."""

    def write(self, value):
        return value


def _json(value) -> str:
    return "" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def csv_rows(events):
    # Every cell through csv_export: a DeviceId or request id is device-supplied.
    writer = csv_export.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for e in events.iterator(chunk_size=1000):
        yield writer.writerow(
            [
                e.time.astimezone(UTC).isoformat(),
                e.actor_name,
                e.source,
                e.client_ip or "",
                e.request_id,
                e.action,
                e.object_type,
                e.object_repr,
                e.message,
                _json(e.before),
                _json(e.after),
            ]
        )


@require_GET
@login_required
@staff_required
def audit_export(request):
    """Every event the filters select, oldest first, as CSV (streamed).

    A bad filter is refused rather than left out: an export of more than was
    asked for is worse than none.
    """
    form = AuditFilterForm(request.GET)
    if not form.is_valid():
        problems = " ".join(e for errors in form.errors.values() for e in errors)
        return HttpResponseBadRequest(
            f"Nothing exported: {problems}\n", content_type="text/plain; charset=utf-8"
        )
    events = form.filter(AuditEvent.objects.all()).order_by("time", "id")
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(csv_rows(events), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.csv"'
    return response
