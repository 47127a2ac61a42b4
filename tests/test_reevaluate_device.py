"""The gate's one-device re-evaluation (devices.actions.reevaluation.reevaluate_device)
decides as the set-based reevaluate() does, and records the same history and audit."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from devices import actions
from devices.actions.reevaluation import reevaluate_device
from devices.evaluation import load_rules
from devices.models import (
    AccessState,
    AuditEvent,
    DeviceIdList,
    DeviceStateChange,
    MailboxDeviceId,
    MobileDevice,
    OrgDeviceId,
    OrgSettings,
)
from tests.test_reevaluation import ANDROID, CLI, IPAD, IPHONE, make_device, make_mailbox

pytestmark = pytest.mark.django_db


class Rollback(Exception):
    pass


def outcome(device, how):
    """(state, reason, rule, policy, history rows) after deciding `device` by `how`,
    rolled back afterwards."""
    result = {}
    try:
        with transaction.atomic():
            MobileDevice.objects.filter(pk=device.pk).update(
                access_state=AccessState.UNKNOWN, access_state_reason="", access_rule=None
            )
            fresh = MobileDevice.objects.select_related("mailbox").get(pk=device.pk)
            before = DeviceStateChange.objects.count()
            if how == "set":
                actions.reevaluate(MobileDevice.objects.filter(pk=device.pk), None)
            else:
                reevaluate_device(fresh, None, rules=load_rules(), org=OrgSettings.load())
            fresh.refresh_from_db()
            result["decided"] = (
                fresh.access_state,
                fresh.access_state_reason,
                fresh.access_rule_id,
                fresh.access_policy_id,
                DeviceStateChange.objects.count() - before,
            )
            raise Rollback
    except Rollback:
        pass
    return result["decided"]


@pytest.fixture
def fleet():
    """Devices that each meet another step of the decision order."""
    OrgSettings.load()
    OrgSettings.objects.filter(pk=1).update(default_access_level="Quarantine")
    alice, bob = make_mailbox("alice"), make_mailbox("bob")
    off = make_mailbox("carol", activesync_enabled=False)
    gone = make_mailbox("dave", directory_disabled=True)
    policy = actions.create_policy(
        CLI, name="Contractors", default_access_level="Allow", domains=["contractors.example"]
    ).obj
    contractor = make_mailbox("erin")
    type(contractor).objects.filter(pk=contractor.pk).update(
        access_policy=policy, primary_smtp_address="erin@contractors.example"
    )
    for characteristic, query, level in [
        ("DeviceModel", "SM-G99*", "Block"),
        ("UserAgent", "Apple-iPad13C1/*", "Allow"),
        ("DeviceOS", "iOS < 17", "Block"),
    ]:
        actions.create_rule(
            CLI, characteristic=characteristic, query_string=query, access_level=level
        )
    MailboxDeviceId.objects.create(mailbox=alice, device_id="ListedOK", list=DeviceIdList.ALLOWED)
    MailboxDeviceId.objects.create(mailbox=alice, device_id="ListedNO", list=DeviceIdList.BLOCKED)
    OrgDeviceId.objects.create(device_id="OrgWide1")
    return [
        make_device(alice, "Plain1", IPHONE),
        make_device(alice, "Android1", ANDROID),
        make_device(bob, "Ipad1", IPAD),
        make_device(bob, "OldIos", {**IPHONE, "device_os": "iOS 16.7"}),
        make_device(alice, "listedok", ANDROID),
        make_device(alice, "ListedNO", IPAD),
        make_device(bob, "orgwide1", IPHONE),
        make_device(off, "Off1", IPAD),
        make_device(gone, "Gone1", IPAD),
        make_device(contractor, "Contract1", IPHONE),
        make_device(bob, "New1", {"device_type": "iPhone"}, device_info_received=False),
        make_device(
            bob,
            "Late1",
            {"device_type": "iPhone"},
            device_info_received=False,
            first_seen=timezone.now() - timedelta(hours=1),
        ),
    ]


def test_one_device_is_decided_as_the_set_based_reevaluation_decides(fleet):
    decided = {d.device_id: outcome(d, "one") for d in fleet}
    assert decided == {d.device_id: outcome(d, "set") for d in fleet}
    states = {state for state, *_ in decided.values()}
    assert states == {"Allowed", "Blocked", "Quarantined", "DeviceDiscovery"}  # all were met
    assert all(rows == 1 for *_, rows in decided.values())


def test_a_device_that_holds_its_decision_moves_nothing_but_is_audited(fleet):
    device = MobileDevice.objects.select_related("mailbox").get(device_id="Plain1")
    actions.reevaluate(MobileDevice.objects.filter(pk=device.pk), None)
    device.refresh_from_db()
    events, changes = AuditEvent.objects.count(), DeviceStateChange.objects.count()
    audit = actions.AuditAfter(CLI, "Decided again", action="device.reevaluate", obj=device)
    assert reevaluate_device(device, audit, rules=load_rules(), org=OrgSettings.load()) == []
    assert (AuditEvent.objects.count(), DeviceStateChange.objects.count()) == (events + 1, changes)
    assert AuditEvent.objects.latest("pk").message.startswith("Decided again")


def test_tighten_only_keeps_a_flapping_device_from_loosening(fleet):
    device = MobileDevice.objects.select_related("mailbox").get(device_id="Ipad1")
    MobileDevice.objects.filter(pk=device.pk).update(access_state=AccessState.BLOCKED)
    device.refresh_from_db()
    org = OrgSettings.load()
    assert reevaluate_device(device, None, rules=load_rules(), org=org, tighten_only=True) == []
    assert MobileDevice.objects.get(pk=device.pk).access_state == AccessState.BLOCKED
