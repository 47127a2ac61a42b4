"""Access policies through the CLI: a default level for part of the organisation.

get-access-policy, new-access-policy, set-access-policy, remove-access-policy,
set-mailbox --access-policy, and the policy in get-mailbox / get-device.
"""

import pytest
from django.core.management.base import CommandError

from devices import actions
from devices.audit import Actor
from devices.models import (
    AccessPolicy,
    AccessReason,
    AccessState,
    AuditEvent,
    AuditSource,
    Mailbox,
    MobileDevice,
)
from tests.cli_support import eas, eas_json, run_eas

GATE = Actor(source=AuditSource.GATE)
POLICY_KEYS = [
    "name",
    "default_access_level",
    "domains",
    "directory_groups",
    "priority",
    "mailbox_count",
    "member_count",
    "created_at",
]


def phone(mailbox, device_id):
    return actions.record_contact(
        GATE,
        mailbox,
        actions.Contact(
            device_id=device_id, device_type="iPhone", info={"model": "iPhone15,2", "os": "iOS 17"}
        ),
    )


def decided(device) -> tuple:
    device = MobileDevice.objects.select_related("access_policy").get(pk=device.pk)
    return (
        device.access_state,
        device.access_state_reason,
        device.access_policy.name if device.access_policy else None,
    )


def snapshot() -> tuple:
    """Everything a refused command must leave as it was."""
    return (
        list(AccessPolicy.objects.order_by("pk").values()),
        list(Mailbox.objects.order_by("pk").values("access_policy", "access_policy_pinned")),
        list(MobileDevice.objects.order_by("pk").values("access_state", "access_policy")),
        AuditEvent.objects.count(),
    )


@pytest.fixture
def org(cli_actor):
    """Org default Allow; a sales mailbox and a head-office mailbox with a phone each."""
    sales = actions.create_mailbox(cli_actor, alias="sam", email="sam@sales.example.org").obj
    office = actions.create_mailbox(cli_actor, alias="olga", email="olga@example.org").obj
    return {
        "sales": sales,
        "office": office,
        "sales_phone": phone(sales, "SAMPHONE1"),
        "office_phone": phone(office, "OLGAPHONE1"),
    }


# ---------------------------------------------------------------------------
# new-access-policy, get-access-policy


@pytest.mark.django_db
def test_a_domain_policy_gives_its_mailboxes_its_level(org):
    assert decided(org["sales_phone"]) == (AccessState.ALLOWED, AccessReason.GLOBAL, None)
    out = eas(
        "new-access-policy",
        "Sales",
        "--default-access-level",
        "quarantine",
        "--domain",
        "sales.example.org",
    )
    assert decided(org["sales_phone"]) == (AccessState.QUARANTINED, AccessReason.GLOBAL, "Sales")
    assert decided(org["office_phone"]) == (AccessState.ALLOWED, AccessReason.GLOBAL, None)
    event = AuditEvent.objects.get(action="policy.create")
    assert event.source == AuditSource.CLI
    assert out.strip() == event.message
    assert "1 device from allowed to quarantined" in event.message
    [row] = eas_json("get-access-policy")
    assert list(row) == POLICY_KEYS
    assert row["name"] == "Sales"
    assert row["default_access_level"] == "Quarantine"
    assert row["domains"] == ["sales.example.org"]
    assert row["priority"] == 100
    assert (row["mailbox_count"], row["member_count"]) == (1, 0)


@pytest.mark.django_db
def test_among_domain_policies_the_lowest_priority_number_wins(org):
    eas("new-access-policy", "Lax", "--default-access-level", "Allow", "--domain", "example.org")
    eas(
        "new-access-policy",
        "Strict",
        "--default-access-level",
        "Block",
        "--domain",
        "sales.example.org",
        "example.org",
        "--priority",
        "50",
    )
    assert decided(org["sales_phone"])[2] == "Strict"
    assert decided(org["office_phone"]) == (AccessState.BLOCKED, AccessReason.GLOBAL, "Strict")
    eas("set-access-policy", "strict", "--priority", "500")
    assert decided(org["office_phone"]) == (AccessState.ALLOWED, AccessReason.GLOBAL, "Lax")
    # The sales domain is Strict's alone, whatever its priority.
    assert decided(org["sales_phone"]) == (AccessState.BLOCKED, AccessReason.GLOBAL, "Strict")
    names = [row["name"] for row in eas_json("get-access-policy")]
    assert names == ["Lax", "Strict"]  # by priority


@pytest.mark.django_db
def test_one_policy_by_name_in_any_case_and_the_table(org):
    eas("new-access-policy", "Sales", "--default-access-level", "Quarantine")
    eas("new-access-policy", "Board", "--default-access-level", "Allow")
    assert [row["name"] for row in eas_json("get-access-policy", "SALES")] == ["Sales"]
    lines = eas("get-access-policy").splitlines()
    assert lines[0].split()[:3] == ["NAME", "DEFAULT", "ACCESS"]
    assert len(lines) == 3


@pytest.mark.django_db
def test_no_policies_is_said_plainly():
    assert eas("get-access-policy").strip() == "No access policies."


@pytest.mark.django_db
def test_a_mailbox_created_later_joins_its_domain_policy(org, cli_actor):
    eas(
        "new-access-policy",
        "Sales",
        "--default-access-level",
        "Block",
        "--domain",
        "@Sales.example.org",
    )
    assert AccessPolicy.objects.get().domains == ["sales.example.org"]
    late = actions.create_mailbox(cli_actor, alias="sid", email="sid@sales.example.org").obj
    [row] = eas_json("get-mailbox", "sid")
    assert (row["access_policy"], row["access_policy_pinned"]) == ("Sales", False)
    assert decided(phone(late, "SIDPHONE1")) == (AccessState.BLOCKED, AccessReason.GLOBAL, "Sales")


# ---------------------------------------------------------------------------
# set-mailbox --access-policy


@pytest.mark.django_db
def test_explicit_membership_beats_the_domain_and_none_follows_it_again(org):
    eas(
        "new-access-policy",
        "Sales",
        "--default-access-level",
        "Block",
        "--domain",
        "sales.example.org",
    )
    eas("new-access-policy", "VIP", "--default-access-level", "Allow")
    out = eas("set-mailbox", "sam", "--access-policy", "vip")
    assert decided(org["sales_phone"]) == (AccessState.ALLOWED, AccessReason.GLOBAL, "VIP")
    [row] = eas_json("get-mailbox", "sam")
    assert (row["access_policy"], row["access_policy_pinned"]) == ("VIP", True)
    event = AuditEvent.objects.filter(action="mailbox.policy").latest("id")
    assert event.source == AuditSource.CLI
    assert out.splitlines()[0] == event.message
    assert "access_policy: Sales: Block -> VIP: Allow" in out
    # A domain change does not move an explicit member.
    eas("set-access-policy", "Sales", "--domain", "sales.example.org", "example.org")
    assert decided(org["sales_phone"])[2] == "VIP"

    eas("set-mailbox", "sam", "--access-policy", "None")
    [row] = eas_json("get-mailbox", "sam")
    assert (row["access_policy"], row["access_policy_pinned"]) == ("Sales", False)
    assert decided(org["sales_phone"]) == (AccessState.BLOCKED, AccessReason.GLOBAL, "Sales")


@pytest.mark.django_db
def test_a_member_outside_every_domain_falls_back_to_the_org_default(org):
    eas("new-access-policy", "VIP", "--default-access-level", "Block")
    eas("set-mailbox", "olga", "--access-policy", "VIP")
    assert decided(org["office_phone"]) == (AccessState.BLOCKED, AccessReason.GLOBAL, "VIP")
    eas("set-mailbox", "olga", "--access-policy", "none")
    assert decided(org["office_phone"]) == (AccessState.ALLOWED, AccessReason.GLOBAL, None)
    [row] = eas_json("get-mailbox", "olga")
    assert (row["access_policy"], row["access_policy_pinned"]) == (None, False)


@pytest.mark.django_db
def test_get_device_names_the_policy_that_decided(org):
    eas(
        "new-access-policy",
        "Sales",
        "--default-access-level",
        "Quarantine",
        "--domain",
        "sales.example.org",
    )
    rows = {row["device_id"]: row for row in eas_json("get-device")}
    assert rows["SAMPHONE1"]["access_policy"] == "Sales"
    assert rows["OLGAPHONE1"]["access_policy"] is None
    # A device on its mailbox's list is not decided by the policy.
    eas("allow-device", "SAMPHONE1", "--mailbox", "sam")
    [row] = [r for r in eas_json("get-device") if r["device_id"] == "SAMPHONE1"]
    assert (row["access_state_reason"], row["access_policy"]) == ("Individual", None)


@pytest.mark.django_db
def test_set_mailbox_changes_lists_and_policy_together(org):
    eas("new-access-policy", "VIP", "--default-access-level", "Block")
    eas("set-mailbox", "olga", "--add-blocked-device-id", "STOLEN1", "--access-policy", "VIP")
    [row] = eas_json("get-mailbox", "olga")
    assert row["blocked_device_ids"] == ["STOLEN1"]
    assert row["access_policy"] == "VIP"
    assert AuditEvent.objects.filter(action__in=["mailbox.update", "mailbox.policy"]).count() == 2


# ---------------------------------------------------------------------------
# set-access-policy, remove-access-policy


@pytest.mark.django_db
def test_set_access_policy_changes_level_domains_and_name(org):
    eas(
        "new-access-policy",
        "Sales",
        "--default-access-level",
        "Allow",
        "--domain",
        "sales.example.org",
    )
    out = eas("set-access-policy", "Sales", "--default-access-level", "Block", "--name", "Field")
    policy = AccessPolicy.objects.get()
    assert (policy.name, policy.default_access_level) == ("Field", "Block")
    assert decided(org["sales_phone"]) == (AccessState.BLOCKED, AccessReason.GLOBAL, "Field")
    event = AuditEvent.objects.get(action="policy.update")
    assert out.splitlines()[0] == event.message
    assert "name: Sales -> Field" in out
    assert "default_access_level: Allow -> Block" in out

    # --domain replaces the domains; given alone it clears them.
    eas("set-access-policy", "Field", "--domain", "example.org")
    assert decided(org["sales_phone"]) == (AccessState.ALLOWED, AccessReason.GLOBAL, None)
    assert decided(org["office_phone"]) == (AccessState.BLOCKED, AccessReason.GLOBAL, "Field")
    eas("set-access-policy", "Field", "--domain")
    assert AccessPolicy.objects.get().domains == []
    assert decided(org["office_phone"]) == (AccessState.ALLOWED, AccessReason.GLOBAL, None)


@pytest.mark.django_db
def test_removing_a_policy_returns_its_mailboxes_to_the_org_default(org, cli_actor):
    actions.set_org_settings(cli_actor, default_access_level="Quarantine")
    eas(
        "new-access-policy",
        "Sales",
        "--default-access-level",
        "Allow",
        "--domain",
        "sales.example.org",
    )
    eas("new-access-policy", "VIP", "--default-access-level", "Allow")
    eas("set-mailbox", "olga", "--access-policy", "VIP")
    assert decided(org["office_phone"])[0] == AccessState.ALLOWED
    out = eas("remove-access-policy", "vip")
    assert not AccessPolicy.objects.filter(name="VIP").exists()
    assert decided(org["office_phone"]) == (AccessState.QUARANTINED, AccessReason.GLOBAL, None)
    assert Mailbox.objects.get(alias="olga").access_policy_pinned is False
    event = AuditEvent.objects.get(action="policy.delete")
    assert (event.source, event.before["name"]) == (AuditSource.CLI, "VIP")
    assert out.strip() == event.message
    # The other policy still holds.
    assert decided(org["sales_phone"]) == (AccessState.ALLOWED, AccessReason.GLOBAL, "Sales")


# ---------------------------------------------------------------------------
# bad input: one line, nothing changed


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args, message",
    [
        (["new-access-policy", "X", "--default-access-level", "Maybe"], "Unknown access level"),
        (["new-access-policy", "X"], "required: --default-access-level"),
        (
            [
                "new-access-policy",
                "X",
                "--default-access-level",
                "Allow",
                "--domain",
                "not a domain",
            ],
            "not a valid mail domain",
        ),
        (["new-access-policy", "sales", "--default-access-level", "Allow"], "already exists"),
        (["new-access-policy", " ", "--default-access-level", "Allow"], "1 to 100 characters"),
        (
            ["new-access-policy", "X", "--default-access-level", "Allow", "--priority", "-1"],
            "between 0 and 10000",
        ),
        (
            ["new-access-policy", "X", "--default-access-level", "Allow", "--priority", "high"],
            "invalid int value",
        ),
        (["set-access-policy", "Nope", "--priority", "3"], "No access policy 'Nope'"),
        (["set-access-policy", "Sales"], "nothing to change"),
        (["set-access-policy", "Sales", "--name", "vip"], "already exists"),
        (["set-access-policy", "Sales", "--default-access-level", "Never"], "Unknown access level"),
        (["set-access-policy", "Sales", "--domain", "bad_domain.org"], "not a valid mail domain"),
        (["remove-access-policy", "Nope"], "No access policy 'Nope'"),
        (["set-mailbox", "sam", "--access-policy", "Nope"], "No access policy 'Nope'"),
        (
            [
                "set-mailbox",
                "sam",
                "--access-policy",
                "VIP",
                "--add-allowed-device-id",
                "has space",
            ],
            "not a valid DeviceId",
        ),
        (["set-mailbox", "nobody", "--access-policy", "VIP"], "No mailbox 'nobody'"),
        (["get-access-policy", "Nope"], "No access policy 'Nope'"),
    ],
)
def test_it_rejects_bad_input_and_changes_nothing(org, args, message):
    eas(
        "new-access-policy",
        "Sales",
        "--default-access-level",
        "Quarantine",
        "--domain",
        "sales.example.org",
    )
    eas("new-access-policy", "VIP", "--default-access-level", "Allow")
    before = snapshot()
    with pytest.raises(CommandError, match=message):
        eas(*args)
    assert snapshot() == before


def test_a_bad_level_is_one_error_line_and_a_non_zero_exit(tmp_path):
    result = run_eas(tmp_path, "new-access-policy", "Sales", "--default-access-level", "Sometimes")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        "eas: error: Unknown access level 'Sometimes': use one of Allow, Block, Quarantine."
    ]


def test_an_unknown_option_names_the_verb(tmp_path):
    result = run_eas(tmp_path, "set-access-policy", "Sales", "--colour", "red")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "eas: error: unrecognized arguments: --colour red (see manage.py eas --help)"
    ]
