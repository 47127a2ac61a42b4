"""Organisation settings: the default access level (with a preview), mail, discovery."""

from collections import Counter

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render

from .. import actions
from ..forms import OrgSettingsForm
from ..permissions import (
    SETTINGS_READ_ONLY,
    can_manage_settings,
    get_org_settings_for_user,
    staff_required,
)
from ..web import actor_for
from .wording import describe_counts, sentence

SETTINGS_URL = "/settings/"


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
            **extra,
        },
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
        counts = actions.preview_org_settings(default_access_level=level)
        phrases = describe_counts(counts)
        return _render(
            request,
            form,
            org,
            confirm={
                "level": level,
                "sentence": f"Switching to {level} {sentence(phrases)} now.",
                "phrases": phrases,
                "total": sum(n for (a, b), n in counts.items() if a != b),
            },
        )
    before = actions.org_snapshot(org)
    try:
        result = actions.set_org_settings(actor_for(request), **changes)
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
        messages.info(request, "Nothing to save: the settings were already like this.")
        return redirect(SETTINGS_URL)
    text = f"Organisation settings saved ({', '.join(changed)} changed)."
    if before["default_access_level"] != after["default_access_level"]:
        text += (
            f" Default access level {before['default_access_level']} -> "
            f"{after['default_access_level']}."
        )
    moved = Counter(
        (t.from_state, t.to_state) for t in result.transitions if t.from_state != t.to_state
    )
    if moved:
        text += f" {actions.describe_changes(moved)}."
    messages.success(request, text)
    return redirect(SETTINGS_URL)
