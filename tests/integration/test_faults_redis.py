"""Redis stops during a burst of new devices (issue 9, "Faults").

    devices --HTTP--> gunicorn ecp.wsgi --> PostgreSQL test DB <-- celery worker --SMTP--> aiosmtpd
                               \\--cache, publish--> Redis (private) ---^

Redis is the gate's credential cache and the Celery broker; the decisions are
PostgreSQL's. When Redis dies mid-burst the gate must keep answering exactly
as before (the credential check falls back to the password hasher), every
mail stays in the outbox, and once Redis is back the sweep (beat runs it every
minute) hands them to the worker: every mail is delivered exactly once.
"""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from devices import actions
from devices.audit import Actor
from devices.models import AccessState, AuditSource, DeviceStateChange, MobileDevice
from ecp.celery import app
from notifications import tasks
from notifications.models import Kind, Notification, Status
from tests.conftest import need_service

from .test_faults_support import MailStack, Publishing, database_url, eventually

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ADMIN = Actor(source=AuditSource.CLI)
SECURITY = "security@contoso.com"
LOGINS = ("alice", "bob", "carol", "dave")
NEW_DEVICES = 24  # six per login
KILL_AFTER = 8  # responses before Redis dies
SLOW = 10  # seconds: no answer may take longer, Redis or not


@pytest.fixture(scope="module")
def stack(django_db_setup, tmp_path_factory):
    need_service(
        "PostgreSQL",
        connection.vendor == "postgresql",
        "gunicorn and the worker must share the test database (set DATABASE_URL)",
    )
    stack = MailStack(
        tmp_path_factory.mktemp("faults-redis"), database_url(connection.settings_dict), gate=True
    )
    stack.smtp.start()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def mailboxes():
    actions.set_org_settings(
        ADMIN,
        default_access_level="Quarantine",
        discovery_window_minutes=0,
        admin_mail_recipients=[SECURITY],
    )
    boxes = {}
    for alias in LOGINS:
        boxes[alias] = actions.create_mailbox(
            ADMIN, alias=alias, email=f"{alias}@contoso.com", password="correct horse"
        ).obj
        actions.allow_device(ADMIN, boxes[alias], f"{alias.upper()}OLD")  # approved earlier
    return boxes


def test_redis_stops_during_a_burst_of_new_devices(stack, mailboxes):
    gate, inbox = stack.gunicorn, stack.smtp.inbox
    devices = [(LOGINS[i % len(LOGINS)], f"NEW{i:03d}") for i in range(NEW_DEVICES)]
    answers, lock, killed, slowest = {}, threading.Lock(), threading.Event(), [0.0]

    def first_contact(login_device):
        login, device_id = login_device
        started = time.monotonic()
        status, headers, _ = gate.sync(login, "correct horse", device_id, cmd="Sync")
        took = time.monotonic() - started
        with lock:
            answers[device_id] = (status, headers.get("x-eas-access-state"), killed.is_set())
            slowest[0] = max(slowest[0], took)
            if len(answers) == KILL_AFTER:
                stack.redis.stop()  # mid-burst: other requests are in flight
                killed.set()

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(first_contact, devices))
    assert killed.is_set()
    during = [d for d, (_, _, after_kill) in answers.items() if after_kill]
    assert len(during) >= NEW_DEVICES - KILL_AFTER - 6

    # Every new device got the same answer, before and during the outage.
    assert {a[:2] for a in answers.values()} == {(403, "Quarantined")}, answers
    assert slowest[0] < SLOW
    # Still down: known devices sync, bad passwords are refused, nothing is a 5xx.
    for login in LOGINS:
        status, headers, _ = gate.sync(login, "correct horse", f"{login.upper()}OLD")
        assert (status, headers["x-eas-access-state"]) == (200, "Allowed")
        assert gate.sync(login, "wrong horse", f"{login.upper()}OLD")[0] == 401
    assert not stack.redis.ping()
    log = gate.log.read_text(errors="replace")
    assert "gate cache unavailable" in log  # the fresh check really ran
    assert "Traceback" not in log, gate.tail()

    # The decisions and the mails are all in PostgreSQL.
    new = MobileDevice.objects.filter(device_id__startswith="NEW")
    assert new.count() == NEW_DEVICES
    assert set(new.values_list("access_state", flat=True)) == {AccessState.QUARANTINED}
    assert DeviceStateChange.objects.filter(to_state=AccessState.QUARANTINED).count() == NEW_DEVICES
    rows = Notification.objects.filter(kind__in=[Kind.USER_QUARANTINED, Kind.ADMIN_QUARANTINED])
    assert rows.count() == 2 * NEW_DEVICES
    assert Status.FAILED not in set(rows.values_list("status", flat=True))
    assert rows.filter(status=Status.PENDING).exists(), "mails of the outage wait in the outbox"

    stack.redis.start()  # the same port, empty: every queued task is gone

    with Publishing(app, stack.redis.url(0)) as publishing:
        # Beat runs the sweep every minute; it takes rows older than SWEEP_GRACE.
        eventually(publishing.idle, "the worker to reconnect", timeout=40, on_timeout=stack.tails)
        Notification.objects.filter(status=Status.PENDING).update(
            created_at=timezone.now() - tasks.SWEEP_GRACE - timedelta(seconds=1)
        )
        tasks.sweep.delay()
        eventually(
            lambda: set(rows.values_list("status", flat=True)) == {Status.SENT},
            "every mail to be sent after Redis is back",
            on_timeout=stack.tails,
        )
        eventually(publishing.idle, "the worker to run out of tasks", on_timeout=stack.tails)

    ids = inbox.message_ids()
    assert len(ids) == len(set(ids)) == 2 * NEW_DEVICES
    users = sorted(r for rcpt, _ in inbox.messages for r in rcpt if r != SECURITY)
    assert users == sorted(f"{login}@contoso.com" for login, _ in devices)
    assert len(inbox.to(SECURITY)) == NEW_DEVICES
    assert get_user_model().objects.count() == len(LOGINS)
