"""eas get-rule / new-rule / set-rule / remove-rule."""

import csv
import io

import pytest
from django.core.management.base import CommandError

from devices import actions
from devices.models import (
    AccessReason,
    AccessState,
    AuditEvent,
    AuditSource,
    DeviceAccessRule,
    MobileDevice,
)
from tests.cli_support import eas, eas_json

RULE_KEYS = [
    "id",
    "name",
    "characteristic",
    "query_string",
    "access_level",
    "created_by",
    "created_at",
]


def rules() -> list[tuple]:
    return list(
        DeviceAccessRule.objects.order_by("pk").values_list(
            "characteristic", "query_string", "access_level"
        )
    )


def state(device) -> tuple:
    device.refresh_from_db()
    return device.access_state, device.access_state_reason, device.access_rule_id


@pytest.fixture
def iphone(cli_actor):
    mailbox = actions.create_mailbox(cli_actor, alias="jdoe", email="jdoe@example.org").obj
    device = MobileDevice.objects.create(
        mailbox=mailbox,
        device_id="ApplF17XK2ABCDEF",
        device_type="iPhone",
        device_model="iPhone6C2",
        device_os="iOS 8.1 12B411",
        user_agent="Apple-iPhone6C2/1202.411",
        device_info_received=True,
    )
    actions.reevaluate(MobileDevice.objects.all(), None)
    assert state(device)[:2] == (AccessState.ALLOWED, AccessReason.GLOBAL)
    return device


@pytest.mark.django_db
def test_new_rule_creates_it_re_evaluates_and_audits_as_cli(iphone):
    out = eas(
        "new-rule",
        "--characteristic",
        "devicetype",
        "--query-string",
        "iPhone",
        "--access-level",
        "quarantine",
    )
    rule = DeviceAccessRule.objects.get()
    assert (rule.characteristic, rule.query_string, rule.access_level) == (
        "DeviceType",
        "iPhone",
        "Quarantine",
    )
    assert state(iphone) == (AccessState.QUARANTINED, AccessReason.DEVICE_RULE, rule.pk)
    event = AuditEvent.objects.get(action="rule.create")
    assert event.source == AuditSource.CLI
    assert "from allowed to quarantined" in event.message
    assert out.splitlines() == [event.message, f"  id: {rule.pk}"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args, message",
    [
        (["DeviceType", "iPhone", "Sometimes"], "Unknown access level 'Sometimes'"),
        (["Colour", "iPhone", "Block"], "Unknown characteristic 'Colour'"),
        (["DeviceType", "  ", "Block"], "must not be empty"),
        (["DeviceModel", "SGH-*", "Allow"], "already exists"),
        (["devicemodel", "sgh-*", "Block"], "already exists"),
        (["DeviceOS", "iOS =< 17", "Block"], "'=<' is not a version operator"),
        (["DeviceOS", "iOS < 17a", "Block"], "'17a' is not a version"),
        (["DeviceOS", "< 17", "Block"], "names a family before the operator"),
        (["DeviceModel", "SM-G991B < 3", "Block"], "DeviceOS and UserAgent only"),
    ],
    ids=[
        "unknown-access-level",
        "unknown-characteristic",
        "empty",
        "duplicate",
        "duplicate-case",
        "version-operator",
        "version-number",
        "version-family",
        "version-characteristic",
    ],
)
def test_new_rule_rejects_bad_rules_and_changes_nothing(iphone, cli_actor, args, message):
    actions.create_rule(
        cli_actor, characteristic="DeviceModel", query_string="SGH-*", access_level="Block"
    )
    before, events, device = rules(), AuditEvent.objects.count(), state(iphone)
    characteristic, query_string, level = args
    with pytest.raises(CommandError, match=message):
        eas(
            "new-rule",
            "--characteristic",
            characteristic,
            "--query-string",
            query_string,
            "--access-level",
            level,
        )
    assert rules() == before
    assert AuditEvent.objects.count() == events
    assert state(iphone) == device


@pytest.mark.django_db
def test_get_rule_lists_rules_with_the_contract_keys(cli_actor):
    actions.create_rule(
        cli_actor, characteristic="DeviceType", query_string="Outlook", access_level="Allow"
    )
    actions.create_rule(
        cli_actor, characteristic="DeviceModel", query_string="SGH-*", access_level="Block"
    )
    rows = eas_json("get-rule")
    assert [list(row) for row in rows] == [RULE_KEYS, RULE_KEYS]
    for row in rows:
        rule = DeviceAccessRule.objects.get(pk=row["id"])
        assert row["name"] == f"{rule.query_string} ({rule.characteristic})"
        assert row["access_level"] == rule.access_level
        assert row["created_by"] is None
        assert row["created_at"] == rule.created_at.isoformat()
    assert {row["name"] for row in rows} == {"Outlook (DeviceType)", "SGH-* (DeviceModel)"}


@pytest.mark.django_db
def test_get_rule_csv_and_table(cli_actor):
    rule = actions.create_rule(
        cli_actor, characteristic="DeviceType", query_string="Outlook", access_level="Allow"
    ).obj
    [row] = list(csv.DictReader(io.StringIO(eas("get-rule", "--format", "csv"))))
    assert list(row) == RULE_KEYS
    assert row["id"] == str(rule.pk)
    lines = eas("get-rule").splitlines()
    assert lines[0].split()[:2] == ["ID", "NAME"]
    assert lines[1].split()[:3] == [str(rule.pk), "Outlook", "(DeviceType)"]


@pytest.mark.django_db
def test_an_empty_rule_list_says_so():
    assert eas("get-rule").strip() == "No device access rules."


@pytest.fixture
def two_iphone_rules(cli_actor):
    by_type = actions.create_rule(
        cli_actor, characteristic="DeviceType", query_string="iPhone", access_level="Allow"
    ).obj
    by_agent = actions.create_rule(
        cli_actor, characteristic="UserAgent", query_string="iPhone", access_level="Allow"
    ).obj
    return by_type, by_agent


@pytest.mark.django_db
def test_a_rule_is_found_by_id_by_name_or_by_a_unique_query_string(two_iphone_rules, cli_actor):
    by_type, by_agent = two_iphone_rules
    sgh = actions.create_rule(
        cli_actor, characteristic="DeviceModel", query_string="SGH-*", access_level="Block"
    ).obj
    assert [r["id"] for r in eas_json("get-rule", str(by_agent.pk))] == [by_agent.pk]
    assert [r["id"] for r in eas_json("get-rule", "iPhone (DeviceType)")] == [by_type.pk]
    assert [r["id"] for r in eas_json("get-rule", "iphone (usERAgent)")] == [by_agent.pk]
    assert [r["id"] for r in eas_json("get-rule", "sgh-*")] == [sgh.pk]


@pytest.mark.django_db
def test_an_ambiguous_query_string_names_the_candidates(two_iphone_rules):
    with pytest.raises(CommandError) as error:
        eas("remove-rule", "iPhone")
    assert "'iPhone (DeviceType)'" in str(error.value)
    assert "'iPhone (UserAgent)'" in str(error.value)
    assert DeviceAccessRule.objects.count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize("identity", ["999", "Nokia (DeviceType)", "Nokia"])
def test_it_rejects_an_unknown_rule(two_iphone_rules, identity):
    with pytest.raises(CommandError, match="No device access rule"):
        eas("set-rule", identity, "--access-level", "Block")
    assert [r[2] for r in rules()] == ["Allow", "Allow"]


@pytest.mark.django_db
def test_set_rule_changes_the_level_and_re_evaluates(iphone, cli_actor):
    rule = actions.create_rule(
        cli_actor, characteristic="DeviceType", query_string="iPhone", access_level="Allow"
    ).obj
    out = eas("set-rule", "iPhone (DeviceType)", "--access-level", "Block")
    rule.refresh_from_db()
    assert rule.access_level == "Block"
    assert state(iphone) == (AccessState.BLOCKED, AccessReason.DEVICE_RULE, rule.pk)
    event = AuditEvent.objects.get(action="rule.update")
    assert event.source == AuditSource.CLI
    assert out.splitlines()[0] == event.message
    assert "access_level: Allow -> Block" in out


@pytest.mark.django_db
def test_set_rule_can_move_a_rule_to_another_characteristic(iphone, cli_actor):
    rule = actions.create_rule(
        cli_actor, characteristic="DeviceType", query_string="iPad", access_level="Block"
    ).obj
    eas("set-rule", str(rule.pk), "--characteristic", "DeviceModel", "--query-string", "iPhone*")
    rule.refresh_from_db()
    assert (rule.characteristic, rule.query_string, rule.access_level) == (
        "DeviceModel",
        "iPhone*",
        "Block",
    )
    assert state(iphone) == (AccessState.BLOCKED, AccessReason.DEVICE_RULE, rule.pk)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args, message",
    [
        (["--access-level", "Sometimes"], "Unknown access level"),
        (["--characteristic", "Colour"], "Unknown characteristic"),
        (["--characteristic", "UserAgent"], "already exists"),
        ([], "nothing to change"),
    ],
    ids=["unknown-access-level", "unknown-characteristic", "duplicate", "nothing"],
)
def test_set_rule_rejects_bad_changes_and_changes_nothing(two_iphone_rules, args, message):
    before, events = rules(), AuditEvent.objects.count()
    with pytest.raises(CommandError, match=message):
        eas("set-rule", "iPhone (DeviceType)", *args)
    assert rules() == before
    assert AuditEvent.objects.count() == events


@pytest.mark.django_db
def test_remove_rule_removes_it_and_re_evaluates(iphone, cli_actor):
    rule = actions.create_rule(
        cli_actor, characteristic="UserAgent", query_string="Apple-*", access_level="Block"
    ).obj
    assert state(iphone)[0] == AccessState.BLOCKED
    out = eas("remove-rule", "Apple-* (UserAgent)")
    assert not DeviceAccessRule.objects.filter(pk=rule.pk).exists()
    assert state(iphone) == (AccessState.ALLOWED, AccessReason.GLOBAL, None)
    event = AuditEvent.objects.get(action="rule.delete")
    assert event.source == AuditSource.CLI
    assert out.strip() == event.message
    assert "from blocked to allowed" in event.message


@pytest.mark.django_db
def test_new_rule_compares_versions_and_saves_one_form(iphone):
    # iphone reports "iOS 8.1 12B411".
    eas("new-rule", "--characteristic", "DeviceOS", "--query-string", "ios<9",
        "--access-level", "Block")  # fmt: skip
    rule = DeviceAccessRule.objects.get()
    assert rule.query_string == "ios < 9"
    assert state(iphone) == (AccessState.BLOCKED, AccessReason.DEVICE_RULE, rule.pk)
    with pytest.raises(CommandError, match="already exists"):
        eas("new-rule", "--characteristic", "DeviceOS", "--query-string", "iOS <9",
            "--access-level", "Allow")  # fmt: skip
    eas("set-rule", str(rule.pk), "--query-string", "iOS < 8.1")
    assert state(iphone)[:2] == (AccessState.ALLOWED, AccessReason.GLOBAL)
    with pytest.raises(CommandError, match="not a version operator"):
        eas("set-rule", str(rule.pk), "--query-string", "iOS => 8")
    assert DeviceAccessRule.objects.get().query_string == "iOS < 8.1"


@pytest.mark.django_db
def test_test_device_explains_a_version_match(cli_actor):
    actions.create_rule(
        cli_actor, characteristic="DeviceOS", query_string="iOS < 17", access_level="Block"
    )
    out = eas("test-device", "--device-type", "iPhone", "--device-os", "iOS 16.7.10 20H350")
    assert out.splitlines()[0] == "Result: Blocked (DeviceRule)"
    assert "DeviceOS 'iOS 16.7.10 20H350' is below 17: rule 'iOS < 17'" in out
    found = eas_json("test-device", "--device-os", "iOS 17.1.2 21B101")
    assert found[0]["access_state"] == "Allowed"
    assert found[0]["rule"] is None
    os_step = next(s for s in found[0]["steps"] if s["characteristic"] == "DeviceOS")
    assert os_step == {
        "characteristic": "DeviceOS",
        "matches": False,
        "text": "DeviceOS 'iOS 17.1.2 21B101' (iOS 17.1.2) is not below 17: rule 'iOS < 17'",
    }


@pytest.mark.django_db
def test_test_device_needs_something_to_test():
    with pytest.raises(CommandError, match="at least one of"):
        eas("test-device")
