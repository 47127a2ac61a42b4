"""Organisation settings: the default access level (with a preview), mail, discovery,
the lifecycle (purge, self-approval) and grandfathering today's devices."""

from collections import Counter

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.db.models import F
from django.db.models.fields.json import KT
from django.http import HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext
from django.views.decorators.http import require_GET, require_POST

from .. import actions
from ..audit import SYSTEM
from ..forms import OrgSettingsForm
from ..models import AccessState, AuditEvent
from ..permissions import (
    SETTINGS_READ_ONLY,
    can_manage_settings,
    get_org_settings_for_user,
    staff_required,
)
from ..web import actor_for
from .previews import FIRST, preview_context, preview_csv_response
from .wording import describe_counts, plural, sentence

SETTINGS_URL = "/settings/"


def last_level_change() -> AuditEvent | None:
    """The latest settings change that switched the default access level."""
    return (
        AuditEvent.objects.filter(action="org_settings.update")
        .alias(
            level_before=KT("before__default_access_level"),
            level_after=KT("after__default_access_level"),
        )
        .exclude(level_before=F("level_after"))
        .order_by("-time", "-id")
        .first()
    )


def grandfather_count() -> int:
    """How many devices grandfathering would put on their mailbox's allowed list now."""
    return actions.grandfather_devices(SYSTEM, dry_run=True).count


def _render(request, form, org, **extra):
    if not can_manage_settings(request.user):
        for field in form.fields.values():
            field.disabled = True
    return render(
        request,
        "devices/org_settings.html",
        {
            "form": form,
            "org": org,
            "can_change": can_manage_settings(request.user),
            "read_only_reason": SETTINGS_READ_ONLY,
            "level_change": last_level_change(),
            "grandfather_count": grandfather_count(),
            **extra,
        },
    )


def _cuts_off(counts: Counter) -> int:
    """Allowed devices that the switch would quarantine or block."""
    return sum(
        n
        for (before, after), n in counts.items()
        if before == AccessState.ALLOWED and after in (AccessState.QUARANTINED, AccessState.BLOCKED)
    )


def _grandfathered(result) -> str:
    return (
        f"Grandfathered {plural(result.count)}: their DeviceIds are on their mailbox's "
        "allowed list, so they keep syncing whatever the default."
    )


@login_required
@staff_required
def org_settings(request):
    org = get_org_settings_for_user(request)
    if request.method != "POST":
        return _render(request, OrgSettingsForm(initial=OrgSettingsForm.initial_from(org)), org)
    org = get_org_settings_for_user(request, change=True)
    form = OrgSettingsForm(request.POST)
    if not form.is_valid():
        return _render(request, form, org)
    changes = form.set_org_settings_kwargs()
    level = changes["default_access_level"]
    if level != org.default_access_level and request.POST.get("confirm_level") != level:
        found = actions.preview_org_settings_devices(default_access_level=level, first=FIRST)
        counts = found.counts
        phrases = describe_counts(counts)
        csv_url = (
            f"{reverse('org-settings-preview-csv')}?{urlencode({'default_access_level': level})}"
        )
        return _render(
            request,
            form,
            org,
            confirm={
                "level": level,
                "sentence": f"Switching to {level} {sentence(phrases)} now.",
                "phrases": phrases,
                "total": sum(n for (a, b), n in counts.items() if a != b),
                "cut_off": _cuts_off(counts),
                "preview": preview_context(found, csv_url=csv_url),
            },
        )
    grandfather_first = level != org.default_access_level and "grandfather_first" in request.POST
    before = actions.org_snapshot(org)
    actor = actor_for(request)
    try:
        # Both or neither: grandfathering alone is not what was asked for.
        with transaction.atomic():
            grandfathered = actions.grandfather_devices(actor) if grandfather_first else None
            result = actions.set_org_settings(actor, **changes)
    except actions.ActionError as e:
        form.add_error(None, str(e))
        return _render(request, form, org)
    after = actions.org_snapshot(result.obj)
    changed = [
        OrgSettingsForm.base_fields[name].label.split(" (")[0].lower()
        for name in OrgSettingsForm.FIELDS
        if before[name] != after[name]
    ]
    if not changed:
        messages.info(request, gettext("Nothing to save: the settings were already like this."))
        return redirect(SETTINGS_URL)
    text = f"Organisation settings saved ({', '.join(changed)} changed)."
    if grandfathered is not None:
        text = f"{_grandfathered(grandfathered)} {text}"
    if before["default_access_level"] != after["default_access_level"]:
        text += (
            f" Default access level changed from {before['default_access_level']} to "
            f"{after['default_access_level']}."
        )
    moved = Counter(
        (t.from_state, t.to_state) for t in result.transitions if t.from_state != t.to_state
    )
    if moved:
        text += f" {actions.describe_changes(moved)}."
    messages.success(request, text)
    return redirect(SETTINGS_URL)


@require_GET
@login_required
@staff_required
def org_settings_preview_csv(request):
    """Every device a new default access level would move, as CSV."""
    get_org_settings_for_user(request, change=True)
    try:
        found = actions.preview_org_settings_devices(
            default_access_level=request.GET.get("default_access_level", ""), first=0
        )
    except actions.ActionError as e:
        return HttpResponseBadRequest(
            f"No preview: {e}\n", content_type="text/plain; charset=utf-8"
        )
    return preview_csv_response(found, request, "default-access-level-preview")


@require_POST
@login_required
@staff_required
def grandfather(request):
    """Put every device allowed by the default on its mailbox's allowed list."""
    get_org_settings_for_user(request, change=True)
    try:
        result = actions.grandfather_devices(actor_for(request))
    except actions.ActionError as e:
        messages.error(request, gettext("Nothing was grandfathered: %(error)s") % {"error": e})
    else:
        if result.count:
            messages.success(request, _grandfathered(result))
        else:
            messages.info(
                request, gettext("No device is allowed by the default: nothing to grandfather.")
            )
    return redirect(SETTINGS_URL)
