"""The dashboard: counts per access state, who waits longest, new partnerships per day."""

from datetime import datetime, time, timedelta

from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.db.models.functions import TruncDate
from django.shortcuts import redirect, render
from django.utils import timezone

from ..models import AccessState, MobileDevice
from ..permissions import RULES_READ_ONLY, can_manage_devices, can_manage_rules, is_staff_role

CHART_DAYS = 30
# The chart's drawing area, in SVG user units (the SVG scales to its container).
CHART_WIDTH, CHART_HEIGHT, CHART_TOP, CHART_BOTTOM = 600, 180, 16, 24


def _per_day(now) -> list[dict]:
    """New partnerships on each of the last CHART_DAYS days (today included), oldest first."""
    tz = timezone.get_current_timezone()
    today = timezone.localdate(now)
    start_day = today - timedelta(days=CHART_DAYS - 1)
    start = timezone.make_aware(datetime.combine(start_day, time.min), tz)
    counts = dict(
        MobileDevice.objects.filter(first_seen__gte=start)
        .annotate(day=TruncDate("first_seen", tzinfo=tz))
        .order_by()
        .values("day")
        .annotate(n=Count("id"))
        .values_list("day", "n")
    )
    return [
        {"day": start_day + timedelta(days=i), "n": counts.get(start_day + timedelta(days=i), 0)}
        for i in range(CHART_DAYS)
    ]


def chart(days: list[dict]) -> dict:
    """Bar geometry for the inline SVG chart: no JavaScript, no library."""
    peak = max([d["n"] for d in days] + [1])
    plot_h = CHART_HEIGHT - CHART_TOP - CHART_BOTTOM
    slot = CHART_WIDTH / len(days)
    bars = []
    for i, d in enumerate(days):
        h = round(plot_h * d["n"] / peak, 1)
        bars.append(
            {
                **d,
                "x": round(i * slot + 2, 1),
                "y": round(CHART_TOP + plot_h - h, 1),
                "w": round(slot - 4, 1),
                "h": h,
                "label_x": round(i * slot + slot / 2, 1),
                "show_label": (len(days) - 1 - i) % 7 == 0,  # weekly, ending today
            }
        )
    return {
        "bars": bars,
        "peak": peak,
        "total": sum(d["n"] for d in days),
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "baseline": CHART_HEIGHT - CHART_BOTTOM,
        "label_y": CHART_HEIGHT - 6,
        "top": CHART_TOP,
    }


@login_required
def dashboard(request):
    if not is_staff_role(request.user):
        return redirect("/my/devices/")
    now = timezone.now()
    by_state = dict(
        MobileDevice.objects.order_by()
        .values("access_state")
        .annotate(n=Count("id"))
        .values_list("access_state", "n")
    )
    states = [
        {"value": value, "label": label, "n": by_state.get(value, 0)}
        for value, label in AccessState.choices
    ]
    waiting = list(
        MobileDevice.objects.filter(access_state=AccessState.QUARANTINED)
        .select_related("mailbox")
        .order_by("state_changed_at", "id")[:5]
    )
    return render(
        request,
        "devices/dashboard.html",
        {
            "states": states,
            "total": sum(by_state.values()),
            "quarantined": by_state.get(AccessState.QUARANTINED, 0),
            "oldest": waiting[0] if waiting else None,
            "waiting": waiting,
            "chart": chart(_per_day(now)),
            "now": now,
            "can_manage": can_manage_devices(request.user),
            "can_rules": can_manage_rules(request.user),
            "rules_read_only": RULES_READ_ONLY,
            "next": request.get_full_path(),
        },
    )
