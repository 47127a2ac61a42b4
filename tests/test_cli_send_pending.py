"""eas send-pending: the mail sweep without a broker."""

from datetime import timedelta

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone

from devices import actions
from devices.models import MobileDevice
from notifications.models import Notification, Status
from tests.cli_support import eas


@pytest.fixture
def quarantined(cli_actor, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    mailbox = actions.create_mailbox(cli_actor, alias="jdoe", email="jdoe@example.org").obj
    actions.set_org_settings(cli_actor, admin_mail_recipients=["it@example.org"])
    MobileDevice.objects.create(
        mailbox=mailbox, device_id="PHONE1", device_type="iPhone", device_info_received=True
    )
    actions.set_org_settings(cli_actor, default_access_level="Quarantine")
    return mailbox


@pytest.mark.django_db(transaction=True)
def test_it_sends_what_is_still_pending(quarantined):
    # As if SMTP had been down: both mails wait, past their backoff.
    Notification.objects.update(status=Status.PENDING, next_attempt_at=timezone.now())
    mail.outbox.clear()
    out = eas("send-pending")
    assert out.startswith("2 sent")
    assert sorted(m.to[0] for m in mail.outbox) == ["it@example.org", "jdoe@example.org"]
    assert set(Notification.objects.values_list("status", flat=True)) == {Status.SENT}
    assert eas("send-pending").startswith("0 sent")  # nothing twice


@pytest.mark.django_db(transaction=True)
def test_it_leaves_mails_whose_backoff_has_not_passed(quarantined):
    later = timezone.now() + timedelta(minutes=10)
    Notification.objects.update(status=Status.PENDING, next_attempt_at=later)
    mail.outbox.clear()
    assert eas("send-pending").startswith("0 sent")
    assert mail.outbox == []


@pytest.mark.django_db(transaction=True)
def test_digests_now_folds_held_admin_mails_into_one(cli_actor, quarantined):
    actions.set_org_settings(cli_actor, admin_mail_mode="digest")
    for n in range(3):
        MobileDevice.objects.create(
            mailbox=quarantined, device_id=f"TAB{n}", device_type="iPad", device_info_received=True
        )
    with transaction.atomic():  # reevaluate locks rows (select_for_update) on PostgreSQL
        actions.reevaluate(MobileDevice.objects.all(), None)
    mail.outbox.clear()
    out = eas("send-pending", "--digests-now")
    assert "(1 digest made)" in out
    digests = [m for m in mail.outbox if m.to == ["it@example.org"]]
    assert len(digests) == 1
    assert "3 devices" in digests[0].subject
