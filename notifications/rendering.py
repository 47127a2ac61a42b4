"""Render a mail from templates named by convention.

emails/<kind>-subject.txt, emails/<kind>-body.txt and emails/<kind>-body.html,
with the stored context plus absolute links: every `*_path` key in the context
(at any depth) gains a sibling `*_url` built on ECP_BASE_URL.
"""

from django.template.loader import render_to_string

from .links import absolute_url


def _with_urls(value):
    if isinstance(value, dict):
        out = {k: _with_urls(v) for k, v in value.items()}
        for key, item in value.items():
            if key.endswith("_path") and isinstance(item, str):
                out[key[: -len("_path")] + "_url"] = absolute_url(item)
        return out
    if isinstance(value, list):
        return [_with_urls(v) for v in value]
    return value


def render(kind: str, context: dict) -> tuple[str, str, str]:
    """(subject, text body, HTML body) for a notification kind and its context."""
    ctx = _with_urls(context)
    subject = render_to_string(f"emails/{kind}-subject.txt", ctx)
    subject = " ".join(subject.split())[:300]
    text = render_to_string(f"emails/{kind}-body.txt", ctx)
    html = render_to_string(f"emails/{kind}-body.html", ctx)
    return subject, text, html
