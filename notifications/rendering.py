"""Render a mail from templates named by convention.

emails/<kind>-subject.txt, emails/<kind>-body.txt and emails/<kind>-body.html,
with the stored context plus absolute links: every `*_path` key in the context
(at any depth) gains a sibling `*_url` built on ECP_BASE_URL.
"""

import re

from django.template.loader import render_to_string

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


with_urls = _with_urls  # the webhooks' messages read the same links


def render(kind: str, context: dict) -> tuple[str, str, str]:
    """(subject, text body, HTML body) for a notification kind and its context."""
    ctx = _with_urls(context)
    subject = render_to_string(f"emails/{kind}-subject.txt", ctx)
    subject = safe_subject(subject)
    text = render_to_string(f"emails/{kind}-body.txt", ctx)
    html = render_to_string(f"emails/{kind}-body.html", ctx)
    return subject, text, html
