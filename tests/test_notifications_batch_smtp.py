"""A batch of outbox rows goes out over one SMTP connection (a real server on loopback)."""

import socket

import pytest
from aiosmtpd.controller import Controller

from ecp.celery import app
from notifications import tasks
from notifications.models import Kind, Notification, Status
from tests.test_notifications_delivery import CONTEXT


class Sink:
    """Counts SMTP sessions and keeps each message's recipients and Message-ID."""

    def __init__(self, refuse: str = ""):
        self.sessions = 0
        self.messages: list[tuple[list[str], str]] = []
        self.refuse = refuse  # a recipient whose mail gets a transient 451

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server, session, envelope):
        if self.refuse in envelope.rcpt_tos:
            return "451 4.3.0 try again later"
        message_id = ""
        for line in envelope.content.decode("utf-8", "replace").splitlines():
            if line.lower().startswith("message-id:"):
                message_id = line.split(":", 1)[1].strip()
        self.messages.append((list(envelope.rcpt_tos), message_id))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp(settings):
    def start(sink: Sink):
        controller = Controller(sink, hostname="127.0.0.1", port=_free_port())
        controller.start()
        started.append(controller)
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
        return sink

    started: list[Controller] = []
    saved = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield start
    app.conf.task_always_eager = saved
    for controller in started:
        controller.stop()


def _rows(n: int) -> list[int]:
    return [
        Notification.objects.create(
            kind=Kind.USER_BLOCKED,
            recipient=f"admin{i}@contoso.com",
            context=CONTEXT,
            dedupe_key=f"batch-test:{i}",
        ).pk
        for i in range(n)
    ]


def test_a_batch_is_sent_over_one_connection(db, smtp):
    sink = smtp(Sink())
    pks = _rows(12)
    assert tasks.send_batch(pks) == {"sent": 12}
    assert sink.sessions == 1
    assert sorted(r[0] for r, _ in sink.messages) == sorted(
        f"admin{i}@contoso.com" for i in range(12)
    )
    assert len({mid for _, mid in sink.messages}) == 12  # each row once, with its own id
    assert set(Notification.objects.values_list("status", flat=True)) == {Status.SENT}


def test_after_a_failure_the_rest_of_the_batch_goes_out_on_a_new_connection(db, smtp):
    sink = smtp(Sink(refuse="admin3@contoso.com"))
    pks = _rows(6)
    assert tasks.send_batch(pks) == {"sent": 5, "retry": 1}
    assert sink.sessions == 2  # the failed one was dropped, not reused
    refused = Notification.objects.get(recipient="admin3@contoso.com")
    assert refused.status == Status.PENDING and "451" in refused.last_error
    assert Notification.objects.filter(status=Status.SENT).count() == 5


def test_with_the_server_down_every_row_waits_for_a_retry(db, smtp, settings):
    smtp(Sink())
    settings.EMAIL_PORT = _free_port()  # nothing listens there
    pks = _rows(3)
    assert tasks.send_batch(pks) == {"retry": 3}
    assert set(Notification.objects.values_list("status", flat=True)) == {Status.PENDING}
