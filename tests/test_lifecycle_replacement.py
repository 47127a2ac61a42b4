"""Allow and replace (devices.actions.allow_and_replace): a reset phone comes back.

The new DeviceId goes on the allowed list, the old one leaves it and its
partnership is removed, in one transaction: all of it, or none of it.
"""

import pytest

from devices import actions
from devices.audit import Actor
from devices.models import (
    AccessReason,
    AccessState,
    AuditEvent,
    AuditSource,
    DeviceIdList,
    MailboxDeviceId,
    MobileDevice,
)
from notifications.models import Notification

GATE = Actor(source=AuditSource.GATE)
HELPDESK = Actor(source=AuditSource.UI, ip="198.51.100.4", request_id="req-42")


def contact(mailbox, device_id):
    return actions.record_contact(
        GATE,
        mailbox,
        actions.Contact(device_id=device_id, device_type="iPhone", info={"model": "iPhone15,2"}),
    )


def lists(mailbox) -> dict[str, str]:
    return dict(MailboxDeviceId.objects.filter(mailbox=mailbox).values_list("device_id", "list"))


def world_state() -> tuple:
    return (
        list(MobileDevice.objects.order_by("pk").values_list("pk", "access_state")),
        list(MailboxDeviceId.objects.order_by("pk").values_list("device_key", "list")),
        AuditEvent.objects.count(),
    )


@pytest.fixture
def reset_phone(cli_actor):
    """Quarantine by default; kim's old phone approved, and the same phone after a reset."""
    actions.set_org_settings(
        cli_actor, default_access_level="Quarantine", admin_mail_recipients=["hd@example.org"]
    )
    kim = actions.create_mailbox(cli_actor, alias="kim", email="kim@example.org").obj
    old = contact(kim, "KIMOLD1")
    actions.allow_device(cli_actor, kim, "KIMOLD1")
    new = contact(kim, "KIMNEW2")
    assert new.access_state == AccessState.QUARANTINED
    return kim, MobileDevice.objects.get(pk=old.pk), new


@pytest.mark.django_db
def test_the_new_device_is_allowed_and_the_old_one_goes(reset_phone):
    kim, old, new = reset_phone
    mails = Notification.objects.count()
    result = actions.allow_and_replace(HELPDESK, new, old)
    new.refresh_from_db()
    assert (new.access_state, new.access_state_reason) == (
        AccessState.ALLOWED,
        AccessReason.INDIVIDUAL,
    )
    assert not MobileDevice.objects.filter(pk=old.pk).exists()
    assert lists(kim) == {"KIMNEW2": DeviceIdList.ALLOWED}
    assert result.obj.pk == new.pk

    replace = result.event
    assert replace.action == "device.replace"
    assert replace.message.startswith("DeviceId KIMNEW2 allowed for mailbox kim, replacing KIMOLD1")
    assert "1 device from quarantined to allowed" in replace.message
    assert replace.object_id == str(new.pk)
    removal = AuditEvent.objects.get(action="device.remove")
    assert removal.object_id == str(old.pk)
    assert removal.before["device_id"] == "KIMOLD1"
    for event in (replace, removal):
        assert (event.source, event.client_ip, event.request_id) == (
            AuditSource.UI,
            "198.51.100.4",
            "req-42",
        )
    # The user hears that the new device was approved (issue 17); nobody else is mailed.
    assert Notification.objects.count() == mails + 1
    assert Notification.objects.order_by("-id").first().kind == "user-approved"


@pytest.mark.django_db
def test_the_old_device_starts_over_if_it_syncs_again(reset_phone):
    kim, old, new = reset_phone
    actions.allow_and_replace(HELPDESK, new, old)
    again = contact(kim, "KIMOLD1")
    assert again.access_state == AccessState.QUARANTINED


@pytest.mark.django_db
def test_a_device_of_another_mailbox_is_refused(reset_phone, cli_actor):
    _, old, _ = reset_phone
    lee = actions.create_mailbox(cli_actor, alias="lee", email="lee@example.org").obj
    lees = contact(lee, "LEENEW1")
    before = world_state()
    with pytest.raises(actions.ActionError, match="same mailbox"):
        actions.allow_and_replace(HELPDESK, lees, old)
    assert world_state() == before


@pytest.mark.django_db
def test_a_device_cannot_replace_itself(reset_phone):
    _, _, new = reset_phone
    before = world_state()
    with pytest.raises(actions.ActionError, match="same mailbox"):
        actions.allow_and_replace(HELPDESK, new, new)
    assert world_state() == before


@pytest.mark.django_db
def test_nothing_is_allowed_when_the_old_one_is_already_gone(reset_phone, cli_actor):
    """The removal fails last; the allow before it is rolled back with it."""
    kim, old, new = reset_phone
    actions.remove_device(cli_actor, old)
    before = world_state()
    with pytest.raises(actions.ActionError, match="no longer exists"):
        actions.allow_and_replace(HELPDESK, new, old)
    assert world_state() == before
    assert MobileDevice.objects.get(pk=new.pk).access_state == AccessState.QUARANTINED
    assert lists(kim) == {"KIMOLD1": DeviceIdList.ALLOWED}
