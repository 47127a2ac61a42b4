"""Filters for the mail templates: contexts carry times as ISO strings (JSON)."""

from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.timesince import timesince

register = template.Library()


def _parse(value) -> datetime | None:
    if isinstance(value, datetime):
        return value
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed)


@register.filter
def when(value) -> str:
    """'2026-12-03 15:40 UTC' in the server's time zone; "" for no time."""
    parsed = _parse(value) if value else None
    if parsed is None:
        return ""
    local = timezone.localtime(parsed)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


@register.filter
def waited(value) -> str:
    """How long since then, as the mail is sent: '2 hours, 5 minutes'; "" for no time."""
    parsed = _parse(value) if value else None
    if parsed is None:
        return ""
    return timesince(parsed, timezone.now()).replace("\xa0", " ")
