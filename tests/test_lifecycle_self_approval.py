"""Users approving their own quarantined device (devices.actions.self_approve).

The org setting decides: never (the default), their first device only, or
always. Only the mailbox's owner, only a quarantined device; the admins get a
mail (kind admin-self-approved) and the audit event says self-service.
"""

import json

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.management.base import CommandError

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
    OrgSettings,
    SelfApproval,
)
from notifications.models import Kind, Notification
from tests.cli_support import eas

GATE = Actor(source=AuditSource.GATE)
ADMINS = ["helpdesk@example.org", "security@example.org"]


def contact(mailbox, device_id, device_type="iPhone"):
    return actions.record_contact(
        GATE,
        mailbox,
        actions.Contact(device_id=device_id, device_type=device_type, info={"model": "X1"}),
    )


def self_service(user) -> Actor:
    return Actor(user=user, source=AuditSource.SELF_SERVICE, ip="192.0.2.7", request_id="r-1")


def state(device) -> tuple[str, str]:
    device = MobileDevice.objects.get(pk=device.pk)
    return device.access_state, device.access_state_reason


def nothing_changed(device, events_before: int) -> bool:
    return (
        state(device) == (AccessState.QUARANTINED, AccessReason.GLOBAL)
        and not MailboxDeviceId.objects.filter(device_key=device.device_key).exists()
        and AuditEvent.objects.count() == events_before
        and not Notification.objects.filter(kind=Kind.ADMIN_SELF_APPROVED).exists()
    )


@pytest.fixture
def org(cli_actor, settings):
    """Quarantine by default, two admins mailed, two users with a login and a phone each."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    actions.set_org_settings(
        cli_actor, default_access_level="Quarantine", admin_mail_recipients=ADMINS
    )
    amy = actions.create_mailbox(cli_actor, alias="amy", email="amy@example.org", password="pw").obj
    bo = actions.create_mailbox(cli_actor, alias="bo", email="bo@example.org", password="pw").obj
    return {
        "amy": amy.user,
        "bo": bo.user,
        "amy_box": amy,
        "amy_phone": contact(amy, "AMYPHONE1"),
        "bo_phone": contact(bo, "BOPHONE1"),
    }


def set_policy(cli_actor, value):
    actions.set_org_settings(cli_actor, self_approval=value)


# ---------------------------------------------------------------------------
# the setting


@pytest.mark.django_db
def test_never_is_the_default_and_refuses(org):
    assert OrgSettings.load().self_approval == SelfApproval.NEVER
    device = org["amy_phone"]
    assert "does not let users approve" in actions.may_self_approve(org["amy"], device)
    events = AuditEvent.objects.count()
    with pytest.raises(actions.ActionError, match="does not let users approve"):
        actions.self_approve(self_service(org["amy"]), device)
    assert nothing_changed(device, events)


@pytest.mark.django_db
def test_always_lets_the_owner_approve_and_tells_the_admins(org, cli_actor):
    set_policy(cli_actor, "always")
    device = org["amy_phone"]
    assert actions.may_self_approve(org["amy"], device) == ""
    result = actions.self_approve(self_service(org["amy"]), device)
    assert state(device) == (AccessState.ALLOWED, AccessReason.INDIVIDUAL)
    assert MailboxDeviceId.objects.get(device_key="amyphone1").list == DeviceIdList.ALLOWED

    event = result.event
    assert event.action == "device.self_approve"
    assert event.source == AuditSource.SELF_SERVICE
    assert (event.actor, event.actor_name) == (org["amy"], "amy")
    assert (event.client_ip, event.request_id) == ("192.0.2.7", "r-1")
    assert event.object_type == "MobileDevice" and event.object_id == str(device.pk)
    assert event.message.startswith("amy approved their own device AMYPHONE1")
    assert "1 device from quarantined to allowed" in event.message

    mails = Notification.objects.filter(kind=Kind.ADMIN_SELF_APPROVED)
    assert sorted(mails.values_list("recipient", flat=True)) == ADMINS
    for mail in mails:
        assert mail.context["device"]["device_id"] == "AMYPHONE1"
        assert mail.context["mailbox"]["alias"] == "amy"
        assert mail.context["approved_at"] == event.time.isoformat()
    # Allowed is no news to the user: no user mail for this transition.
    assert not Notification.objects.filter(
        recipient="amy@example.org", created_at__gte=event.time
    ).exists()


@pytest.mark.django_db
def test_first_allows_the_first_device_only(org, cli_actor):
    set_policy(cli_actor, "first")
    actions.self_approve(self_service(org["amy"]), org["amy_phone"])
    tablet = contact(org["amy_box"], "AMYTABLET1", "iPad")
    assert state(tablet) == (AccessState.QUARANTINED, AccessReason.GLOBAL)
    reason = actions.may_self_approve(org["amy"], tablet)
    assert "first device only" in reason
    events = AuditEvent.objects.count()
    with pytest.raises(actions.ActionError, match="first device only"):
        actions.self_approve(self_service(org["amy"]), tablet)
    assert state(tablet) == (AccessState.QUARANTINED, AccessReason.GLOBAL)
    assert not MailboxDeviceId.objects.filter(device_key="amytablet1").exists()
    assert AuditEvent.objects.count() == events
    # Only the phone's approval was mailed.
    assert Notification.objects.filter(kind=Kind.ADMIN_SELF_APPROVED).count() == len(ADMINS)


@pytest.mark.django_db
def test_first_counts_an_id_already_on_the_allowed_list(org, cli_actor):
    """A DeviceId the helpdesk allowed (even one not syncing yet) is the first device."""
    set_policy(cli_actor, "first")
    actions.allow_device(cli_actor, org["amy_box"], "OLDPHONE9")
    assert "first device only" in actions.may_self_approve(org["amy"], org["amy_phone"])
    # Another user's allowed devices do not count against amy's neighbour bo.
    assert actions.may_self_approve(org["bo"], org["bo_phone"]) == ""


@pytest.mark.django_db
def test_the_setting_through_the_cli(org):
    out = eas("set-org-settings", "--self-approval", "FIRST")
    assert OrgSettings.load().self_approval == SelfApproval.FIRST_DEVICE
    assert "self_approval: never -> first" in out
    [row] = json.loads(eas("get-org-settings", "--format", "json"))
    assert row["self_approval"] == "first"
    with pytest.raises(CommandError, match="Unknown self-approval setting 'sometimes'"):
        eas("set-org-settings", "--self-approval", "sometimes")
    assert OrgSettings.load().self_approval == SelfApproval.FIRST_DEVICE


# ---------------------------------------------------------------------------
# who and what may be approved


@pytest.mark.django_db
def test_another_users_device_is_refused(org, cli_actor):
    set_policy(cli_actor, "always")
    device = org["bo_phone"]
    assert "only approve your own" in actions.may_self_approve(org["amy"], device)
    events = AuditEvent.objects.count()
    with pytest.raises(actions.ActionError, match="only approve your own"):
        actions.self_approve(self_service(org["amy"]), device)
    assert nothing_changed(device, events)


@pytest.mark.django_db
def test_a_staff_member_is_no_owner_either(org, cli_actor, django_user_model):
    set_policy(cli_actor, "always")
    admin = django_user_model.objects.create_superuser("root", "root@example.org", "pw")
    events = AuditEvent.objects.count()
    with pytest.raises(actions.ActionError, match="only approve your own"):
        actions.self_approve(self_service(admin), org["amy_phone"])
    assert nothing_changed(org["amy_phone"], events)


@pytest.mark.django_db
@pytest.mark.parametrize("user", [None, AnonymousUser()], ids=["no-user", "anonymous"])
def test_nobody_owns_a_mailbox_without_a_login(org, cli_actor, user):
    set_policy(cli_actor, "always")
    orphan = actions.create_mailbox(cli_actor, alias="shared", email="shared@example.org").obj
    device = contact(orphan, "SHAREDPHONE1")
    assert actions.may_self_approve(user, device) != ""
    events = AuditEvent.objects.count()
    with pytest.raises(actions.ActionError):
        actions.self_approve(Actor(user=user, source=AuditSource.SELF_SERVICE), device)
    assert nothing_changed(device, events)


@pytest.mark.django_db
@pytest.mark.parametrize("how", ["allowed", "blocked", "discovery"])
def test_only_a_quarantined_device_can_be_approved(org, cli_actor, how):
    set_policy(cli_actor, "always")
    device = org["amy_phone"]
    if how == "allowed":
        actions.allow_device(cli_actor, org["amy_box"], device.device_id)
    elif how == "blocked":
        actions.create_rule(
            cli_actor, characteristic="DeviceType", query_string="iPhone", access_level="Block"
        )
    else:
        device = actions.record_contact(
            GATE, org["amy_box"], actions.Contact(device_id="AMYNEW1", device_type="iPhone")
        )
        assert device.access_state == AccessState.DEVICE_DISCOVERY
    before = state(device)
    events = AuditEvent.objects.count()
    with pytest.raises(actions.ActionError, match="Only a device waiting in quarantine"):
        actions.self_approve(self_service(org["amy"]), device)
    assert state(device) == before
    assert AuditEvent.objects.count() == events


@pytest.mark.django_db
def test_a_removed_device_cannot_be_approved(org, cli_actor):
    set_policy(cli_actor, "always")
    device = org["amy_phone"]
    actions.remove_device(cli_actor, device)
    with pytest.raises(actions.ActionError, match="no longer exists"):
        actions.self_approve(self_service(org["amy"]), device)
