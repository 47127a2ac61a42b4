"""Notifications through real services: Redis, a Celery worker process, an SMTP server.

    this test --commit--> PostgreSQL test DB <--------- celery worker (subprocess)
              --publish-> Redis (own queue) ----------> celery worker --SMTP--> aiosmtpd here

The worker is `celery -A ecp worker` with the environment pointing at the
test database, the test broker (CELERY_TEST_BROKER_URL), the SMTP server
below and ECP_BASE_URL=http://ecp.test. Data must be committed for it to
see it, hence transactional tests; the worker cannot share SQLite's
in-memory test database, hence PostgreSQL.

"Exactly once" is checked with a barrier: after the expected mails, one more
mail is queued; the worker runs one task at a time in queue order, so when
the barrier mail arrives every earlier task has run.
"""

import base64
import ctypes
import email
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import timedelta
from email import policy
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from aiosmtpd.controller import Controller
from django.core.cache import cache
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from devices import actions, evaluation
from devices.audit import Actor
from devices.models import AuditSource, MobileDevice
from ecp.celery import app
from notifications import outbox, tasks
from notifications.models import Kind, Notification, Status
from tests.conftest import need_service

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

BROKER = os.environ.get("CELERY_TEST_BROKER_URL", "redis://127.0.0.1:6379/15")
BROKER_DOWN = "redis://127.0.0.1:1/0"  # nothing listens on port 1
BASE_URL = "http://ecp.test"
CELERY = Path(sys.executable).with_name("celery")
REPO = Path(__file__).resolve().parents[2]
WAIT = 20  # seconds: the bound on every wait here
ADMIN = Actor(source=AuditSource.CLI)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def eventually(check, what: str, timeout: float = WAIT, on_timeout=lambda: ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{on_timeout()}")


# --- the SMTP server ------------------------------------------------------------------


class Inbox:
    """An aiosmtpd handler that keeps what it accepts; it can refuse the first N tries."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self, *, refuse: int = 0):
        with self.lock:
            self.messages = []  # (envelope recipients, parsed message)
            self.refuse = refuse
            self.refused = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self.lock:
            if self.refused < self.refuse:
                self.refused += 1
                return "451 4.7.1 Greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        with self.lock:
            self.messages.append((list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list:
        with self.lock:
            return [m for rcpt, m in self.messages if rcpt == [address]]

    def recipients(self) -> list[str]:
        with self.lock:
            return sorted(
                r for rcpt, _ in self.messages for r in rcpt if not r.startswith("barrier-")
            )


@pytest.fixture(scope="module")
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield inbox, controller.port
    controller.stop()


# --- the worker -----------------------------------------------------------------------


def database_url(settings_dict) -> str:
    user = quote(settings_dict["USER"] or "", safe="")
    password = quote(settings_dict["PASSWORD"] or "", safe="")
    auth = f"{user}:{password}@" if password else f"{user}@" if user else ""
    port = f":{settings_dict['PORT']}" if settings_dict["PORT"] else ""
    return f"postgres://{auth}{settings_dict['HOST']}{port}/{quote(settings_dict['NAME'])}"


def broker_reachable() -> bool:
    try:
        return bool(redis.Redis.from_url(BROKER, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


def _die_with_this_process():
    # In the forked child, before exec: the worker gets SIGTERM if pytest is
    # killed and never runs its teardown. (prctl is looked up before the fork.)
    if _prctl is not None:
        PR_SET_PDEATHSIG = 1
        _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Worker:
    def __init__(self, process: subprocess.Popen, log: Path, queue: str):
        self.process, self.log, self.queue = process, log, queue

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "--- worker log ---\n" + "\n".join(text.splitlines()[-lines:])

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@pytest.fixture(scope="module")
def worker(django_db_setup, smtp, tmp_path_factory):
    need_service(
        "PostgreSQL",
        connection.vendor == "postgresql",
        "the worker process must share the test database (set DATABASE_URL)",
    )
    need_service("Redis", broker_reachable(), f"no broker at {BROKER}")
    need_service("Celery", CELERY.exists(), f"{CELERY} is missing")
    _, smtp_port = smtp
    # A queue of our own: no other worker takes our tasks, no stale task reaches ours.
    queue = f"ecp-test-notifications-{uuid.uuid4().hex[:12]}"
    log = tmp_path_factory.mktemp("celery") / "worker.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "ecp.settings",
        "DATABASE_URL": database_url(connection.settings_dict),
        "CELERY_BROKER_URL": BROKER,
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp_port),
        "EMAIL_TIMEOUT": "5",
        "DEFAULT_FROM_EMAIL": "ECP <ecp@ecp.test>",
        "ECP_BASE_URL": BASE_URL,
        "ECP_MAIL_BACKOFF_BASE": "1",
        "LOG_LEVEL": "INFO",
    }
    env.pop("EMAIL_BACKEND", None)
    command = [
        str(CELERY),
        *("-A", "ecp", "worker", "-l", "info", "--pool=solo"),
        *("-Q", queue, "-n", f"{queue}@%h"),
        *("--without-gossip", "--without-mingle", "--without-heartbeat"),
    ]
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command,
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_this_process,
        )
    running = Worker(process, log, queue)
    try:
        eventually(
            lambda: process.poll() is not None or " ready." in log.read_text(errors="replace"),
            "the Celery worker to start",
            on_timeout=running.tail,
        )
        assert process.poll() is None, f"the worker exited\n{running.tail()}"
        yield running
    finally:
        running.stop()
        client = redis.Redis.from_url(BROKER)
        client.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")


def _drop_broker_connections():
    # Connections are pooled per broker URL: changing the URL needs new pools.
    app._pool = None
    app.amqp._producer_pool = None


class Publishing:
    """Where this test process sends its tasks; switchable mid-test (a broker outage)."""

    def __init__(self, queue: str):
        self.queue = queue
        self.saved = {
            key: app.conf[key] for key in ("broker_url", "task_always_eager", "task_default_queue")
        }

    def to(self, url: str):
        app.conf.update(broker_url=url, task_always_eager=False, task_default_queue=self.queue)
        _drop_broker_connections()

    def restore(self):
        app.conf.update(self.saved)
        _drop_broker_connections()


@pytest.fixture
def publishing(worker, smtp, settings):
    inbox, _ = smtp
    inbox.reset()
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()
    evaluation._compiled = None
    state = Publishing(worker.queue)
    state.to(BROKER)
    yield state
    state.restore()
    cache.clear()


def barrier(worker, inbox):
    """Queue one more mail and wait for it: every task queued before it has run."""
    address = f"barrier-{uuid.uuid4().hex[:8]}@ecp.test"
    row = Notification.objects.create(
        kind=Kind.ADMIN_DIGEST,
        recipient=address,
        context={"count": 0, "items": []},
        dedupe_key=f"barrier:{address}",
    )
    tasks.send_notification.delay(row.pk)
    eventually(lambda: inbox.to(address), "the barrier mail", on_timeout=worker.tail)


def sent_rows():
    return Notification.objects.exclude(recipient__startswith="barrier-")


# --- the scenarios --------------------------------------------------------------------


@pytest.fixture
def alice(publishing):
    actions.set_org_settings(
        ADMIN,
        default_access_level="Quarantine",
        discovery_window_minutes=0,
        admin_mail_recipients=["security@contoso.com"],
    )
    return actions.create_mailbox(
        ADMIN,
        alias="alice",
        email="alice@contoso.com",
        display_name="Alice Liddell",
        password="alice-secret",
    ).obj


def sync(cmd="FolderSync"):
    token = base64.b64encode(b"alice:alice-secret").decode()
    return Client().post(
        "/Microsoft-Server-ActiveSync",
        b"",
        content_type="application/vnd.ms-sync.wbxml",
        headers={
            "Authorization": f"Basic {token}",
            # 12.0: denials are a plain 403 (12.1+: the notice mailbox, test_gate_answers.py).
            "MS-ASProtocolVersion": "12.0",
            "User-Agent": "Apple-iPhone15C2/2104.61",
        },
        QUERY_STRING=f"Cmd={cmd}&DeviceId=ALICEPHONE1&DeviceType=iPhone&User=alice",
    )


def body(message, subtype: str) -> str:
    return message.get_body(preferencelist=(subtype,)).get_content()


def test_a_device_quarantined_at_the_gate_mails_the_user_and_the_admin(
    alice, publishing, smtp, worker
):
    inbox, _ = smtp

    for cmd in ("FolderSync", "Sync", "Ping", "FolderSync"):
        response = sync(cmd)
        assert response.status_code == 403
        assert response["X-EAS-Access-State"] == "Quarantined"

    eventually(
        lambda: len(inbox.recipients()) >= 2, "the user and admin mails", on_timeout=worker.tail
    )
    barrier(worker, inbox)
    assert inbox.recipients() == ["alice@contoso.com", "security@contoso.com"]
    device = MobileDevice.objects.get()
    [admin_mail] = inbox.to("security@contoso.com")
    assert admin_mail["To"] == "security@contoso.com"
    assert admin_mail["Bcc"] is None
    assert admin_mail["Auto-Submitted"] == "auto-generated"
    # The model comes from the User-Agent (Apple-iPhone15C2/...) until the phone reports,
    # and the subject gives its marketing name.
    assert admin_mail["Subject"].startswith("Quarantined: iPhone 14 Pro of Alice Liddell (alice)")
    assert f'href="{BASE_URL}/devices/{device.pk}/"' in body(admin_mail, "html")
    assert f"{BASE_URL}/devices/{device.pk}/" in body(admin_mail, "plain")
    [user_mail] = inbox.to("alice@contoso.com")
    assert "quarantine" in body(user_mail, "plain")
    assert f"{BASE_URL}/my/devices/" in body(user_mail, "plain")
    assert set(sent_rows().values_list("status", flat=True)) == {Status.SENT}


def test_a_greylisting_server_gets_the_mail_exactly_once(alice, publishing, smtp, worker):
    inbox, _ = smtp
    inbox.reset(refuse=2)
    MobileDevice.objects.create(
        mailbox=alice, device_id="ALICEPAD", device_type="iPad", device_info_received=True
    )

    actions.block_device(ADMIN, alice, "ALICEPAD")

    eventually(
        lambda: inbox.to("alice@contoso.com"), "the mail after two 451s", on_timeout=worker.tail
    )
    row = sent_rows().get()
    eventually(
        lambda: Notification.objects.filter(pk=row.pk, status=Status.SENT).exists(),
        "the row to be marked sent",
    )
    barrier(worker, inbox)
    assert inbox.recipients() == ["alice@contoso.com"]
    assert inbox.refused == 2
    row.refresh_from_db()
    assert (row.kind, row.status, row.attempts, row.last_error) == (
        Kind.USER_BLOCKED,
        Status.SENT,
        3,
        "",
    )


def test_a_broker_outage_at_commit_is_caught_up_by_the_sweep(alice, publishing, smtp, worker):
    inbox, _ = smtp
    MobileDevice.objects.create(
        mailbox=alice, device_id="ALICEPHONE1", device_type="iPhone", device_info_received=True
    )
    actions.set_org_settings(ADMIN, default_access_level="Allow")

    publishing.to(BROKER_DOWN)
    started = time.monotonic()
    with transaction.atomic():
        actions.set_org_settings(ADMIN, default_access_level="Quarantine")
    assert time.monotonic() - started < 10, "a broker outage must not hold the request"
    publishing.to(BROKER)

    rows = sent_rows()
    assert sorted(rows.values_list("recipient", "status")) == [
        ("alice@contoso.com", Status.PENDING),
        ("security@contoso.com", Status.PENDING),
    ]
    # Fresh rows belong to their own task for SWEEP_GRACE; pretend that passed.
    rows.update(created_at=timezone.now() - tasks.SWEEP_GRACE - timedelta(seconds=1))

    assert tasks.sweep() == 2

    eventually(lambda: len(inbox.recipients()) >= 2, "the swept mails", on_timeout=worker.tail)
    eventually(
        lambda: set(rows.values_list("status", flat=True)) == {Status.SENT},
        "the rows to be marked sent",
    )
    assert tasks.sweep() == 0
    barrier(worker, inbox)
    assert inbox.recipients() == ["alice@contoso.com", "security@contoso.com"]


def test_the_same_delivery_queued_twice_sends_one_mail(publishing, smtp, worker):
    inbox, _ = smtp
    with transaction.atomic():
        outbox.enqueue(
            [
                outbox.Mail(
                    kind=Kind.ADMIN_DIGEST,
                    recipient="security@contoso.com",
                    context={"count": 0, "items": []},
                    dedupe_key="twice",
                )
            ]
        )  # queued once after commit
    row = Notification.objects.get(dedupe_key="twice")

    tasks.send_notification.delay(row.pk)
    tasks.send_batch.delay([row.pk, row.pk])

    eventually(lambda: inbox.to("security@contoso.com"), "the mail", on_timeout=worker.tail)
    barrier(worker, inbox)
    assert inbox.recipients() == ["security@contoso.com"]
    row.refresh_from_db()
    assert (row.status, row.attempts) == (Status.SENT, 1)
