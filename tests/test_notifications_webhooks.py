"""Chat webhooks (issue 18) against a real HTTP server on a free loopback port.

Each quarantine posts to every URL in ECP_WEBHOOK_URLS through the outbox:
Slack-compatible ({"text", "blocks"}) or Teams (an Adaptive Card); a failing
server is retried with backoff and never holds up mail; a row is posted once.
"""

import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail
from django.core.management.base import CommandError
from django.utils import timezone

from devices import actions
from devices.audit import Actor
from devices.models import AccessLevel, AuditSource
from ecp.env import ConfigError, envwebhooks, split_webhook
from notifications import delivery, outbox, tasks, webhooks
from notifications.models import Channel, Kind, Notification, Status
from tests.cli_support import eas

GATE = Actor(source=AuditSource.GATE)


class ChatServer:
    """A webhook receiver: records every POST; answers from a script of status codes."""

    def __init__(self):
        self.posts: list[tuple[str, dict, dict]] = []
        self.script: list[int] = []
        self.delay = 0.0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                server.posts.append((self.path, dict(self.headers), body))
                if server.delay:
                    time.sleep(server.delay)
                code = server.script.pop(0) if server.script else 200
                self.send_response(code)
                if code == 429:
                    self.send_header("Retry-After", "120")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def paths(self) -> list[str]:
        return [p for p, _h, _b in self.posts]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def chat(settings):
    server = ChatServer()
    settings.ECP_WEBHOOK_URLS = [server.url("/slack"), "teams:" + server.url("/teams")]
    settings.ECP_WEBHOOK_TIMEOUT = 2
    yield server
    server.close()


@pytest.fixture
def quarantined(db, cli_actor):
    actions.set_org_settings(
        cli_actor,
        default_access_level=AccessLevel.QUARANTINE,
        admin_mail_recipients=["helpdesk@example.org"],
    )
    box = actions.create_mailbox(
        cli_actor, alias="jdoe", email="jdoe@example.org", display_name="Jane Doe"
    ).obj

    def connect(device_id="JANEPHONE1"):
        return actions.record_contact(
            GATE,
            box,
            actions.Contact(
                device_id=device_id, device_type="iPhone", info={"model": "iPhone16,1"}
            ),
        )

    return connect


def hook_rows():
    return Notification.objects.filter(channel=Channel.WEBHOOK).order_by("recipient")


def make_due(row):
    Notification.objects.filter(pk=row.pk).update(next_attempt_at=timezone.now())


def test_each_quarantine_posts_once_to_every_webhook(chat, quarantined):
    device = quarantined()
    rows = list(hook_rows())
    assert [r.kind for r in rows] == [Kind.WEBHOOK_QUARANTINED] * 2
    # The URL (a secret) is not stored; the label names the host and the key.
    for row in rows:
        assert "/slack" not in row.recipient and "/teams" not in row.recipient
        assert row.recipient.startswith(("slack webhook 127.0.0.1", "teams webhook 127.0.0.1"))
        assert delivery.deliver(row.pk).status == "sent"
        assert delivery.deliver(row.pk).status == "skipped"  # posted once
    assert sorted(chat.paths()) == ["/slack", "/teams"]
    slack = next(b for p, _h, b in chat.posts if p == "/slack")
    assert "Jane Doe" in slack["text"] and device.device_id in slack["text"]
    buttons = next(b for b in slack["blocks"] if b["type"] == "actions")["elements"]
    assert [b["text"]["text"] for b in buttons] == ["Allow", "Block", "Open in ECP"]
    assert all(b["url"].startswith("http://127.0.0.1:8000/") for b in buttons)
    assert "/links/" in buttons[0]["url"] and "/links/" in buttons[1]["url"]
    facts = {f["text"].split("\n")[0] for f in slack["blocks"][1]["fields"]}
    assert {"*User*", "*Device*", "*Waiting*"} <= facts
    teams = next(b for p, _h, b in chat.posts if p == "/teams")
    card = teams["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["content"]["type"] == "AdaptiveCard"
    assert [a["type"] for a in card["content"]["actions"]] == ["Action.OpenUrl"] * 3
    assert any(f["title"] == "Waiting" for f in card["content"]["body"][1]["facts"])
    sent = Notification.objects.get(pk=rows[0].pk)
    assert sent.status == Status.SENT and json.loads(sent.body_text)


def test_the_same_transition_never_posts_twice(chat, quarantined):
    quarantined()
    quarantined()  # the phone retries: no new transition, no new row
    assert hook_rows().count() == 2
    tasks.deliver_pending_now()
    tasks.deliver_pending_now()
    assert sorted(chat.paths()) == ["/slack", "/teams"]


def test_a_failing_webhook_is_retried_with_backoff(chat, quarantined, settings):
    settings.ECP_MAIL_BACKOFF_BASE = 30
    chat.script = [500, 503]
    quarantined()
    row = hook_rows().get(recipient__startswith="slack")
    outcome = delivery.deliver(row.pk)
    assert outcome.status == "retry" and 15 <= outcome.retry_in <= 30
    row.refresh_from_db()
    assert (row.status, row.attempts) == (Status.PENDING, 1)
    assert "HTTP 500" in row.last_error and row.next_attempt_at > timezone.now()
    assert delivery.deliver(row.pk).status == "skipped"  # not due yet: not posted
    assert chat.paths() == ["/slack"]
    make_due(row)
    second = delivery.deliver(row.pk)
    assert second.status == "retry" and 30 <= second.retry_in <= 60  # doubled
    make_due(row)
    assert delivery.deliver(row.pk).status == "sent"
    assert chat.paths() == ["/slack"] * 3
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_error) == (Status.SENT, 3, "")


def test_retry_after_is_honoured(chat, quarantined):
    chat.script = [429]
    quarantined()
    row = hook_rows().get(recipient__startswith="slack")
    assert delivery.deliver(row.pk).retry_in >= 120


def test_a_client_error_fails_without_retries(chat, quarantined):
    chat.script = [404]
    quarantined()
    row = hook_rows().get(recipient__startswith="slack")
    assert delivery.deliver(row.pk).status == "failed"
    row.refresh_from_db()
    assert row.status == Status.FAILED and "HTTP 404" in row.last_error


def test_a_silent_webhook_times_out_and_waits_for_a_retry(chat, quarantined, settings):
    settings.ECP_WEBHOOK_TIMEOUT = 1
    chat.delay = 2
    quarantined()
    row = hook_rows().get(recipient__startswith="slack")
    assert delivery.deliver(row.pk).status == "retry"
    row.refresh_from_db()
    assert row.status == Status.PENDING and "timed out" in row.last_error.lower()


def test_a_failing_webhook_never_blocks_mail(chat, quarantined):
    chat.script = [500] * 10
    quarantined()
    counts = tasks.deliver_pending_now()
    assert counts["sent"] >= 2 and counts["retry"] == 2  # user and admin mail went out
    recipients = sorted(m.to[0] for m in mail.outbox)
    assert recipients == ["helpdesk@example.org", "jdoe@example.org"]
    assert not Notification.objects.filter(channel=Channel.MAIL).exclude(status=Status.SENT)


def test_webhooks_are_queued_apart_from_mails(
    chat, quarantined, django_capture_on_commit_callbacks
):
    from unittest import mock

    with (
        mock.patch.object(tasks.send_notification, "delay") as single,
        mock.patch.object(tasks.send_batch, "delay") as batch,
        django_capture_on_commit_callbacks(execute=True),
    ):
        quarantined()
    single_ids = {c.args[0] for c in single.call_args_list}
    hooks = set(hook_rows().values_list("pk", flat=True))
    assert hooks <= single_ids and not batch.called
    # The sweep keeps them apart too, however many are due.
    Notification.objects.update(created_at=timezone.now() - timedelta(minutes=5))
    with (
        mock.patch.object(outbox, "queue") as mails,
        mock.patch.object(outbox, "queue_each") as each,
    ):
        tasks.sweep()
    assert set(each.call_args.args[0]) == hooks
    assert not hooks & set(mails.call_args.args[0])


def test_a_url_taken_off_the_list_fails_its_rows(chat, quarantined, settings):
    quarantined()
    settings.ECP_WEBHOOK_URLS = []
    row = hook_rows().first()
    assert delivery.deliver(row.pk).status == "failed"
    row.refresh_from_db()
    assert "no longer in ECP_WEBHOOK_URLS" in row.last_error and chat.posts == []


def test_resend_posts_a_webhook_again(chat, quarantined, cli_actor):
    quarantined()
    row = hook_rows().get(recipient__startswith="teams")
    delivery.deliver(row.pk)
    copy = actions.resend_notification(cli_actor, row).obj
    assert (copy.channel, copy.target) == (Channel.WEBHOOK, row.target)
    delivery.deliver(copy.pk)
    assert chat.paths() == ["/teams", "/teams"]


def test_the_sent_page_shows_webhook_posts(chat, quarantined, client, django_user_model):
    quarantined()
    delivery.deliver(hook_rows().first().pk)
    admin = django_user_model.objects.create_superuser("root", "r@example.org", "pw")
    client.force_login(admin)
    page = client.get("/notifications/?channel=webhook").content.decode()
    assert "Chat webhook" in page and "webhook 127.0.0.1" in page
    assert "/slack" not in page and "/teams" not in page
    assert "Chat: device quarantined" in page
    mails = client.get("/notifications/?channel=mail").content.decode()
    assert "webhook 127.0.0.1" not in mails and "jdoe@example.org" in mails


def test_the_backlog_counts_webhooks_apart(chat, quarantined):
    quarantined()
    backlog = outbox.backlog_by_channel()
    assert backlog == {"mail": 2, "webhook": 2}


def test_eas_test_webhook_sends_one_sample_each(chat, db):
    out = eas("test-webhook")
    assert out.count(": sent") == 2
    assert sorted(chat.paths()) == ["/slack", "/teams"]
    slack = next(b for p, _h, b in chat.posts if p == "/slack")
    assert "test message" in slack["text"]
    rows = Notification.objects.filter(kind=Kind.WEBHOOK_TEST, status=Status.SENT)
    assert rows.count() == 2


def test_eas_test_webhook_fails_when_a_post_fails(chat, db):
    chat.script = [500]
    with pytest.raises(CommandError, match="1 of 2 webhook"):
        eas("test-webhook")


def test_eas_test_webhook_without_urls(settings, db):
    settings.ECP_WEBHOOK_URLS = []
    with pytest.raises(CommandError, match="ECP_WEBHOOK_URLS is not set"):
        eas("test-webhook")


# --- ECP_WEBHOOK_URLS at start-up ---------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("ftp://hooks.example.org/x", "is not an https:// URL"),
        ("hooks.slack.com/services/T0/B0/x", "is not an https:// URL"),
        ("http://hooks.example.org/x", "plain http"),
        ("https://user:pw@hooks.example.org/x", "user name or password"),
        ("https://hooks.example.org:99999/x", "is not a URL"),
        ("https://hooks.example.org/a b", "ECP_WEBHOOK_URLS"),
        ("https://a.example.org/x,https://a.example.org/x", "the same URL twice"),
    ],
)
def test_bad_webhook_urls_stop_the_start_up(monkeypatch, value, problem):
    monkeypatch.setenv("ECP_WEBHOOK_URLS", value)
    with pytest.raises(ConfigError, match=problem):
        envwebhooks("ECP_WEBHOOK_URLS")


def test_good_webhook_urls_and_their_flavors(monkeypatch):
    monkeypatch.setenv(
        "ECP_WEBHOOK_URLS",
        "https://hooks.slack.com/services/T0/B0/x, https://contoso.webhook.office.com/w/1,"
        "teams:https://relay.example.org/t, http://127.0.0.1:9000/local",
    )
    urls = envwebhooks("ECP_WEBHOOK_URLS")
    assert [split_webhook(u)[0] for u in urls] == ["slack", "teams", "teams", "slack"]
    assert split_webhook(urls[2])[1] == "https://relay.example.org/t"
    monkeypatch.delenv("ECP_WEBHOOK_URLS")
    assert envwebhooks("ECP_WEBHOOK_URLS") == []


def test_a_bad_url_stops_manage_py_with_a_clear_error(tmp_path, monkeypatch):
    from tests.cli_support import run_eas

    monkeypatch.setenv("ECP_WEBHOOK_URLS", "http://hooks.example.org/x")
    done = run_eas(tmp_path, "get-org-settings")
    assert done.returncode != 0
    assert "ECP_WEBHOOK_URLS: 'http://hooks.example.org/x' is plain http" in done.stderr


def test_slack_text_is_escaped():
    words = webhooks.summary(
        Kind.WEBHOOK_QUARANTINED,
        {"device": {"device_type": "<b>x</b>"}, "mailbox": {"display_name": "A & B"}},
    )
    payload = webhooks.slack_payload(words)
    assert "&lt;b&gt;x&lt;/b&gt;" in payload["blocks"][0]["text"]["text"]
    assert "A &amp; B" in payload["blocks"][0]["text"]["text"]
