"""One device cannot flood anyone (issue 16, item 2), through the real gate.

The attack: a device alternates the model it reports in Provision's
DeviceInformation between one a Block rule matches and one it does not, with
the org default Quarantine. Before the fix 20 requests gave 20 state changes and
30 mails (10 user-blocked, 10 user-quarantined, 10 to the admin). Now a device
that changes its own details more than ECP_DEVICE_DETAIL_CHANGES_LIMIT times an
interval only gets stricter until the interval ends, each mail goes out at most
once per kind, recipient and device an interval (later changes folded into the
next one), the flapping shows on the device page, and invented model strings
stop adding DeviceClass rows.
"""

import base64
from collections import Counter
from datetime import timedelta

import pytest
from django.core import mail
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from devices import actions, evaluation
from devices.audit import Actor
from devices.eas import build_device_information_body
from devices.models import AccessState, AuditSource, DeviceClass, DeviceStateChange, MobileDevice
from ecp.celery import app
from notifications import outbox, tasks
from notifications.models import Kind, Notification, Status
from tests.web.conftest import make_user

GATE = "/Microsoft-Server-ActiveSync"
WBXML = "application/vnd.ms-sync.wbxml"
ADMIN = Actor(source=AuditSource.CLI)
QUERY = "Cmd=Provision&DeviceId=FLAPPER1&DeviceType=iPhone&User=alice"
BLOCKED_MODEL, OTHER_MODEL = "EvilPhone1", "iPhone15C2"


@pytest.fixture(autouse=True)
def _fresh_gate(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()
    evaluation._compiled = None
    saved = app.conf.task_always_eager
    app.conf.task_always_eager = True  # no broker: delivery runs in this process
    yield
    app.conf.task_always_eager = saved
    cache.clear()


@pytest.fixture
def alice(db):
    actions.set_org_settings(
        ADMIN,
        default_access_level="Quarantine",
        discovery_window_minutes=0,
        admin_mail_recipients=["admin@contoso.com"],
    )
    actions.create_rule(
        ADMIN, characteristic="DeviceModel", query_string="EvilPhone*", access_level="Block"
    )
    return actions.create_mailbox(
        ADMIN, alias="alice", email="alice@contoso.com", password="alice-secret"
    ).obj


def provision(model: str, capture):
    body = build_device_information_body("Provision", {"model": model, "os": "iOS 17.4"})
    auth = "Basic " + base64.b64encode(b"alice:alice-secret").decode()
    with capture(execute=True):
        response = Client().post(
            GATE,
            body,
            content_type=WBXML,
            headers={"Authorization": auth, "MS-ASProtocolVersion": "14.1"},
            QUERY_STRING=QUERY,
        )
    assert response.status_code in (200, 403), response.content
    return response


def flap(capture, times=20):
    for i in range(times):
        provision(BLOCKED_MODEL if i % 2 == 0 else OTHER_MODEL, capture)


def sent_mails() -> Counter:
    kinds = {
        "Blocked": Kind.USER_BLOCKED,
        "waiting for approval": Kind.USER_QUARANTINED,
        "waits for approval": Kind.ADMIN_QUARANTINED,
    }
    found = Counter()
    for message in mail.outbox:
        subject = message.subject.lower()
        kind = next((k for text, k in kinds.items() if text.lower() in subject), "?")
        found[(kind, message.to[0])] += 1
    return found


@pytest.mark.django_db(transaction=True)
def test_a_flapping_model_sends_at_most_one_mail_per_kind_and_recipient(
    alice, django_capture_on_commit_callbacks
):
    flap(django_capture_on_commit_callbacks)

    assert len(mail.outbox) <= 3, [m.subject for m in mail.outbox]
    assert all(n == 1 for n in sent_mails().values()), sent_mails()
    # Each (kind, recipient) has at most one more mail, waiting a whole interval.
    per_kind = Counter(Notification.objects.values_list("kind", "recipient"))
    assert max(per_kind.values()) <= 2, per_kind
    later = Notification.objects.filter(status=Status.PENDING)
    for row in later:
        assert row.next_attempt_at >= timezone.now() + timedelta(minutes=55)
        assert row.context["coalesced"]["count"] >= 1


@pytest.mark.django_db(transaction=True)
def test_a_flapping_device_only_gets_stricter_until_the_interval_ends(
    alice, django_capture_on_commit_callbacks, settings
):
    flap(django_capture_on_commit_callbacks)

    device = MobileDevice.objects.get()
    assert device.access_state == AccessState.BLOCKED
    changes = DeviceStateChange.objects.filter(device=device).count()
    assert changes <= settings.ECP_DEVICE_DETAIL_CHANGES_LIMIT + 2, changes
    assert device.flapped_at is not None
    assert device.detail_changes == 19
    assert device.redecide_due_at == device.detail_changes_since + timedelta(minutes=60)

    # The interval ends: the next request decides it in full (the model it reports now).
    past = timezone.now() - timedelta(minutes=61)
    MobileDevice.objects.filter(pk=device.pk).update(
        detail_changes_since=past, redecide_due_at=past + timedelta(minutes=60)
    )
    provision(OTHER_MODEL, django_capture_on_commit_callbacks)
    device.refresh_from_db()
    assert device.access_state == AccessState.QUARANTINED
    assert device.redecide_due_at is None


@pytest.mark.django_db(transaction=True)
def test_later_changes_are_folded_into_the_next_mail(alice, django_capture_on_commit_callbacks):
    flap(django_capture_on_commit_callbacks)
    mail.outbox.clear()

    Notification.objects.filter(status=Status.PENDING).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1),
        created_at=timezone.now() - timedelta(minutes=5),
    )
    counts = tasks.deliver_pending_now()

    assert counts.get("sent", 0) == len(mail.outbox) >= 1
    for message in mail.outbox:
        assert "more time" in message.body
        assert "the details above are the latest" in message.body


@pytest.mark.django_db(transaction=True)
def test_the_flapping_is_recorded_on_the_device_page(alice, django_capture_on_commit_callbacks):
    flap(django_capture_on_commit_callbacks, times=8)
    device = MobileDevice.objects.get()
    client = Client()
    client.force_login(make_user("root", superuser=True))
    html = client.get(f"/devices/{device.pk}/").content.decode()
    assert 'id="flapping"' in html
    assert "keeps changing the details it reports" in html
    messages = device.state_changes.exists() and list(
        device.state_changes.values_list("event__message", flat=True)
    )
    assert messages


@pytest.mark.django_db(transaction=True)
def test_invented_model_strings_do_not_grow_device_classes_without_bound(
    alice, django_capture_on_commit_callbacks, settings
):
    for i in range(20):
        provision(f"Invented-{i}", django_capture_on_commit_callbacks)
    limit = settings.ECP_DEVICE_DETAIL_CHANGES_LIMIT
    invented = DeviceClass.objects.filter(device_model__startswith="Invented-").count()
    assert invented <= limit + 1, invented


@pytest.mark.django_db
def test_device_classes_stop_at_their_bound(alice, settings):
    settings.ECP_DEVICE_CLASS_MAX = 3
    for i in range(6):
        actions.record_contact(
            ADMIN,
            alice,
            actions.Contact(device_id=f"D{i}", device_type="iPhone", info={"model": f"M{i}"}),
        )
    assert DeviceClass.objects.count() == 3
    assert MobileDevice.objects.count() == 6  # the devices themselves are all recorded


# --- the outbox on its own ----------------------------------------------------------------


def _mail(n: int, **extra) -> outbox.Mail:
    return outbox.Mail(
        kind=Kind.USER_QUARANTINED,
        recipient="alice@contoso.com",
        context={"n": n},
        dedupe_key=f"k{n}",
        coalesce_key="device:1",
        **extra,
    )


@pytest.mark.django_db
def test_a_mail_still_waiting_takes_the_newer_context():
    outbox.enqueue([_mail(1)])
    outbox.enqueue([_mail(2)])
    row = Notification.objects.get()
    assert row.context["n"] == 2
    assert row.context["coalesced"]["count"] == 1


@pytest.mark.django_db
def test_a_mail_after_a_sent_one_waits_an_interval(settings):
    outbox.enqueue([_mail(1)])
    Notification.objects.update(status=Status.SENT, attempts=1)
    outbox.enqueue([_mail(2)])
    later = Notification.objects.get(status=Status.PENDING)
    assert later.next_attempt_at >= timezone.now() + timedelta(minutes=59)
    settings.ECP_NOTIFY_MIN_INTERVAL_MINUTES = 0
    outbox.enqueue([_mail(3)])
    assert Notification.objects.filter(next_attempt_at__isnull=True, status="pending").count() == 1


@pytest.mark.django_db
def test_mails_about_other_devices_or_kinds_are_not_coalesced():
    outbox.enqueue([_mail(1)])
    outbox.enqueue([outbox.Mail(**{**_mail(2).__dict__, "coalesce_key": "device:2"})])
    outbox.enqueue([outbox.Mail(**{**_mail(3).__dict__, "kind": Kind.USER_BLOCKED})])
    assert Notification.objects.count() == 3


@pytest.mark.django_db
def test_a_held_digest_item_is_folded_too():
    held = timezone.now() + timedelta(minutes=30)
    outbox.enqueue([_mail(1, hold_until=held)])
    outbox.enqueue([_mail(2, hold_until=held)])
    row = Notification.objects.get()
    assert (row.status, row.context["n"]) == (Status.HELD, 2)
