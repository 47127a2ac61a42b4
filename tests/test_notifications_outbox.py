"""Who is told, once: transitions -> outbox rows, queued after commit, digests.

The rows are written by devices.notify inside the action's transaction;
delivery is handed to Celery only once that transaction commits.
"""

import base64
import logging
from datetime import timedelta
from unittest import mock

import pytest
from django.core import mail
from django.core.cache import cache
from django.db import transaction
from django.test import Client
from django.utils import timezone
from kombu.exceptions import OperationalError

from devices import actions, evaluation, notify
from devices.audit import Actor
from devices.models import AuditSource, DeviceStateChange, Mailbox, MobileDevice
from ecp.celery import app
from notifications import outbox, tasks
from notifications.models import Kind, Notification, Status
from notifications.rendering import render

ADMIN = Actor(source=AuditSource.CLI)
ADMINS = ["security@contoso.com", "it@contoso.com"]


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def eager_celery():
    # No broker in unit tests: tasks run in this process, as in the embedded set-up.
    saved = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = saved


@pytest.fixture
def org(db):
    return actions.set_org_settings(
        ADMIN, discovery_window_minutes=0, admin_mail_recipients=ADMINS
    ).obj


@pytest.fixture
def alice(org):
    return actions.create_mailbox(
        ADMIN, alias="alice", email="alice@contoso.com", password="alice-secret"
    ).obj


def new_device(mailbox, device_id="ALICEPHONE1", **fields) -> MobileDevice:
    fields.setdefault("device_type", "iPhone")
    fields.setdefault("device_info_received", True)
    return MobileDevice.objects.create(mailbox=mailbox, device_id=device_id, **fields)


def quarantine_everything():
    return actions.set_org_settings(ADMIN, default_access_level="Quarantine").transitions


def rows(**filters):
    return sorted(Notification.objects.filter(**filters).values_list("kind", "recipient", "status"))


# ---------------------------------------------------------------------------
# who is told


def test_a_quarantine_tells_the_user_and_each_admin_separately(alice):
    device = new_device(alice)

    quarantine_everything()

    assert rows() == [
        (Kind.ADMIN_QUARANTINED, "it@contoso.com", Status.PENDING),
        (Kind.ADMIN_QUARANTINED, "security@contoso.com", Status.PENDING),
        (Kind.USER_QUARANTINED, "alice@contoso.com", Status.PENDING),
    ]
    change = DeviceStateChange.objects.get(device=device, to_state="Quarantined")
    keys = set(Notification.objects.values_list("dedupe_key", flat=True))
    assert keys == {
        f"admin-quarantined:{change.pk}:it@contoso.com",
        f"admin-quarantined:{change.pk}:security@contoso.com",
        f"user-quarantined:{change.pk}:alice@contoso.com",
    }


def test_each_admin_mail_is_addressed_to_one_admin(alice):
    new_device(alice)
    with mock.patch.object(tasks.send_notification, "delay"):
        quarantine_everything()

    for row in Notification.objects.filter(kind=Kind.ADMIN_QUARANTINED):
        tasks.send_notification(row.pk)

    assert sorted(m.to for m in mail.outbox) == [["it@contoso.com"], ["security@contoso.com"]]
    assert all(m.bcc == [] and m.cc == [] for m in mail.outbox)


def test_a_blocked_device_tells_its_user_only(alice):
    new_device(alice)

    actions.block_device(ADMIN, alice, "ALICEPHONE1")

    assert rows() == [(Kind.USER_BLOCKED, "alice@contoso.com", Status.PENDING)]


def test_no_user_mail_when_the_org_turned_it_off(alice):
    actions.set_org_settings(ADMIN, send_user_mail=False)
    new_device(alice)

    quarantine_everything()
    actions.block_device(ADMIN, alice, "ALICEPHONE1")

    assert rows() == [
        (Kind.ADMIN_QUARANTINED, "it@contoso.com", Status.PENDING),
        (Kind.ADMIN_QUARANTINED, "security@contoso.com", Status.PENDING),
    ]
    assert MobileDevice.objects.get().access_state == "Blocked"


def test_no_mail_when_activesync_is_turned_off_for_the_mailbox(alice):
    new_device(alice)
    new_device(alice, "ALICEPAD")

    result = actions.set_mailbox(ADMIN, alice, activesync_enabled=False)

    assert {(t.to_state, t.to_reason) for t in result.transitions} == {("Blocked", "Policy")}
    assert rows() == []


def test_no_admin_mail_without_admin_recipients(alice):
    actions.set_org_settings(ADMIN, admin_mail_recipients=[])
    new_device(alice)

    quarantine_everything()

    assert rows() == [(Kind.USER_QUARANTINED, "alice@contoso.com", Status.PENDING)]


def test_no_user_mail_for_a_mailbox_without_an_address(alice):
    Mailbox.objects.filter(pk=alice.pk).update(primary_smtp_address="")
    new_device(alice)

    quarantine_everything()

    assert {kind for kind, _, _ in rows()} == {Kind.ADMIN_QUARANTINED}


def test_the_new_device_alert_when_enabled(alice):
    actions.set_org_settings(ADMIN, new_device_alert=True)
    device = new_device(alice)

    actions.reevaluate(MobileDevice.objects.filter(pk=device.pk), None)

    assert rows() == [(Kind.USER_NEW_DEVICE, "alice@contoso.com", Status.PENDING)]


def test_no_new_device_alert_by_default(alice):
    device = new_device(alice)

    transitions = actions.reevaluate(MobileDevice.objects.filter(pk=device.pk), None)

    assert [t.to_state for t in transitions] == ["Allowed"]
    assert rows() == []


def test_only_the_user_hears_when_a_device_is_allowed(alice):
    new_device(alice)
    quarantine_everything()
    Notification.objects.all().delete()

    actions.allow_device(ADMIN, alice, "ALICEPHONE1")

    # Quarantined -> Allowed: the approval mail (issue 17), not the admins.
    assert rows() == [("user-approved", "alice@contoso.com", "pending")]


# ---------------------------------------------------------------------------
# one mail per recipient per transition


def test_the_same_transition_handed_twice_gives_one_row_per_recipient(alice):
    new_device(alice)
    transitions = quarantine_everything()
    assert Notification.objects.count() == 3

    notify.state_changed(transitions)
    notify.state_changed(transitions + transitions)

    assert Notification.objects.count() == 3


def test_one_call_with_a_repeated_transition_writes_each_row_once(alice):
    device = new_device(alice)
    actions.set_org_settings(ADMIN, default_access_level="Quarantine", admin_mail_recipients=[])
    DeviceStateChange.objects.all().delete()
    Notification.objects.all().delete()
    change = DeviceStateChange.objects.create(
        device=device,
        device_repr="x",
        from_state="Allowed",
        from_reason="Global",
        to_state="Quarantined",
        to_reason="Global",
    )
    t = actions.Transition(device.pk, "Allowed", "Quarantined", "Global", None, change.pk)

    notify.state_changed([t, t, t])

    assert rows() == [(Kind.USER_QUARANTINED, "alice@contoso.com", Status.PENDING)]


def test_a_second_quarantine_is_a_new_transition_and_a_new_mail(alice, settings):
    settings.ECP_NOTIFY_MIN_INTERVAL_MINUTES = 0  # no coalescing (tests/test_notify_flood.py)
    new_device(alice)
    quarantine_everything()
    actions.allow_device(ADMIN, alice, "ALICEPHONE1")

    # Taken off the allowed list: back to the org default, quarantine.
    actions.set_mailbox(ADMIN, alice, remove_allowed=["ALICEPHONE1"])

    assert Notification.objects.filter(kind=Kind.USER_QUARANTINED).count() == 2


def test_a_second_quarantine_within_the_interval_is_folded_into_the_waiting_mail(alice):
    new_device(alice)
    quarantine_everything()
    actions.allow_device(ADMIN, alice, "ALICEPHONE1")
    actions.set_mailbox(ADMIN, alice, remove_allowed=["ALICEPHONE1"])

    (row,) = Notification.objects.filter(kind=Kind.USER_QUARANTINED)
    assert row.context["coalesced"]["count"] == 1
    assert DeviceStateChange.objects.filter(to_state="Quarantined").count() == 2


@pytest.fixture
def gate():
    cache.clear()
    evaluation._compiled = None  # compiled rules are keyed by a version a rollback resets
    yield
    cache.clear()


def sync(cmd="FolderSync", device_id="ALICEPHONE1"):
    token = base64.b64encode(b"alice:alice-secret").decode()
    return Client().post(
        "/Microsoft-Server-ActiveSync",
        b"",
        content_type="application/vnd.ms-sync.wbxml",
        headers={
            "Authorization": f"Basic {token}",
            "MS-ASProtocolVersion": "14.1",
            "User-Agent": "Apple-iPhone14C2/2104.61",
        },
        QUERY_STRING=f"Cmd={cmd}&DeviceId={device_id}&DeviceType=iPhone&User=alice",
    )


def test_a_device_retrying_the_gate_while_quarantined_gives_one_mail_per_recipient(alice, gate):
    actions.set_org_settings(ADMIN, default_access_level="Quarantine")

    for _ in range(3):
        for cmd in ("FolderSync", "Sync", "Ping", "Provision"):
            assert sync(cmd)["X-EAS-Access-State"] == "Quarantined"

    assert rows() == [
        (Kind.ADMIN_QUARANTINED, "it@contoso.com", Status.PENDING),
        (Kind.ADMIN_QUARANTINED, "security@contoso.com", Status.PENDING),
        (Kind.USER_QUARANTINED, "alice@contoso.com", Status.PENDING),
    ]


def test_gate_retries_send_one_mail_per_recipient(alice, gate, django_capture_on_commit_callbacks):
    actions.set_org_settings(ADMIN, default_access_level="Quarantine")

    for _ in range(10):
        with django_capture_on_commit_callbacks(execute=True):
            assert sync()["X-EAS-Access-State"] == "Quarantined"

    assert sorted(m.to[0] for m in mail.outbox) == [
        "alice@contoso.com",
        "it@contoso.com",
        "security@contoso.com",
    ]
    assert set(Notification.objects.values_list("status", flat=True)) == {Status.SENT}


# ---------------------------------------------------------------------------
# queued after commit


def test_delivery_is_queued_only_when_the_transaction_commits(
    alice, django_capture_on_commit_callbacks
):
    new_device(alice)
    with (
        mock.patch.object(tasks.send_notification, "delay") as delay,
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        quarantine_everything()
        delay.assert_not_called()

    assert len(callbacks) == 1
    assert sorted(c.args[0] for c in delay.call_args_list) == sorted(
        Notification.objects.values_list("pk", flat=True)
    )


def test_nothing_is_written_or_queued_when_the_transaction_rolls_back(
    alice, django_capture_on_commit_callbacks
):
    new_device(alice)
    with (
        mock.patch.object(tasks.send_notification, "delay") as delay,
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        quarantine_everything()
        assert Notification.objects.count() == 3
        raise RuntimeError("the request failed after the change")

    assert callbacks == []
    delay.assert_not_called()
    assert Notification.objects.count() == 0
    assert MobileDevice.objects.get().access_state == "Unknown"


@pytest.mark.django_db(transaction=True)
def test_a_real_commit_queues_and_a_real_rollback_does_not(org):
    alice = actions.create_mailbox(ADMIN, alias="alice", email="alice@contoso.com").obj
    new_device(alice)
    with mock.patch.object(tasks.send_notification, "delay") as delay:
        with pytest.raises(RuntimeError), transaction.atomic():
            quarantine_everything()
            raise RuntimeError("rolled back")
        assert delay.call_count == 0
        assert Notification.objects.count() == 0

        with transaction.atomic():
            quarantine_everything()
            assert delay.call_count == 0
        assert delay.call_count == 3


def test_a_broker_outage_keeps_the_rows_pending_for_the_sweep(
    alice, django_capture_on_commit_callbacks, caplog
):
    new_device(alice)
    broker_down = OperationalError("Error 111 connecting to 127.0.0.1:1. Connection refused.")
    with (
        mock.patch.object(tasks.send_notification, "delay", side_effect=broker_down),
        django_capture_on_commit_callbacks(execute=True),
        caplog.at_level(logging.WARNING),
    ):
        quarantine_everything()

    assert set(Notification.objects.values_list("status", flat=True)) == {Status.PENDING}
    assert "the sweep will" in caplog.text
    Notification.objects.update(created_at=timezone.now() - timedelta(minutes=1))
    with mock.patch.object(tasks.send_notification, "delay") as delay:
        assert tasks.sweep() == 3
    assert delay.call_count == 3


def test_many_rows_are_queued_in_batches():
    with (
        mock.patch.object(tasks.send_notification, "delay") as one,
        mock.patch.object(tasks.send_batch, "delay") as batch,
    ):
        outbox.queue(list(range(1, 121)))

    one.assert_not_called()
    assert [len(c.args[0]) for c in batch.call_args_list] == [50, 50, 20]
    assert sum((c.args[0] for c in batch.call_args_list), []) == list(range(1, 121))


def test_enqueue_skips_a_known_dedupe_key(db):
    mail_ = outbox.Mail(kind=Kind.USER_BLOCKED, recipient="a@b.example", context={}, dedupe_key="k")
    with mock.patch.object(tasks.send_notification, "delay"):
        assert outbox.enqueue([mail_]) == 1
        assert outbox.enqueue([mail_]) == 0
    assert Notification.objects.count() == 1


# ---------------------------------------------------------------------------
# the admin digest


@pytest.fixture
def thirty_devices(org):
    actions.set_org_settings(ADMIN, admin_mail_mode="digest", admin_digest_minutes=15)
    mailboxes = [
        actions.create_mailbox(ADMIN, alias=f"user{i:02d}", email=f"user{i:02d}@contoso.com").obj
        for i in range(30)
    ]
    return [new_device(m, device_id=f"PHONE{i:02d}") for i, m in enumerate(mailboxes)]


def test_digest_mode_holds_the_admin_mails(thirty_devices):
    with (
        mock.patch.object(tasks.send_batch, "delay") as batch,
        transaction.atomic(),
    ):
        quarantine_everything()

    assert Notification.objects.filter(kind=Kind.ADMIN_QUARANTINED).count() == 60
    held = Notification.objects.filter(kind=Kind.ADMIN_QUARANTINED, status=Status.HELD)
    assert held.count() == 60
    soon = timezone.now() + timedelta(minutes=15)
    assert all(soon - timedelta(minutes=1) < n.hold_until <= soon for n in held.only("hold_until"))
    # User mails are not held: 30 of them, pending.
    assert (
        Notification.objects.filter(kind=Kind.USER_QUARANTINED, status=Status.PENDING).count() == 30
    )
    queued = {pk for c in batch.call_args_list for pk in c.args[0]}
    assert queued.isdisjoint(held.values_list("pk", flat=True))


def test_no_digest_before_hold_until(thirty_devices):
    with mock.patch.object(tasks.send_batch, "delay"):
        quarantine_everything()

    assert tasks.send_digests() == 0
    assert Notification.objects.filter(status=Status.HELD).count() == 60
    assert not Notification.objects.filter(kind=Kind.ADMIN_DIGEST).exists()


def test_forced_digest_one_per_admin_listing_all_thirty(
    thirty_devices, django_capture_on_commit_callbacks
):
    with mock.patch.object(tasks.send_batch, "delay"):
        quarantine_everything()

    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.send_digests(force=True) == 2

    digests = Notification.objects.filter(kind=Kind.ADMIN_DIGEST)
    assert sorted(digests.values_list("recipient", flat=True)) == sorted(ADMINS)
    for digest in digests:
        assert digest.context["count"] == 30
        subject, text, _ = render(digest.kind, digest.context)
        assert subject == "30 devices waiting in quarantine"
        for device in thirty_devices:
            assert device.device_id in text
        assert digest.items.count() == 30
        assert set(digest.items.values_list("recipient", flat=True)) == {digest.recipient}
    assert Notification.objects.filter(status=Status.HELD).count() == 0
    assert Notification.objects.filter(status=Status.DIGESTED).count() == 60
    # The digests were delivered after the digest transaction committed.
    assert sorted(m.to[0] for m in mail.outbox) == sorted(ADMINS)
    assert set(digests.values_list("status", flat=True)) == {Status.SENT}


def test_the_digest_is_made_once_the_oldest_mail_is_due(thirty_devices):
    with mock.patch.object(tasks.send_batch, "delay"):
        quarantine_everything()
    first = Notification.objects.filter(status=Status.HELD).order_by("pk").first()
    Notification.objects.filter(pk=first.pk).update(
        hold_until=timezone.now() - timedelta(seconds=1)
    )

    with mock.patch.object(tasks.send_notification, "delay"):
        assert tasks.send_digests() == 1

    digest = Notification.objects.get(kind=Kind.ADMIN_DIGEST)
    assert digest.recipient == first.recipient
    # Every held mail for that admin goes into it, not only the due one.
    assert digest.context["count"] == 30
    assert (
        Notification.objects.filter(status=Status.HELD).exclude(recipient=first.recipient).count()
        == 30
    )


def test_a_second_digest_run_finds_nothing(thirty_devices):
    with mock.patch.object(tasks.send_batch, "delay"):
        quarantine_everything()
    with mock.patch.object(tasks.send_notification, "delay"):
        assert tasks.send_digests(force=True) == 2
        assert tasks.send_digests(force=True) == 0
    assert Notification.objects.filter(kind=Kind.ADMIN_DIGEST).count() == 2
