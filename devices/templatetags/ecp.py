"""Template helpers for the ECP pages: the signed-in role, state badges, sort links."""

from django import template
from django.conf import settings
from django.utils.html import format_html
from django.utils.http import urlencode

from .. import hostile
from ..models import AccessState
from ..permissions import (
    Role,
    can_manage_devices,
    can_manage_rules,
    can_manage_settings,
    role_for,
)
from ..views import wording
from ..views.counts import waiting_count

register = template.Library()

_BADGES = {
    AccessState.ALLOWED: "text-bg-success",
    AccessState.BLOCKED: "text-bg-danger",
    AccessState.QUARANTINED: "text-bg-warning",
    AccessState.DEVICE_DISCOVERY: "text-bg-info",
    AccessState.UNKNOWN: "text-bg-secondary",
}


@register.simple_tag(takes_context=True)
def ecp_nav(context) -> dict:
    """What the navigation shows to this user; one COUNT for the quarantine badge."""
    request = context.get("request")
    user = getattr(request, "user", None)
    role = role_for(user)
    staff = role in (Role.ORG_MANAGEMENT, Role.HELP_DESK)
    return {
        "role": role,
        "role_label": role.label if role != Role.NONE else "",
        "staff": staff,
        "org": role == Role.ORG_MANAGEMENT,
        "can_manage": can_manage_devices(user) if user else False,
        "can_rules": can_manage_rules(user) if user else False,
        "can_settings": can_manage_settings(user) if user else False,
        "quarantined": waiting_count(request) if staff else 0,
    }


@register.filter(is_safe=False)
def neutral(value) -> str:
    """Stored text shown safely: controls and bidi overrides become a visible U+FFFD
    (devices.hostile; what was stored before the gate refused them)."""
    return hostile.neutral(value)


@register.filter
def model_and_name(device, empty="—") -> str:
    """'iPhone 14 Pro (iPhone15C2)': the marketing name beside the code, or the code alone."""
    code = hostile.neutral(device.device_model or "")
    name = device.marketing_name
    if not name:
        return code or empty
    return format_html(
        '{} <span class="text-body-secondary small ecp-model-code">({})</span>',
        name,
        code or "model from its user agent",
    )


@register.filter
def device_name(device) -> str:
    """What people call the device: its friendly name, marketing name, model or type."""
    return hostile.neutral(
        device.friendly_name
        or device.marketing_name
        or device.device_model
        or device.device_type
        or "Device"
    )


@register.filter
def change_words(event) -> str:
    """'by helpdesk in the control panel', 'when the device synced' (views.wording)."""
    return wording.change_words(event)


@register.filter
def action_words(action: str) -> str:
    """'Device details changed' for device.update (views.wording.ACTION_WORDS)."""
    return wording.action_words(action)


@register.filter
def state_badge(state: str) -> str:
    return _BADGES.get(state, "text-bg-secondary")


@register.filter
def state_label(state: str) -> str:
    try:
        return AccessState(state).label
    except ValueError:
        return state


@register.simple_tag
def sort_href(sort_query: str, key: str, current: str) -> str:
    """The link of a sortable column header: toggles between key and -key."""
    if current == key:
        key = f"-{key}"
    query = f"{sort_query}&" if sort_query else ""
    return f"?{query}{urlencode({'sort': key})}"


@register.simple_tag
def sort_state(key: str, current: str) -> str:
    """aria-sort value of a column."""
    if current == key:
        return "ascending"
    if current == f"-{key}":
        return "descending"
    return "none"


@register.simple_tag
def page_href(query: str, number: int) -> str:
    prefix = f"{query}&" if query else ""
    return f"?{prefix}page={number}"


@register.simple_tag
def language_name(code: str) -> str:
    """'Deutsch' for de: a language named in itself, as settings.LANGUAGES does."""
    return dict(settings.LANGUAGES).get(code, code)


# -- forms: the error next to its field, a summary with links at the top ----------------


@register.filter
def field_anchor(field) -> str:
    """The id a summary link points to: the input itself, or a radio group's first button."""
    return field.id_for_label or (f"{field.auto_id}_0" if field.auto_id else "")


@register.simple_tag
def field_control(field, css: str = "form-control") -> str:
    """The field's input with Bootstrap's classes, marked invalid and tied to its error."""
    attrs = {"class": f"{css} is-invalid" if field.errors else css}
    if field.errors:
        attrs["aria-describedby"] = f"{field.auto_id}_error"
        attrs["aria-invalid"] = "true"
    return field.as_widget(attrs=attrs)


@register.simple_tag
def error_count(form) -> int:
    return sum(len(errors) for errors in form.errors.values())
