"""Render a mail from templates named by convention.

emails/<kind>-subject.txt, emails/<kind>-body.txt and emails/<kind>-body.html,
with the stored context plus absolute links: every `*_path` key in the context
(at any depth) gains a sibling `*_url` built on ECP_BASE_URL.

The context's `language` (a code of settings.LANGUAGES) and `time_zone` (an IANA
name) say in which language and zone the mail is written; a missing or unknown
one gives the default language (settings.LANGUAGE_CODE) and zone (settings.TIME_ZONE).
"""

import re
import zoneinfo

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone, translation

from .links import absolute_url

# What no mail shows raw: C0 and C1 controls (a body keeps tab and line breaks),
# DEL, the line and paragraph separators, bidi overrides and isolates. The same
# set as devices.hostile, which this app may not import. Each becomes U+FFFD.
_ALWAYS = "\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_UNSAFE_IN_BODY = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f{_ALWAYS}]")
_UNSAFE_IN_SUBJECT = re.compile(f"[\x00-\x1f{_ALWAYS}]")
REPLACEMENT = "\ufffd"


def safe_subject(subject: str) -> str:
    """One line, no control or bidi character, at most 300 characters."""
    return _UNSAFE_IN_SUBJECT.sub(REPLACEMENT, " ".join(subject.split()))[:300]


def _with_urls(value):
    if isinstance(value, str):
        # Stored before the gate refused such characters, or typed by an admin.
        return _UNSAFE_IN_BODY.sub(REPLACEMENT, value)
    if isinstance(value, dict):
        out = {k: _with_urls(v) for k, v in value.items()}
        for key, item in value.items():
            if key.endswith("_path") and isinstance(item, str):
                out[key[: -len("_path")] + "_url"] = absolute_url(item)
        return out
    if isinstance(value, list):
        return [_with_urls(v) for v in value]
    return value


def mail_language(value) -> str:
    """A supported language code for `value`; the default language for anything else."""
    try:
        return translation.get_supported_language_variant(str(value or ""))
    except LookupError:
        return settings.LANGUAGE_CODE


def mail_time_zone(value):
    """The zone `value` names, else None (the server's zone, settings.TIME_ZONE)."""
    try:
        return zoneinfo.ZoneInfo(str(value)) if value else None
    except (ValueError, zoneinfo.ZoneInfoNotFoundError):
        return None


with_urls = _with_urls  # the webhooks' messages read the same links


def render(kind: str, context: dict) -> tuple[str, str, str]:
    """(subject, text body, HTML body) for a notification kind and its context."""
    ctx = _with_urls(context)
    language = mail_language(context.get("language"))
    with (
        translation.override(language),
        timezone.override(mail_time_zone(context.get("time_zone"))),
    ):
        subject = render_to_string(f"emails/{kind}-subject.txt", ctx)
        subject = safe_subject(subject)
        text = render_to_string(f"emails/{kind}-body.txt", ctx)
        html = render_to_string(f"emails/{kind}-body.html", ctx)
    return subject, text, html
