"""A Celery worker killed with SIGKILL in the middle of sending (issue 9, "Faults").

    this test --commit--> PostgreSQL test DB <------ celery worker (prefork, 1 child)
              --publish-> Redis (private) ---------> celery worker --SMTP--> aiosmtpd here

The SMTP server holds the message at DATA until the test has killed the
worker, then drops it without a 250: that half-sent mail must not count.
The row is left in `sending`; it may be claimed again only after
ECP_MAIL_SENDING_TIMEOUT (3 s here, 5 minutes by default).

- Only the pool process is killed: acks_late + reject_on_worker_lost redeliver
  the task at once; it waits for the stale claim, then sends.
- The whole worker is killed: the broker keeps the unacknowledged task (for its
  visibility timeout); the sweep, which beat runs every minute, re-queues the
  row once its claim is stale, and a new worker sends it.

Either way: exactly one message, and the row says sent.

After the server's 250 (issue 16): delivery is at least once, with a stable
Message-ID.

- The worker is killed while the server holds its QUIT: the row was marked
  sent right after the 250, before the QUIT, so nothing is sent again.
- The worker is killed after the 250 and before its UPDATE of the row commits
  (the test holds the row's lock from the 250 on, then ends the dead worker's
  statement): the sweep sends it again, and the copy has the same Message-ID.
"""

import os
import signal
from datetime import timedelta

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from devices import actions
from devices.audit import Actor
from devices.models import AuditSource, MobileDevice
from ecp.celery import app
from notifications import tasks
from notifications.models import Kind, Notification, Status
from tests.conftest import need_service

from .test_faults_support import (
    MailStack,
    Publishing,
    child_pids,
    database_url,
    eventually,
)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ADMIN = Actor(source=AuditSource.CLI)
SENDING_TIMEOUT = 3
ALICE = "alice@contoso.com"


@pytest.fixture(scope="module")
def stack(django_db_setup, tmp_path_factory):
    need_service(
        "PostgreSQL",
        connection.vendor == "postgresql",
        "the worker must share the test database (set DATABASE_URL)",
    )
    stack = MailStack(
        tmp_path_factory.mktemp("faults-worker"),
        database_url(connection.settings_dict),
        pool="prefork",
        ECP_MAIL_SENDING_TIMEOUT=SENDING_TIMEOUT,
    )
    stack.smtp.start()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def publishing(stack):
    stack.smtp.inbox.__init__()  # a fresh inbox
    with Publishing(app, stack.redis.url(0)) as publishing:
        yield publishing


def blocked_device_mail():
    """One transition, one mail to alice (in the outbox, queued after commit)."""
    mailbox = actions.create_mailbox(ADMIN, alias="alice", email=ALICE).obj
    MobileDevice.objects.create(
        mailbox=mailbox, device_id="ALICEPAD", device_type="iPad", device_info_received=True
    )
    actions.block_device(ADMIN, mailbox, "ALICEPAD")
    return Notification.objects.get(kind=Kind.USER_BLOCKED)


def assert_sent_once(stack, publishing, row):
    inbox = stack.smtp.inbox
    eventually(lambda: inbox.to(ALICE), "the mail after the redelivery", on_timeout=stack.tails)
    eventually(
        lambda: Notification.objects.filter(pk=row.pk, status=Status.SENT).exists(),
        "the row to be marked sent",
        on_timeout=stack.tails,
    )
    eventually(publishing.idle, "the worker to run out of tasks", on_timeout=stack.tails)
    assert len(inbox.to(ALICE)) == 1
    assert inbox.count() == 1
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_error) == (Status.SENT, 2, "")


def held_at_data(stack, row):
    inbox = stack.smtp.inbox
    eventually(inbox.holding.is_set, "the worker to reach DATA", on_timeout=stack.tails)
    row.refresh_from_db()
    assert (row.status, row.attempts) == (Status.SENDING, 1)


def test_a_pool_process_killed_mid_send_is_redelivered_and_sends_once(stack, publishing):
    stack.smtp.inbox.hold_for = ALICE
    row = blocked_device_mail()
    held_at_data(stack, row)
    [child] = child_pids(stack.worker.pid)

    os.kill(child, signal.SIGKILL)
    stack.smtp.inbox.release.set()  # the dead client's message is dropped, never a 250

    assert_sent_once(stack, publishing, row)
    assert stack.worker.alive()
    log = stack.worker.log.read_text(errors="replace")
    assert "WorkerLostError" in log or "SIGKILL" in log, stack.worker.tail()


def test_a_whole_worker_killed_mid_send_is_caught_up_by_the_sweep(stack, publishing):
    stack.smtp.inbox.hold_for = ALICE
    row = blocked_device_mail()
    held_at_data(stack, row)

    stack.worker.kill_group()  # the main process and its pool child, at once
    stack.smtp.inbox.release.set()
    stack.worker = stack.new_worker("worker-after-kill")

    # Beat's sweep (every minute) re-queues the row once the dead worker's claim is stale.
    row.refresh_from_db()
    stale_at = row.claimed_at + timedelta(seconds=SENDING_TIMEOUT + 0.5)
    eventually(
        lambda: timezone.now() > stale_at, "the claim to go stale", timeout=SENDING_TIMEOUT + 5
    )
    tasks.sweep.delay()  # run by the worker, with its ECP_MAIL_SENDING_TIMEOUT

    assert_sent_once(stack, publishing, row)


def wait_for_stale_claim(row):
    row.refresh_from_db()
    stale_at = row.claimed_at + timedelta(seconds=SENDING_TIMEOUT + 0.5)
    eventually(
        lambda: timezone.now() > stale_at, "the claim to go stale", timeout=SENDING_TIMEOUT + 5
    )


def test_a_worker_killed_during_the_quit_after_the_250_sends_nothing_again(stack, publishing):
    inbox = stack.smtp.inbox
    inbox.hold_quit = True
    row = blocked_device_mail()
    eventually(inbox.quitting.is_set, "the worker to say QUIT", on_timeout=stack.tails)

    row.refresh_from_db()
    assert row.status == Status.SENT, "marked sent after the 250, before the QUIT"
    [message] = inbox.to(ALICE)
    assert message["Message-ID"] == row.message_id != ""

    stack.worker.kill_group()
    inbox.release_quit.set()
    stack.worker = stack.new_worker("worker-after-quit")
    wait_for_stale_claim(row)
    tasks.sweep.delay()
    eventually(publishing.idle, "the worker to run out of tasks", on_timeout=stack.tails)

    assert len(inbox.to(ALICE)) == 1
    row.refresh_from_db()
    assert (row.status, row.attempts) == (Status.SENT, 1)


def blocked_updates() -> list[int]:
    """Backends of this database waiting for a lock in an UPDATE of the outbox."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock'"
            " AND query LIKE 'UPDATE \"notifications_notification\"%%'"
        )
        return [pid for (pid,) in cursor.fetchall()]


def test_a_worker_killed_after_the_250_resends_with_the_same_message_id(stack, publishing):
    inbox = stack.smtp.inbox
    locks = []

    def lock_the_row(message):
        # Before the 250: the worker's next statement (marking it sent) must wait.
        lock = psycopg.connect(database_url(connection.settings_dict))
        lock.execute(
            "SELECT id FROM notifications_notification WHERE recipient = %s FOR UPDATE", [ALICE]
        )
        locks.append(lock)

    inbox.before_250 = lock_the_row
    row = blocked_device_mail()
    eventually(blocked_updates, "the worker to wait to mark the row sent", on_timeout=stack.tails)
    [stuck] = blocked_updates()
    assert len(inbox.to(ALICE)) == 1, "the server said 250"

    # The crash: the worker dies, and its UPDATE never commits.
    stack.worker.kill_group()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [stuck])
    locks[0].close()
    row.refresh_from_db()
    assert (row.status, row.attempts) == (Status.SENDING, 1)
    first_id = row.message_id
    assert first_id and inbox.to(ALICE)[0]["Message-ID"] == first_id

    stack.worker = stack.new_worker("worker-after-250")
    wait_for_stale_claim(row)
    tasks.sweep.delay()
    eventually(lambda: len(inbox.to(ALICE)) == 2, "the re-sent copy", on_timeout=stack.tails)
    eventually(
        lambda: Notification.objects.filter(pk=row.pk, status=Status.SENT).exists(),
        "the row to be marked sent",
        on_timeout=stack.tails,
    )
    eventually(publishing.idle, "the worker to run out of tasks", on_timeout=stack.tails)

    # At least once, never silently twice: the copy is the same message to its receiver.
    assert [m["Message-ID"] for m in inbox.to(ALICE)] == [first_id, first_id]
    assert inbox.count() == 2
    row.refresh_from_db()
    assert (row.status, row.attempts, row.message_id) == (Status.SENT, 2, first_id)
