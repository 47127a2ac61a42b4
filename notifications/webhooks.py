"""Chat webhooks: each quarantine posted to Slack-compatible or Microsoft Teams channels.

ECP_WEBHOOK_URLS lists incoming-webhook URLs (checked at start-up, ecp.env).
A post is an outbox row like a mail (channel "webhook"): written in the
transaction of the state change, delivered by the same tasks with retries and
backoff, shown on the Sent page. The row never holds the URL, which is a
secret: `target` names it by a hash, `recipient` shows its host. A URL taken
off the list fails its rows.

Slack-compatible (Slack, Mattermost, Rocket.Chat): {"text": ..., "blocks": [...]}.
Teams: a message with one Adaptive Card (incoming webhooks and Workflows).
"""

import hashlib
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from django.conf import settings
from django.utils import timezone
from django.utils.timesince import timesince
from django.utils.translation import gettext as _

from ecp.env import split_webhook

from .rendering import with_urls

USER_AGENT = "ECP-webhook/1"


@dataclass(frozen=True)
class Webhook:
    url: str
    flavor: str  # slack or teams

    @property
    def key(self) -> str:
        return hashlib.sha256(self.url.encode()).hexdigest()[:16]

    @property
    def label(self) -> str:
        """What the Sent page shows: the flavor, the host and the key, never the path."""
        host = urlsplit(self.url).hostname or "?"
        return f"{self.flavor} webhook {host} #{self.key[:8]}"[:254]


def configured() -> list[Webhook]:
    hooks = []
    for entry in settings.ECP_WEBHOOK_URLS:
        flavor, url = split_webhook(entry)
        hooks.append(Webhook(url, flavor))
    return hooks


def by_key(key: str) -> Webhook | None:
    return next((h for h in configured() if h.key == key), None)


# --- the message ---------------------------------------------------------------------


def _device_label(device: dict) -> str:
    label = device.get("marketing_name") or device.get("device_model") or ""
    label = label or device.get("device_type") or _("device")
    return label


def summary(kind: str, context: dict, now: datetime | None = None) -> dict:
    """The words of a post, the same for both flavors."""
    ctx = with_urls(context)
    device, mailbox = ctx.get("device", {}), ctx.get("mailbox", {})
    links = ctx.get("links", {})
    waiting = ""
    if device.get("state_changed_at"):
        since = datetime.fromisoformat(device["state_changed_at"])
        waiting = timesince(since, now or timezone.now())
    title = _("Device in quarantine: %(device)s of %(user)s") % {
        "device": _device_label(device),
        "user": mailbox.get("display_name") or mailbox.get("alias", ""),
    }
    if kind == "webhook-test":
        title = _("ECP test message: this channel receives quarantined devices")
    facts = [
        (_("User"), f"{mailbox.get('display_name', '')} <{mailbox.get('email', '')}>"),
        (_("Device"), _device_label(device)),
        (_("DeviceId"), device.get("device_id", "")),
        (_("OS"), device.get("device_os") or _("not reported yet")),
        (_("Waiting"), waiting or "-"),
    ]
    buttons = []
    if links.get("allow_url"):
        buttons.append((_("Allow"), links["allow_url"], "primary"))
    if links.get("block_url"):
        buttons.append((_("Block"), links["block_url"], "danger"))
    if device.get("page_url"):
        buttons.append((_("Open in ECP"), device["page_url"], ""))
    elif ctx.get("quarantine_url"):
        buttons.append((_("Open the quarantine list"), ctx["quarantine_url"], ""))
    return {"title": title, "facts": facts, "buttons": buttons}


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(words: dict) -> dict:
    fallback = words["title"] + "".join(f"\n{k}: {v}" for k, v in words["facts"])
    fallback += "".join(f"\n{label}: {url}" for label, url, _style in words["buttons"])
    blocks = [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": f"*{_slack_escape(words['title'])}*"},
        },
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*{_slack_escape(k)}*\n{_slack_escape(v)}"}
                for k, v in words["facts"]
            ],
        },
    ]
    if words["buttons"]:
        elements = []
        for label, url, style in words["buttons"]:
            button = {"type": "button", "text": {"type": "plain_text", "text": label}, "url": url}
            if style:
                button["style"] = style
            elements.append(button)
        blocks.append({"type": "actions", "elements": elements})
    return {"text": fallback, "blocks": blocks}


def teams_payload(words: dict) -> dict:
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "text": words["title"], "weight": "Bolder", "wrap": True},
            {
                "type": "FactSet",
                "facts": [{"title": k, "value": v} for k, v in words["facts"]],
            },
        ],
        "actions": [
            {"type": "Action.OpenUrl", "title": label, "url": url}
            | ({"style": "destructive" if style == "danger" else "positive"} if style else {})
            for label, url, style in words["buttons"]
        ],
    }
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card,
            }
        ],
    }


def payload(hook: Webhook, kind: str, context: dict) -> tuple[str, dict]:
    """(a one-line subject for the Sent page, the JSON body to post)."""
    words = summary(kind, context)
    body = teams_payload(words) if hook.flavor == "teams" else slack_payload(words)
    return words["title"], body


SAMPLE_CONTEXT = {
    "device": {
        "device_id": "SAMPLE0123456789",
        "device_type": "iPhone",
        "device_model": "iPhone16C1",
        "marketing_name": "iPhone 15 Pro (sample)",
        "device_os": "iOS 17.5 21F79",
    },
    "mailbox": {"alias": "jdoe", "display_name": "Jane Doe (sample)", "email": "jdoe@example.org"},
    "quarantine_path": "/devices/quarantine/",
}


# --- the post --------------------------------------------------------------------------


class WebhookError(Exception):
    def __init__(self, message: str, *, transient: bool, retry_after: int | None = None):
        super().__init__(message)
        self.transient = transient
        self.retry_after = retry_after


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A webhook that redirects is misconfigured: never re-post (or turn a POST into a GET)."""

    def redirect_request(self, *args, **kwargs):
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def post(hook: Webhook, body: dict, *, idempotency_key: str) -> int:
    """POST the JSON body; the HTTP status on 2xx, else WebhookError (transient or not)."""
    data = json.dumps(body).encode()
    # The URL is one of ECP_WEBHOOK_URLS, checked at start-up to be http(s) (ecp.env).
    request = urllib.request.Request(  # noqa: S310
        hook.url,
        data=data,
        method="POST",
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": USER_AGENT,
            # Receivers that know the header drop a repeated post (at-least-once delivery).
            "Idempotency-Key": idempotency_key,
        },
    )
    try:
        with _opener.open(request, timeout=settings.ECP_WEBHOOK_TIMEOUT) as response:
            response.read(65536)
            return response.status
    except urllib.error.HTTPError as exc:
        code = exc.code
        retry_after = exc.headers.get("Retry-After", "") if exc.headers else ""
        transient = code == 429 or code >= 500 or code == 408
        raise WebhookError(
            f"HTTP {code} {exc.reason}",
            transient=transient,
            retry_after=int(retry_after) if retry_after.isdigit() else None,
        ) from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise WebhookError(f"{type(exc).__name__}: {reason}", transient=True) from None


def send_test(hook: Webhook):
    """Post the sample to one webhook now, through the outbox (so it shows on the Sent
    page): the row and the delivery's outcome. A transient failure stays pending, and
    the outbox retries it like any other."""
    import uuid

    from . import delivery
    from .models import Channel, Kind, Notification

    row = Notification.objects.create(
        kind=Kind.WEBHOOK_TEST,
        recipient=hook.label,
        channel=Channel.WEBHOOK,
        target=hook.key,
        context=SAMPLE_CONTEXT,
        dedupe_key=f"{Kind.WEBHOOK_TEST}:{hook.key}:{uuid.uuid4().hex}",
    )
    outcome = delivery.deliver(row.pk)
    row.refresh_from_db()
    return row, outcome
