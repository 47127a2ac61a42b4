"""The web tests' world: an Organization Management login, a Help Desk login, two end
users with a mailbox and devices each, an outsider, and a rule.

Roles are made here with get_or_create rather than trusted to migration
0004_roles, so the fixtures also hold in transactional tests (which flush the
groups the migration made).
"""

from types import SimpleNamespace

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from devices import actions
from devices.audit import Actor
from devices.models import AccessLevel, AccessState, AuditSource, Mailbox, MobileDevice
from devices.permissions import HELP_DESK_GROUP, ORG_MANAGEMENT_GROUP

PASSWORD = "correct horse battery staple"
GATE = Actor(source=AuditSource.GATE)
SETUP = Actor(source=AuditSource.CLI)


def contact(mailbox, device_id, device_type, model="", os="", user_agent=""):
    """A device reporting itself through the gate, DeviceInformation included."""
    info = {"model": model, "os": os} if (model or os) else {}
    return actions.record_contact(
        GATE,
        mailbox,
        actions.Contact(
            device_id=device_id, device_type=device_type, user_agent=user_agent, info=info
        ),
    )


def make_user(username, *, groups=(), superuser=False, mailbox=None):
    User = get_user_model()
    if superuser:
        user = User.objects.create_superuser(username, f"{username}@example.org", PASSWORD)
    else:
        user = User.objects.create_user(username, f"{username}@example.org", PASSWORD)
    for name in groups:
        user.groups.add(Group.objects.get_or_create(name=name)[0])
    if mailbox is not None:
        Mailbox.objects.filter(pk=mailbox.pk).update(user=user)
        mailbox.user = user
    return user


def build_world():
    actions.set_org_settings(SETUP, default_access_level=AccessLevel.QUARANTINE)
    alice_box = actions.create_mailbox(
        SETUP, alias="alice", email="alice@example.org", display_name="Alice Archer"
    ).obj
    bob_box = actions.create_mailbox(
        SETUP, alias="bob", email="bob@example.org", display_name="Bob Baker"
    ).obj
    carol_box = actions.create_mailbox(
        SETUP, alias="carol", email="carol@example.org", display_name="Carol Cole"
    ).obj
    w = SimpleNamespace()
    w.alice_box, w.bob_box, w.carol_box = alice_box, bob_box, carol_box
    w.org = make_user("orgadmin", groups=[ORG_MANAGEMENT_GROUP])
    w.superuser = make_user("root", superuser=True)
    w.helpdesk = make_user("hd", groups=[HELP_DESK_GROUP])
    w.alice = make_user("alice", mailbox=alice_box)
    w.bob = make_user("bob", mailbox=bob_box)
    w.nobody = make_user("nobody")
    w.alice_phone = contact(alice_box, "ALICEIPHONE1", "iPhone", "iPhone15,2", "iOS 17.4")
    w.alice_tablet = contact(alice_box, "ALICEIPAD1", "iPad", "iPad13,1", "iOS 17.4")
    w.bob_phone = contact(bob_box, "BOBANDROID1", "Android", "SM-S918B", "Android 14")
    w.carol_phone = contact(carol_box, "CAROLIPHONE1", "iPhone", "iPhone14,5", "iOS 16.7")
    w.rule = actions.create_rule(
        SETUP, characteristic="DeviceModel", query_string="SM-G9*", access_level="Block"
    ).obj
    for device in (w.alice_phone, w.alice_tablet, w.bob_phone, w.carol_phone):
        device.refresh_from_db()
        assert device.access_state == AccessState.QUARANTINED
    return w


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # The real hasher costs a quarter of a second per login made.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def world(db):
    return build_world()


def state_of(device) -> str:
    return MobileDevice.objects.get(pk=device.pk).access_state
