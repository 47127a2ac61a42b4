"""The SMTP server is down for a while (issue 9, "Faults").

    this test --commit--> PostgreSQL test DB <-- celery worker
              --publish-> Redis (private) -----> celery worker --SMTP--> aiosmtpd (down, up)

Mails wait in the outbox (pending, retried with backoff, the error recorded),
the Sent mail page shows those errors, and once the server is back every mail
goes out exactly once. ECP_MAIL_BACKOFF_BASE=1 makes the retries come within
seconds instead of minutes.
"""

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client

from devices import actions
from devices.actions import Contact
from devices.audit import Actor
from devices.models import AuditSource
from ecp.celery import app
from notifications.models import Notification, Status
from tests.conftest import need_service

from .test_faults_support import MailStack, Publishing, database_url, eventually

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ADMIN = Actor(source=AuditSource.CLI)
GATE = Actor(source=AuditSource.GATE)
ALICE, SECURITY = "alice@contoso.com", "security@contoso.com"


@pytest.fixture(scope="module")
def stack(django_db_setup, tmp_path_factory):
    need_service(
        "PostgreSQL",
        connection.vendor == "postgresql",
        "the worker must share the test database (set DATABASE_URL)",
    )
    stack = MailStack(
        tmp_path_factory.mktemp("faults-smtp"), database_url(connection.settings_dict)
    )
    try:
        yield stack
    finally:
        stack.stop()


def new_quarantined_devices(count: int):
    actions.set_org_settings(
        ADMIN,
        default_access_level="Quarantine",
        discovery_window_minutes=0,
        admin_mail_recipients=[SECURITY],
    )
    mailbox = actions.create_mailbox(ADMIN, alias="alice", email=ALICE).obj
    for i in range(count):
        actions.record_contact(GATE, mailbox, Contact(device_id=f"PHONE{i}", device_type="iPhone"))


def waiting_with_errors(rows) -> bool:
    return all(
        row.status == Status.PENDING
        and row.attempts >= 3
        and "Connection refused" in row.last_error
        for row in rows
    )


def test_mails_wait_for_the_smtp_server_and_go_out_once_it_is_back(stack):
    inbox = stack.smtp.inbox
    with Publishing(app, stack.redis.url(0)) as publishing:
        new_quarantined_devices(2)
        rows = Notification.objects.all()
        assert rows.count() == 4  # a user and an admin mail per device

        eventually(
            lambda: waiting_with_errors(list(rows.all())),
            "every mail to be tried three times",
            on_timeout=stack.tails,
        )

        # Meanwhile the Sent mail page shows each pending mail and its error.
        client = Client()
        client.force_login(get_user_model().objects.create_superuser("root", "root@x.test", "pw"))
        page = client.get("/notifications/?status=pending")
        assert page.status_code == 200
        html = page.content.decode()
        assert html.count("Connection refused") == 4
        assert html.count(">Pending</span>") == 4

        stack.smtp.start()

        eventually(
            lambda: set(rows.values_list("status", flat=True)) == {Status.SENT},
            "every mail to be sent once the server is back",
            timeout=40,  # the backoff doubles: 1, 2, 4, 8 s ...
            on_timeout=stack.tails,
        )
        eventually(publishing.idle, "the worker to run out of tasks", on_timeout=stack.tails)

    assert sorted(r for rcpt, _ in inbox.messages for r in rcpt) == [
        ALICE,
        ALICE,
        SECURITY,
        SECURITY,
    ]
    assert len(set(inbox.message_ids())) == 4
    assert set(rows.values_list("last_error", flat=True)) == {""}
    assert min(rows.values_list("attempts", flat=True)) >= 4
    page = client.get("/notifications/?status=sent").content.decode()
    assert page.count(">Sent</span>") == 4
