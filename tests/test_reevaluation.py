"""Re-evaluation after every kind of change, through devices.actions, with the database.

For each change: the devices' state, reason and rule in the database; one
DeviceStateChange row per device that moved (none for the others), tied to the
action's AuditEvent; exactly one AuditEvent per action, with before/after and
source "cli"; bad input raises ActionError and changes nothing.
"""

import math
from collections import Counter
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from devices import actions
from devices.actions import ActionError
from devices.audit import Actor
from devices.models import (
    AccessReason,
    AccessState,
    AuditEvent,
    AuditSource,
    DeviceAccessRule,
    DeviceIdList,
    DeviceStateChange,
    Mailbox,
    MailboxDeviceId,
    MobileDevice,
    OrgSettings,
)

pytestmark = pytest.mark.django_db

CLI = Actor(source=AuditSource.CLI)

ALLOWED, BLOCKED = AccessState.ALLOWED, AccessState.BLOCKED
QUARANTINED, DISCOVERY = AccessState.QUARANTINED, AccessState.DEVICE_DISCOVERY
GLOBAL, INDIVIDUAL = AccessReason.GLOBAL, AccessReason.INDIVIDUAL
DEVICE_RULE, POLICY = AccessReason.DEVICE_RULE, AccessReason.POLICY

IPHONE = {
    "device_type": "iPhone",
    "device_model": "iPhone14,2",
    "device_os": "iOS 17.1",
    "user_agent": "Apple-iPhone14C2/2104.100",
}
ANDROID = {
    "device_type": "Android",
    "device_model": "SM-G991B",
    "device_os": "Android 14",
    "user_agent": "Android-Mail/2024.01",
}
IPAD = {
    "device_type": "iPad",
    "device_model": "iPad13,1",
    "device_os": "iPadOS 17.1",
    "user_agent": "Apple-iPad13C1/2104.100",
}


# ---------------------------------------------------------------------------
# factories and helpers


def make_mailbox(alias, **fields):
    return Mailbox.objects.create(
        alias=alias, primary_smtp_address=f"{alias}@example.org", display_name=alias, **fields
    )


def make_device(mailbox, device_id, profile=IPHONE, **fields):
    fields = {"device_info_received": True, **profile, **fields}
    return MobileDevice.objects.create(mailbox=mailbox, device_id=device_id, **fields)


def bulk_devices(mailbox, count, prefix, profiles):
    """Many devices at once; bulk_create skips save(), so set device_key here."""
    return MobileDevice.objects.bulk_create(
        MobileDevice(
            mailbox=mailbox,
            device_id=f"{prefix}{i:05d}",
            device_key=f"{prefix}{i:05d}".lower(),
            device_info_received=True,
            **profiles[i % len(profiles)],
        )
        for i in range(count)
    )


def settle():
    """Bring every device to its decided state (new devices start Unknown)."""
    actions.reevaluate(MobileDevice.objects.all(), None)


def set_default(level):
    """Set-up only: change the org default without an action, then settle."""
    OrgSettings.objects.filter(pk=1).update(default_access_level=level)
    settle()


def access(device):
    device.refresh_from_db()
    return device.access_state, device.access_state_reason, device.access_rule_id


def _last_pk(model):
    return model.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def _states():
    return {
        pk: (state, reason, rule)
        for pk, state, reason, rule in MobileDevice.objects.values_list(
            "pk", "access_state", "access_state_reason", "access_rule_id"
        )
    }


def db_state():
    """Everything an action may change, to show that a refused one changed nothing."""
    return {
        "events": AuditEvent.objects.count(),
        "changes": DeviceStateChange.objects.count(),
        "devices": sorted(
            MobileDevice.objects.values_list(
                "device_id", "access_state", "access_state_reason", "access_rule_id"
            )
        ),
        "lists": sorted(MailboxDeviceId.objects.values_list("mailbox__alias", "device_id", "list")),
        "rules": sorted(
            DeviceAccessRule.objects.values_list("characteristic", "query_string", "access_level")
        ),
        "mailboxes": sorted(
            Mailbox.objects.values_list(
                "alias", "primary_smtp_address", "display_name", "activesync_enabled"
            )
        ),
        "org": actions.org_snapshot(OrgSettings.objects.get(pk=1)),
    }


def lists_of(mailbox):
    return sorted(mailbox.device_ids.values_list("device_id", "list"))


def state_changes(transitions):
    return Counter((t.from_state, t.to_state) for t in transitions if t.from_state != t.to_state)


class Watch:
    """What one action did: its audit events, state-change rows and moved devices."""

    def __init__(self):
        self.event_mark = _last_pk(AuditEvent)
        self.change_mark = _last_pk(DeviceStateChange)
        self.before = _states()

    def events(self):
        return list(AuditEvent.objects.filter(pk__gt=self.event_mark))

    def changes(self):
        return list(DeviceStateChange.objects.filter(pk__gt=self.change_mark))

    def check(self, result, action, *, moved):
        """One audit event for the action; one state-change row per moved device, tied to it."""
        events = self.events()
        assert [e.pk for e in events] == [result.event.pk]
        event = events[0]
        assert (event.action, event.source, event.actor_name) == (action, "cli", "cli")
        after = _states()
        assert {pk for pk, s in after.items() if self.before.get(pk) != s} == {d.pk for d in moved}
        changes = self.changes()
        assert sorted(c.device_id for c in changes) == sorted(d.pk for d in moved)
        for change in changes:
            assert change.event_id == event.pk
            assert (change.from_state, change.from_reason) == self.before[change.device_id][:2]
            assert (change.to_state, change.to_reason, change.rule_id) == after[change.device_id]
        assert len(result.transitions) == len(changes)
        return event


@pytest.fixture
def world():
    """Two mailboxes; every device has sent DeviceInformation; default Allow, no rules.

    alice: iphone, android.  bob: ipad, and "BobPhone" on bob's allowed list.
    """
    OrgSettings.load()
    alice, bob = make_mailbox("alice"), make_mailbox("bob")
    w = SimpleNamespace(
        alice=alice,
        bob=bob,
        iphone=make_device(alice, "ApplIPHONE0001", IPHONE),
        android=make_device(alice, "androidc0ffee01", ANDROID),
        ipad=make_device(bob, "ApplIPAD0002", IPAD),
        listed=make_device(bob, "BobPhone", IPHONE),
    )
    MailboxDeviceId.objects.create(mailbox=bob, device_id="bobphone", list=DeviceIdList.ALLOWED)
    settle()
    assert access(w.iphone) == access(w.android) == access(w.ipad) == (ALLOWED, GLOBAL, None)
    assert access(w.listed) == (ALLOWED, INDIVIDUAL, None)
    return w


def create_rule(characteristic, query_string, access_level):
    return actions.create_rule(
        CLI, characteristic=characteristic, query_string=query_string, access_level=access_level
    ).obj


# ---------------------------------------------------------------------------
# the organisation default


def test_quarantine_default_quarantines_global_devices_and_back(world):
    ipad_rule = create_rule("DeviceType", "iPad", "Allow")
    assert access(world.ipad) == (ALLOWED, DEVICE_RULE, ipad_rule.pk)

    preview = actions.preview_org_settings(default_access_level="Quarantine")
    watch = Watch()
    result = actions.set_org_settings(CLI, default_access_level="quarantine")
    event = watch.check(result, "org_settings.update", moved=[world.iphone, world.android])
    assert event.before["default_access_level"] == "Allow"
    assert event.after["default_access_level"] == "Quarantine"
    assert access(world.iphone) == access(world.android) == (QUARANTINED, GLOBAL, None)
    # on an allowed list or decided by a rule: untouched
    assert access(world.listed) == (ALLOWED, INDIVIDUAL, None)
    assert access(world.ipad) == (ALLOWED, DEVICE_RULE, ipad_rule.pk)
    assert preview == state_changes(result.transitions) == {(ALLOWED, QUARANTINED): 2}
    assert "2 devices from allowed to quarantined" in event.message

    preview = actions.preview_org_settings(default_access_level="Allow")
    watch = Watch()
    result = actions.set_org_settings(CLI, default_access_level="Allow")
    event = watch.check(result, "org_settings.update", moved=[world.iphone, world.android])
    assert (event.before["default_access_level"], event.after["default_access_level"]) == (
        "Quarantine",
        "Allow",
    )
    assert access(world.iphone) == access(world.android) == (ALLOWED, GLOBAL, None)
    assert access(world.listed) == (ALLOWED, INDIVIDUAL, None)
    assert access(world.ipad) == (ALLOWED, DEVICE_RULE, ipad_rule.pk)
    assert preview == state_changes(result.transitions) == {(QUARANTINED, ALLOWED): 2}


def test_block_default_blocks_global_devices(world):
    preview = actions.preview_org_settings(default_access_level="Block")
    watch = Watch()
    result = actions.set_org_settings(CLI, default_access_level="Block")
    watch.check(result, "org_settings.update", moved=[world.iphone, world.android, world.ipad])
    assert access(world.ipad) == (BLOCKED, GLOBAL, None)
    assert access(world.listed) == (ALLOWED, INDIVIDUAL, None)
    assert preview == state_changes(result.transitions) == {(ALLOWED, BLOCKED): 3}


def test_the_same_default_again_moves_nothing(world):
    assert actions.preview_org_settings(default_access_level="Allow") == Counter()
    watch = Watch()
    result = actions.set_org_settings(CLI, default_access_level="Allow")
    watch.check(result, "org_settings.update", moved=[])


def test_mail_settings_do_not_move_devices(world):
    watch = Watch()
    result = actions.set_org_settings(
        CLI,
        admin_mail_recipients=["helpdesk@example.org", "HELPDESK@example.org", "it@example.org"],
        user_mail_insert="Call the helpdesk on 1234.",
    )
    event = watch.check(result, "org_settings.update", moved=[])
    assert event.before["admin_mail_recipients"] == []
    assert event.after["admin_mail_recipients"] == ["helpdesk@example.org", "it@example.org"]
    assert event.after["user_mail_insert"] == "Call the helpdesk on 1234."


@pytest.mark.parametrize(
    "change",
    [
        {"default_access_level": "Sometimes"},
        {"default_access_level": ""},
        {"default_access_level": "Quarantine", "admin_mail_recipients": ["not an address"]},
        {"admin_mail_recipients": ["helpdesk@example.org", "@example.org"]},
        {"admin_mail_recipients": ["helpdesk@"]},
        {"default_access_level": "Block", "discovery_window_minutes": -1},
        {"discovery_window_minutes": 1441},
        {"user_mail_insert": "x" * 4001},
    ],
)
def test_bad_org_settings_change_nothing(world, change):
    before = db_state()
    with pytest.raises(ActionError):
        actions.set_org_settings(CLI, **change)
    assert db_state() == before


# ---------------------------------------------------------------------------
# the discovery window


@pytest.fixture
def newcomer(world):
    """A device that has not sent DeviceInformation, first seen 10 minutes ago."""
    device = make_device(
        world.alice,
        "NEWCOMER01",
        {"device_type": "iPhone", "user_agent": "Apple-iPhone/2104"},
        device_info_received=False,
        first_seen=timezone.now() - timedelta(minutes=10),
    )
    settle()
    assert access(device) == (ALLOWED, GLOBAL, None)
    return device


def test_discovery_window_changes_move_devices_in_and_out_of_discovery(world, newcomer):
    watch = Watch()
    result = actions.set_org_settings(CLI, default_access_level="Quarantine")
    watch.check(
        result, "org_settings.update", moved=[world.iphone, world.android, world.ipad, newcomer]
    )
    assert access(newcomer) == (DISCOVERY, GLOBAL, None)  # inside the 15-minute window
    assert access(world.iphone) == (QUARANTINED, GLOBAL, None)

    watch = Watch()
    result = actions.set_org_settings(CLI, discovery_window_minutes=5)
    event = watch.check(result, "org_settings.update", moved=[newcomer])
    assert (event.before["discovery_window_minutes"], event.after["discovery_window_minutes"]) == (
        15,
        5,
    )
    assert access(newcomer) == (QUARANTINED, GLOBAL, None)

    watch = Watch()
    result = actions.set_org_settings(CLI, discovery_window_minutes=30)
    watch.check(result, "org_settings.update", moved=[newcomer])
    assert access(newcomer) == (DISCOVERY, GLOBAL, None)

    watch = Watch()
    result = actions.set_org_settings(CLI, discovery_window_minutes=0)
    watch.check(result, "org_settings.update", moved=[newcomer])
    assert access(newcomer) == (QUARANTINED, GLOBAL, None)


def test_a_model_rule_puts_devices_without_information_in_discovery(world, newcomer):
    watch = Watch()
    result = actions.create_rule(
        CLI, characteristic="DeviceModel", query_string="Pixel*", access_level="Block"
    )
    watch.check(result, "rule.create", moved=[newcomer])
    assert access(newcomer) == (DISCOVERY, GLOBAL, None)

    watch = Watch()
    result = actions.delete_rule(CLI, result.obj)
    watch.check(result, "rule.delete", moved=[newcomer])
    assert access(newcomer) == (ALLOWED, GLOBAL, None)


def test_a_devicetype_rule_decides_before_discovery(world, newcomer):
    set_default("Quarantine")
    assert access(newcomer) == (DISCOVERY, GLOBAL, None)
    watch = Watch()
    result = actions.create_rule(
        CLI, characteristic="DeviceType", query_string="iphone", access_level="Allow"
    )
    watch.check(result, "rule.create", moved=[newcomer, world.iphone])
    rule = result.obj
    assert access(newcomer) == access(world.iphone) == (ALLOWED, DEVICE_RULE, rule.pk)


# ---------------------------------------------------------------------------
# device access rules


def test_creating_a_rule_reevaluates_matching_devices(world):
    preview = actions.preview_rule(
        characteristic="DeviceType", query_string="IPHONE", access_level="Block"
    )
    watch = Watch()
    result = actions.create_rule(
        CLI, characteristic="devicetype", query_string="IPHONE", access_level="block"
    )
    event = watch.check(result, "rule.create", moved=[world.iphone])
    rule = result.obj
    assert (rule.characteristic, rule.query_string, rule.access_level) == (
        "DeviceType",
        "IPHONE",
        "Block",
    )
    assert event.before is None
    assert event.after == {
        "characteristic": "DeviceType",
        "query_string": "IPHONE",
        "access_level": "Block",
    }
    assert access(world.iphone) == (BLOCKED, DEVICE_RULE, rule.pk)
    assert access(world.listed) == (ALLOWED, INDIVIDUAL, None)  # same type, but on the list
    assert access(world.ipad) == access(world.android) == (ALLOWED, GLOBAL, None)
    assert preview == state_changes(result.transitions) == {(ALLOWED, BLOCKED): 1}


def test_updating_a_rules_level(world):
    rule = create_rule("DeviceType", "iPhone", "Block")
    preview = actions.preview_rule(
        characteristic="DeviceType", query_string="iPhone", access_level="Quarantine", rule=rule
    )
    watch = Watch()
    result = actions.update_rule(CLI, rule, access_level="Quarantine")
    event = watch.check(result, "rule.update", moved=[world.iphone])
    assert event.before["access_level"] == "Block"
    assert event.after["access_level"] == "Quarantine"
    assert access(world.iphone) == (QUARANTINED, DEVICE_RULE, rule.pk)
    assert preview == state_changes(result.transitions) == {(BLOCKED, QUARANTINED): 1}


def test_updating_a_rules_characteristic(world):
    rule = create_rule("UserAgent", "Apple-*", "Quarantine")
    assert access(world.iphone) == access(world.ipad) == (QUARANTINED, DEVICE_RULE, rule.pk)

    # The same query on DeviceModel matches nothing: both back to the default.
    preview = actions.preview_rule(
        characteristic="DeviceModel", query_string="Apple-*", access_level="Quarantine", rule=rule
    )
    watch = Watch()
    result = actions.update_rule(CLI, rule, characteristic="DeviceModel")
    event = watch.check(result, "rule.update", moved=[world.iphone, world.ipad])
    assert (event.before["characteristic"], event.after["characteristic"]) == (
        "UserAgent",
        "DeviceModel",
    )
    assert access(world.iphone) == access(world.ipad) == (ALLOWED, GLOBAL, None)
    assert preview == state_changes(result.transitions) == {(QUARANTINED, ALLOWED): 2}

    watch = Watch()
    result = actions.update_rule(CLI, rule, query_string="ipad*")
    watch.check(result, "rule.update", moved=[world.ipad])
    assert access(world.ipad) == (QUARANTINED, DEVICE_RULE, rule.pk)
    assert access(world.iphone) == (ALLOWED, GLOBAL, None)


def test_deleting_a_rule(world):
    rule = create_rule("DeviceOS", "*OS 17*", "Block")
    assert access(world.iphone) == access(world.ipad) == (BLOCKED, DEVICE_RULE, rule.pk)
    preview = actions.preview_rule_removal(rule)
    watch = Watch()
    result = actions.delete_rule(CLI, rule)
    event = watch.check(result, "rule.delete", moved=[world.iphone, world.ipad])
    assert event.before == {
        "characteristic": "DeviceOS",
        "query_string": "*OS 17*",
        "access_level": "Block",
    }
    assert event.after is None
    assert not DeviceAccessRule.objects.exists()
    assert access(world.iphone) == access(world.ipad) == (ALLOWED, GLOBAL, None)
    assert preview == state_changes(result.transitions) == {(BLOCKED, ALLOWED): 2}


def test_a_glob_rule(world):
    watch = Watch()
    result = actions.create_rule(
        CLI, characteristic="DeviceOS", query_string="ios*", access_level="Quarantine"
    )
    watch.check(result, "rule.create", moved=[world.iphone])  # not "iPadOS 17.1"
    assert access(world.iphone) == (QUARANTINED, DEVICE_RULE, result.obj.pk)

    watch = Watch()
    result = actions.create_rule(
        CLI, characteristic="DeviceModel", query_string="*,*", access_level="Block"
    )
    watch.check(result, "rule.create", moved=[world.ipad])  # DeviceOS decides the iPhone
    assert access(world.ipad) == (BLOCKED, DEVICE_RULE, result.obj.pk)
    assert access(world.android) == (ALLOWED, GLOBAL, None)


def test_rule_precedence_across_characteristics(world):
    type_rule = create_rule("DeviceType", "iPhone", "Block")
    assert access(world.iphone) == (BLOCKED, DEVICE_RULE, type_rule.pk)

    # An Allow rule on UserAgent beats the Block rule on DeviceType.
    preview = actions.preview_rule(
        characteristic="UserAgent", query_string="apple-iphone*", access_level="Allow"
    )
    watch = Watch()
    result = actions.create_rule(
        CLI, characteristic="UserAgent", query_string="apple-iphone*", access_level="Allow"
    )
    watch.check(result, "rule.create", moved=[world.iphone])
    ua_rule = result.obj
    assert access(world.iphone) == (ALLOWED, DEVICE_RULE, ua_rule.pk)
    assert preview == state_changes(result.transitions) == {(BLOCKED, ALLOWED): 1}

    # DeviceOS beats DeviceModel; the UserAgent rule still beats both.
    create_rule("DeviceModel", "iPad13,1", "Allow")
    os_rule = create_rule("DeviceOS", "iPadOS*", "Quarantine")
    assert access(world.ipad) == (QUARANTINED, DEVICE_RULE, os_rule.pk)
    assert access(world.iphone) == (ALLOWED, DEVICE_RULE, ua_rule.pk)

    watch = Watch()
    result = actions.delete_rule(CLI, ua_rule)
    watch.check(result, "rule.delete", moved=[world.iphone])
    assert access(world.iphone) == (BLOCKED, DEVICE_RULE, type_rule.pk)


def test_the_most_restrictive_rule_inside_a_characteristic_wins(world):
    allow = create_rule("DeviceModel", "iPhone14,2", "Allow")
    assert access(world.iphone) == (ALLOWED, DEVICE_RULE, allow.pk)
    watch = Watch()
    result = actions.create_rule(
        CLI, characteristic="DeviceModel", query_string="iPhone*", access_level="Quarantine"
    )
    watch.check(result, "rule.create", moved=[world.iphone])
    assert access(world.iphone) == (QUARANTINED, DEVICE_RULE, result.obj.pk)


def test_duplicate_rules_are_refused_case_insensitively(world):
    rule = create_rule("DeviceType", "iPhone", "Block")
    other = create_rule("DeviceType", "iPad", "Allow")
    before = db_state()
    with pytest.raises(ActionError):
        actions.create_rule(
            CLI, characteristic="DeviceType", query_string="IPHONE", access_level="Allow"
        )
    with pytest.raises(ActionError):
        actions.create_rule(
            CLI, characteristic="devicetype", query_string=" iphone ", access_level="Block"
        )
    with pytest.raises(ActionError):
        actions.update_rule(CLI, other, query_string="iphone")
    assert db_state() == before
    # The same query on another characteristic is a different rule.
    create_rule("DeviceModel", "iPhone", "Allow")
    # Re-saving a rule under its own query in another case is fine.
    actions.update_rule(CLI, rule, query_string="IPHONE")
    assert DeviceAccessRule.objects.get(pk=rule.pk).query_string == "IPHONE"


@pytest.mark.parametrize(
    "characteristic,query_string,access_level",
    [
        ("Colour", "iPhone", "Block"),
        ("", "iPhone", "Block"),
        ("DeviceType", "iPhone", "Maybe"),
        ("DeviceType", "iPhone", ""),
        ("DeviceType", "", "Block"),
        ("DeviceType", "   ", "Block"),
        ("DeviceType", None, "Block"),
        ("DeviceType", "x" * 257, "Block"),
    ],
)
def test_bad_rules_change_nothing(world, characteristic, query_string, access_level):
    rule = create_rule("DeviceModel", "SM-*", "Quarantine")
    before = db_state()
    with pytest.raises(ActionError):
        actions.create_rule(
            CLI,
            characteristic=characteristic,
            query_string=query_string,
            access_level=access_level,
        )
    if query_string is not None:  # None means "keep the query" to update_rule
        with pytest.raises(ActionError):
            actions.update_rule(
                CLI,
                rule,
                characteristic=characteristic,
                query_string=query_string,
                access_level=access_level,
            )
    with pytest.raises(ActionError):
        actions.preview_rule(
            characteristic=characteristic, query_string=query_string, access_level=access_level
        )
    assert db_state() == before


# ---------------------------------------------------------------------------
# mailboxes: ActiveSync off and on, the allowed and blocked lists


def test_activesync_off_blocks_by_policy_and_on_restores(world):
    watch = Watch()
    result = actions.set_mailbox(CLI, world.bob, activesync_enabled=False)
    event = watch.check(result, "mailbox.update", moved=[world.ipad, world.listed])
    assert event.before["activesync_enabled"] is True
    assert event.after["activesync_enabled"] is False
    assert access(world.ipad) == access(world.listed) == (BLOCKED, POLICY, None)
    assert access(world.iphone) == (ALLOWED, GLOBAL, None)  # another mailbox

    watch = Watch()
    result = actions.set_mailbox(CLI, world.bob, activesync_enabled=True)
    watch.check(result, "mailbox.update", moved=[world.ipad, world.listed])
    assert access(world.ipad) == (ALLOWED, GLOBAL, None)
    assert access(world.listed) == (ALLOWED, INDIVIDUAL, None)


def test_set_mailbox_lists_move_an_id_between_lists(world):
    set_default("Quarantine")
    assert access(world.iphone) == (QUARANTINED, GLOBAL, None)

    watch = Watch()
    result = actions.set_mailbox(CLI, world.alice, add_allowed=["appliphone0001"])
    event = watch.check(result, "mailbox.update", moved=[world.iphone])
    assert event.before["allowed_device_ids"] == []
    assert event.after["allowed_device_ids"] == ["appliphone0001"]
    assert access(world.iphone) == (ALLOWED, INDIVIDUAL, None)

    watch = Watch()
    result = actions.set_mailbox(CLI, world.alice, add_blocked=["APPLIPHONE0001"])
    event = watch.check(result, "mailbox.update", moved=[world.iphone])
    assert (event.after["allowed_device_ids"], event.after["blocked_device_ids"]) == (
        [],
        ["appliphone0001"],
    )
    assert lists_of(world.alice) == [("appliphone0001", DeviceIdList.BLOCKED)]
    assert access(world.iphone) == (BLOCKED, INDIVIDUAL, None)

    watch = Watch()
    result = actions.set_mailbox(CLI, world.alice, remove_blocked=["ApplIphone0001"])
    watch.check(result, "mailbox.update", moved=[world.iphone])
    assert lists_of(world.alice) == []
    assert access(world.iphone) == (QUARANTINED, GLOBAL, None)


def test_removing_an_id_from_the_allowed_list(world):
    set_default("Quarantine")
    watch = Watch()
    result = actions.set_mailbox(CLI, world.bob, remove_allowed=["BOBPHONE"])
    event = watch.check(result, "mailbox.update", moved=[world.listed])
    assert event.before["allowed_device_ids"] == ["bobphone"]
    assert event.after["allowed_device_ids"] == []
    assert access(world.listed) == (QUARANTINED, GLOBAL, None)


def test_removing_an_id_that_is_not_listed_moves_nothing(world):
    watch = Watch()
    result = actions.set_mailbox(CLI, world.bob, remove_blocked=["BobPhone"])
    watch.check(result, "mailbox.update", moved=[])
    assert lists_of(world.bob) == [("bobphone", DeviceIdList.ALLOWED)]


def test_block_device_and_allow_device(world):
    watch = Watch()
    result = actions.block_device(CLI, world.bob, "BOBPHONE")
    event = watch.check(result, "device.block", moved=[world.listed])
    assert event.object_id == str(world.listed.pk)
    assert event.before["allowed_device_ids"] == ["bobphone"]
    assert event.after["blocked_device_ids"] == ["bobphone"]
    assert event.after["allowed_device_ids"] == []
    assert lists_of(world.bob) == [("bobphone", DeviceIdList.BLOCKED)]
    assert access(world.listed) == (BLOCKED, INDIVIDUAL, None)
    assert result.obj.access_state == BLOCKED

    watch = Watch()
    result = actions.allow_device(CLI, world.bob, "bobPHONE")
    watch.check(result, "device.allow", moved=[world.listed])
    assert lists_of(world.bob) == [("bobphone", DeviceIdList.ALLOWED)]
    assert access(world.listed) == (ALLOWED, INDIVIDUAL, None)


def test_allow_device_releases_a_quarantined_device_only(world):
    set_default("Quarantine")
    watch = Watch()
    result = actions.allow_device(CLI, world.alice, "APPLIPHONE0001")
    watch.check(result, "device.allow", moved=[world.iphone])
    assert access(world.iphone) == (ALLOWED, INDIVIDUAL, None)
    assert access(world.android) == (QUARANTINED, GLOBAL, None)
    # the list keeps the spelling the device uses
    assert lists_of(world.alice) == [("ApplIPHONE0001", DeviceIdList.ALLOWED)]


def test_allow_device_before_the_device_exists_pre_approves_it(world):
    set_default("Quarantine")
    watch = Watch()
    result = actions.allow_device(CLI, world.alice, "FutureDevice01")
    event = watch.check(result, "device.allow", moved=[])
    assert result.obj is None
    assert event.object_id == ""
    assert event.after["allowed_device_ids"] == ["FutureDevice01"]

    expected = make_device(world.alice, "FUTUREDEVICE01", ANDROID)
    stranger = make_device(world.alice, "Stranger01", ANDROID)
    settle()
    assert access(expected) == (ALLOWED, INDIVIDUAL, None)
    assert access(stranger) == (QUARANTINED, GLOBAL, None)


@pytest.mark.parametrize("device_id", ["", "   ", "has space", "x" * 65, "tab\there", "nul\x00"])
def test_invalid_device_ids_change_nothing(world, device_id):
    before = db_state()
    with pytest.raises(ActionError):
        actions.allow_device(CLI, world.alice, device_id)
    with pytest.raises(ActionError):
        actions.block_device(CLI, world.alice, device_id)
    for change in ("add_allowed", "add_blocked", "remove_allowed", "remove_blocked"):
        with pytest.raises(ActionError):
            # a valid change in the same call is not applied either
            actions.set_mailbox(
                CLI, world.alice, activesync_enabled=False, **{change: ["ok-id", device_id]}
            )
    assert db_state() == before


def test_one_id_on_both_lists_at_once_is_refused(world):
    before = db_state()
    with pytest.raises(ActionError):
        actions.set_mailbox(
            CLI, world.alice, add_allowed=["ApplIPHONE0001"], add_blocked=["appliphone0001"]
        )
    assert db_state() == before


@pytest.mark.parametrize(
    "alias,email",
    [("carol", "not-an-address"), ("carol", "carol@"), ("carol", ""), ("ALICE", "a2@example.org")],
)
def test_bad_mailboxes_change_nothing(world, alias, email):
    before = db_state()
    with pytest.raises(ActionError):
        actions.create_mailbox(CLI, alias=alias, email=email)
    assert db_state() == before


# ---------------------------------------------------------------------------
# removing a partnership


def test_remove_device(world):
    set_default("Quarantine")
    pk = world.iphone.pk
    old_history = DeviceStateChange.objects.filter(device=world.iphone).count()
    assert old_history
    watch = Watch()
    result = actions.remove_device(CLI, world.iphone)
    events = watch.events()
    assert [e.pk for e in events] == [result.event.pk]
    event = events[0]
    assert (event.action, event.source, event.object_id) == (
        "device.remove",
        "cli",
        str(pk),
    )
    assert event.before["device_id"] == "ApplIPHONE0001"
    # world.iphone was loaded before it was quarantined: the audit records the
    # state in the database, not the caller's stale copy
    assert event.before["access_state"] == QUARANTINED
    assert watch.changes() == []
    assert not MobileDevice.objects.filter(pk=pk).exists()
    assert access(world.android) == (QUARANTINED, GLOBAL, None)
    # the history stays, without its device
    assert DeviceStateChange.objects.filter(device__isnull=True).count() == old_history

    # The device starts over when it syncs again.
    again = make_device(world.alice, "ApplIPHONE0001", IPHONE)
    assert again.access_state == AccessState.UNKNOWN
    settle()
    assert access(again) == (QUARANTINED, GLOBAL, None)


def test_removing_a_removed_device_is_refused(world):
    stale_copy = MobileDevice.objects.get(pk=world.android.pk)
    actions.remove_device(CLI, world.android)
    before = db_state()
    with pytest.raises(ActionError):
        actions.remove_device(CLI, stale_copy)
    assert db_state() == before  # no second "device.remove" event


def test_remove_device_keeps_the_mailbox_lists(world):
    # As Remove-MobileDevice does: the allowed list is the mailbox's, not the partnership's.
    actions.remove_device(CLI, world.listed)
    assert lists_of(world.bob) == [("bobphone", DeviceIdList.ALLOWED)]
    again = make_device(world.bob, "BobPhone", IPHONE)
    settle()
    assert access(again) == (ALLOWED, INDIVIDUAL, None)


# ---------------------------------------------------------------------------
# grandfathering existing devices


def test_grandfather_devices(world):
    MailboxDeviceId.objects.create(mailbox=world.alice, device_id="OldPhone", list="blocked")
    ipad_rule = create_rule("DeviceType", "iPad", "Allow")

    before = db_state()
    dry = actions.grandfather_devices(CLI, dry_run=True)
    assert dry.count == 2 and dry.event is None
    assert db_state() == before

    watch = Watch()
    result = actions.grandfather_devices(CLI)
    event = watch.check(result, "devices.grandfather", moved=[world.iphone, world.android])
    assert result.count == 2
    assert event.after == {"count": 2}
    assert "2 devices" in event.message
    assert lists_of(world.alice) == [
        ("ApplIPHONE0001", DeviceIdList.ALLOWED),
        ("OldPhone", DeviceIdList.BLOCKED),
        ("androidc0ffee01", DeviceIdList.ALLOWED),
    ]
    assert lists_of(world.bob) == [("bobphone", DeviceIdList.ALLOWED)]  # merged, not doubled
    assert access(world.iphone) == access(world.android) == (ALLOWED, INDIVIDUAL, None)
    assert access(world.ipad) == (ALLOWED, DEVICE_RULE, ipad_rule.pk)

    # Switching to Quarantine afterwards changes no grandfathered device...
    watch = Watch()
    result = actions.set_org_settings(CLI, default_access_level="Quarantine")
    watch.check(result, "org_settings.update", moved=[])
    # ...but a device that arrives later waits in quarantine.
    late = make_device(world.alice, "LateComer01", ANDROID)
    settle()
    assert access(late) == (QUARANTINED, GLOBAL, None)

    # Nothing is left to grandfather.
    watch = Watch()
    result = actions.grandfather_devices(CLI)
    watch.check(result, "devices.grandfather", moved=[])
    assert result.count == 0


# ---------------------------------------------------------------------------
# purging stale quarantine


@pytest.fixture
def stale(world):
    set_default("Quarantine")
    blocked = make_device(world.alice, "Blocked01", ANDROID)
    MailboxDeviceId.objects.create(mailbox=world.alice, device_id="blocked01", list="blocked")
    settle()
    now = timezone.now()
    for device, days in [(world.iphone, 40), (world.android, 10), (blocked, 90)]:
        MobileDevice.objects.filter(pk=device.pk).update(
            state_changed_at=now - timedelta(days=days)
        )
    assert access(world.ipad) == (QUARANTINED, GLOBAL, None)
    assert access(blocked) == (BLOCKED, INDIVIDUAL, None)
    world.blocked = blocked
    return world


def _purge_events(watch):
    events = watch.events()
    assert all(
        (e.action, e.source, e.object_type) == ("device.purge", "cli", "MobileDevice")
        for e in events
    )
    return {int(e.object_id): e for e in events}


def test_purge_quarantined_older_than_n_days(stale):
    before = db_state()
    dry = actions.purge_quarantined(CLI, older_than_days=30, dry_run=True)
    assert dry.count == 1 and [d.pk for d in dry.obj] == [stale.iphone.pk]
    assert db_state() == before

    watch = Watch()
    result = actions.purge_quarantined(CLI, older_than_days=30)
    assert result.count == 1
    events = _purge_events(watch)
    assert list(events) == [stale.iphone.pk]
    assert events[stale.iphone.pk].before["access_state"] == QUARANTINED
    assert events[stale.iphone.pk].before["device_id"] == "ApplIPHONE0001"
    assert watch.changes() == []
    remaining = set(MobileDevice.objects.values_list("pk", flat=True))
    assert remaining == {stale.android.pk, stale.ipad.pk, stale.listed.pk, stale.blocked.pk}


def test_purge_quarantined_zero_days_removes_every_quarantined_device(stale):
    before = db_state()
    dry = actions.purge_quarantined(CLI, older_than_days=0, dry_run=True)
    assert dry.count == 3
    assert db_state() == before

    watch = Watch()
    result = actions.purge_quarantined(CLI, older_than_days=0)
    assert result.count == 3
    assert set(_purge_events(watch)) == {stale.iphone.pk, stale.android.pk, stale.ipad.pk}
    remaining = set(MobileDevice.objects.values_list("pk", flat=True))
    assert remaining == {stale.listed.pk, stale.blocked.pk}  # Allowed and Blocked stay


def test_purge_with_nothing_stale_writes_nothing(stale):
    before = db_state()
    result = actions.purge_quarantined(CLI, older_than_days=365)
    assert result.count == 0
    assert db_state() == before


def test_purge_refuses_negative_days(stale):
    before = db_state()
    with pytest.raises(ActionError):
        actions.purge_quarantined(CLI, older_than_days=-1)
    assert db_state() == before


# ---------------------------------------------------------------------------
# set-based: the number of queries does not grow with the number of devices

PROFILES = [
    {**IPHONE, "device_model": "Bulk-1"},
    {**IPHONE, "device_model": "Bulk-2"},
    {**ANDROID, "device_model": "Bulk-3"},
    {**ANDROID, "device_model": "Bulk-4"},
]


def _history_inserts(count):
    """INSERTs bulk_create needs for `count` DeviceStateChange rows on this database.

    SQLite binds at most 999 parameters per statement in Django, so 111 rows of
    9 columns per INSERT; PostgreSQL takes them all in one.
    """
    fields = [f for f in DeviceStateChange._meta.concrete_fields if not f.primary_key]
    per_insert = min(connection.ops.bulk_batch_size(fields, [None] * count), 2000)
    return math.ceil(count / per_insert)


def _is_history_insert(query):
    return query["sql"].startswith('INSERT INTO "devices_devicestatechange"')


def test_reevaluation_runs_the_same_queries_for_20_and_200_devices(django_assert_max_num_queries):
    # Quarantined devices released by an Allow rule: a transition that sends no mail
    # (the org sends no user mail, so no approval mail either),
    # so what is counted is the re-evaluation (the outbox batches its own INSERTs).
    OrgSettings.load()
    OrgSettings.objects.filter(pk=1).update(default_access_level="Quarantine", send_user_mail=False)

    def fill(count):
        MobileDevice.objects.all().delete()
        DeviceAccessRule.objects.all().delete()
        mailbox = Mailbox.objects.filter(alias="bulk").first() or make_mailbox("bulk")
        bulk_devices(mailbox, count, "BULK", PROFILES)
        settle()
        assert MobileDevice.objects.filter(access_state=QUARANTINED).count() == count

    def release():
        return actions.create_rule(
            CLI, characteristic="DeviceModel", query_string="bulk-*", access_level="Allow"
        )

    fill(20)
    with CaptureQueriesContext(connection) as small:
        result = release()
    assert len(result.transitions) == 20

    fill(200)
    extra = _history_inserts(200) - _history_inserts(20)
    with django_assert_max_num_queries(len(small) + extra) as large:
        result = release()
    assert len(result.transitions) == 200
    assert MobileDevice.objects.filter(access_state=ALLOWED).count() == 200
    assert DeviceStateChange.objects.filter(event=result.event).count() == 200
    # Apart from the history INSERTs that SQLite's parameter limit splits, the very
    # same statements run (on PostgreSQL: exactly the same number).
    assert len([q for q in large if not _is_history_insert(q)]) == len(
        [q for q in small if not _is_history_insert(q)]
    )
    assert len(large) == len(small) + extra
    if connection.vendor == "postgresql":
        assert extra == 0


def test_many_distinct_device_profiles_are_reevaluated(world):
    # 1,500 devices whose user agents all differ: 1,500 profiles with one decision.
    fleet = make_mailbox("fleet")
    MobileDevice.objects.bulk_create(
        MobileDevice(
            mailbox=fleet,
            device_id=f"FLEET{i:05d}",
            device_key=f"fleet{i:05d}",
            device_type="Android",
            user_agent=f"Android-Mail/{i}",
            device_info_received=True,
        )
        for i in range(1500)
    )
    settle()
    assert MobileDevice.objects.filter(mailbox=fleet, access_state=ALLOWED).count() == 1500

    preview = actions.preview_org_settings(default_access_level="Quarantine")
    result = actions.set_org_settings(CLI, default_access_level="Quarantine")
    assert preview == state_changes(result.transitions) == {(ALLOWED, QUARANTINED): 1503}
    assert MobileDevice.objects.filter(access_state=QUARANTINED).count() == 1503
    assert DeviceStateChange.objects.filter(event=result.event).count() == 1503
