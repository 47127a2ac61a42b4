"""eas get-device / allow-device / block-device / remove-device."""

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
    DeviceIdList,
    MailboxDeviceId,
    MobileDevice,
)
from tests.cli_support import eas, eas_json, run_eas

DEVICE_KEYS = {
    "mailbox",
    "device_id",
    "device_type",
    "device_model",
    "device_os",
    "user_agent",
    "access_state",
    "access_state_reason",
    "access_rule",
    "access_policy",
    "first_seen",
    "last_seen",
    "device_os_language",
    "imei",
    "phone_number",
    "friendly_name",
    "mobile_operator",
    "eas_version",
    "device_info_received",
    "state_changed_at",
    "owner_answer",
    "owner_answered_at",
}


def snapshot() -> tuple:
    return (
        list(MobileDevice.objects.values_list("pk", "access_state", "access_state_reason")),
        list(MailboxDeviceId.objects.values_list("device_id", "list")),
        AuditEvent.objects.count(),
    )


@pytest.fixture
def fleet(cli_actor):
    """Two mailboxes; an Allowed iPhone, a Quarantined SGH (rule) and an Outlook app."""
    jdoe = actions.create_mailbox(cli_actor, alias="jdoe", email="jdoe@example.org").obj
    rsmith = actions.create_mailbox(cli_actor, alias="rsmith", email="rsmith@example.org").obj
    MobileDevice.objects.create(
        mailbox=jdoe,
        device_id="ApplF17XK2ABCDEF",
        device_type="iPhone",
        device_model="iPhone6C2",
        device_os="iOS 8.1 12B411",
        user_agent="Apple-iPhone6C2/1202.411",
        imei="352253477595320",
        device_info_received=True,
    )
    MobileDevice.objects.create(
        mailbox=jdoe,
        device_id="SEC1D9A24B7C5E8F",
        device_type="SAMSUNGSGHI317M",
        device_model="SGH-I317M",
        device_os="Android 4.1.2",
        user_agent="SAMSUNG-SGH-I317M/101.403",
        device_info_received=True,
    )
    MobileDevice.objects.create(
        mailbox=rsmith,
        device_id="3A5F0C2B9D8E7F61",
        device_type="Outlook",
        device_model="Outlook for iOS and Android",
        user_agent="Outlook-iOS-Android/1.0",
        device_info_received=True,
    )
    actions.reevaluate(MobileDevice.objects.all(), None)
    actions.create_rule(
        cli_actor, characteristic="DeviceModel", query_string="SGH-*", access_level="Quarantine"
    )
    return jdoe, rsmith


@pytest.mark.django_db
def test_it_lists_every_device_with_the_contract_keys(fleet):
    rows = eas_json("get-device")
    assert len(rows) == MobileDevice.objects.count()
    for row in rows:
        assert set(row) == DEVICE_KEYS
        device = MobileDevice.objects.get(device_id=row["device_id"])
        assert row["mailbox"] == device.mailbox.alias
        assert row["access_state"] == device.access_state
        assert row["access_state_reason"] == device.access_state_reason
        assert row["first_seen"] == device.first_seen.isoformat()
        assert row["imei"] == device.imei


@pytest.mark.django_db
def test_the_rule_is_named_like_exchange_names_it(fleet):
    device = MobileDevice.objects.get(device_model="SGH-I317M")
    [row] = [r for r in eas_json("get-device") if r["device_id"] == device.device_id]
    assert row["access_rule"] == "SGH-* (DeviceModel)"
    assert row["access_state"] == AccessState.QUARANTINED
    others = [r for r in eas_json("get-device") if r["device_id"] != device.device_id]
    assert [r["access_rule"] for r in others] == [None, None]


@pytest.mark.django_db
def test_it_filters_by_mailbox_and_by_state_in_any_case(fleet):
    jdoe, _ = fleet
    rows = eas_json("get-device", "--mailbox", "JDOE@example.org")
    assert {r["device_id"] for r in rows} == set(
        MobileDevice.objects.filter(mailbox=jdoe).values_list("device_id", flat=True)
    )
    rows = eas_json("get-device", "--state", "quarantined")
    assert {r["device_id"] for r in rows} == set(
        MobileDevice.objects.filter(access_state=AccessState.QUARANTINED).values_list(
            "device_id", flat=True
        )
    )
    rows = eas_json("get-device", "--state", "ALLOWED", "--mailbox", "rsmith")
    assert [r["mailbox"] for r in rows] == ["rsmith"]


@pytest.mark.django_db
def test_csv_has_a_header_and_a_row_per_device(fleet):
    rows = list(csv.reader(io.StringIO(eas("get-device", "--format", "csv"))))
    assert set(rows[0]) == DEVICE_KEYS
    assert len(rows) == 1 + MobileDevice.objects.count()


@pytest.mark.django_db
def test_the_table_is_aligned_and_readable(fleet):
    lines = eas("get-device").splitlines()
    assert lines[0].startswith("MAILBOX")
    assert len(lines) == 1 + MobileDevice.objects.count()
    column = lines[0].index("DEVICE ID")
    ids = {line[column:].split()[0] for line in lines[1:]}
    assert ids == set(MobileDevice.objects.values_list("device_id", flat=True))


@pytest.mark.django_db
def test_an_empty_list_says_so():
    assert eas("get-device").strip() == "No devices."
    assert eas_json("get-device") == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args, message",
    [
        (["--state", "Sleeping"], "Unknown access state 'Sleeping'"),
        (["--mailbox", "nobody"], "No mailbox 'nobody'"),
    ],
    ids=["unknown-state", "unknown-mailbox"],
)
def test_it_rejects_bad_filters(fleet, args, message):
    with pytest.raises(CommandError, match=message):
        eas("get-device", *args)


@pytest.mark.django_db
def test_allow_device_allows_it_individually_and_audits_as_cli(fleet):
    jdoe, _ = fleet
    device = MobileDevice.objects.get(device_model="SGH-I317M")
    out = eas("allow-device", device.device_id.lower(), "--mailbox", "jdoe")
    device.refresh_from_db()
    assert (device.access_state, device.access_state_reason) == (
        AccessState.ALLOWED,
        AccessReason.INDIVIDUAL,
    )
    assert MailboxDeviceId.objects.get(mailbox=jdoe).list == DeviceIdList.ALLOWED
    event = AuditEvent.objects.get(action="device.allow")
    assert event.source == AuditSource.CLI
    assert out.strip() == event.message
    assert "from quarantined to allowed" in event.message


@pytest.mark.django_db
def test_block_device_blocks_it_and_takes_it_off_the_allowed_list(fleet, cli_actor):
    jdoe, _ = fleet
    device = MobileDevice.objects.get(device_id="ApplF17XK2ABCDEF")
    actions.allow_device(cli_actor, jdoe, device.device_id)
    out = eas("block-device", device.device_id, "--mailbox", "jdoe")
    device.refresh_from_db()
    assert (device.access_state, device.access_state_reason) == (
        AccessState.BLOCKED,
        AccessReason.INDIVIDUAL,
    )
    assert list(MailboxDeviceId.objects.values_list("device_id", "list")) == [
        (device.device_id, DeviceIdList.BLOCKED)
    ]
    event = AuditEvent.objects.get(action="device.block")
    assert event.source == AuditSource.CLI
    assert out.strip() == event.message


@pytest.mark.django_db
def test_a_device_id_can_be_allowed_before_the_device_syncs(fleet):
    _, rsmith = fleet
    eas("allow-device", "FUTUREPHONE1", "--mailbox", "rsmith")
    assert MailboxDeviceId.objects.get(mailbox=rsmith).device_id == "FUTUREPHONE1"


@pytest.mark.django_db
@pytest.mark.parametrize("verb", ["allow-device", "block-device"])
@pytest.mark.parametrize(
    "device_id, mailbox, message",
    [
        ("has space", "jdoe", "not a valid DeviceId"),
        ("ApplF17XK2ABCDEF", "nobody", "No mailbox 'nobody'"),
    ],
    ids=["bad-id", "unknown-mailbox"],
)
def test_allow_and_block_reject_bad_input_and_change_nothing(
    fleet, verb, device_id, mailbox, message
):
    before = snapshot()
    with pytest.raises(CommandError, match=message):
        eas(verb, device_id, "--mailbox", mailbox)
    assert snapshot() == before


@pytest.mark.django_db
def test_remove_device_removes_the_partnership_and_audits_it(fleet):
    device = MobileDevice.objects.get(device_id="3A5F0C2B9D8E7F61")
    out = eas("remove-device", "3a5f0c2b9d8e7f61", "--mailbox", "rsmith")
    assert not MobileDevice.objects.filter(pk=device.pk).exists()
    event = AuditEvent.objects.get(action="device.remove")
    assert event.source == AuditSource.CLI
    assert event.object_id == str(device.pk)
    assert out.strip() == event.message


@pytest.mark.django_db
@pytest.mark.parametrize(
    "device_id, mailbox, message",
    [
        ("NOSUCHDEVICE", "jdoe", "has no device 'NOSUCHDEVICE'"),
        ("3A5F0C2B9D8E7F61", "jdoe", "has no device"),  # rsmith's device, not jdoe's
        ("3A5F0C2B9D8E7F61", "nobody", "No mailbox 'nobody'"),
    ],
    ids=["unknown-device", "other-mailbox", "unknown-mailbox"],
)
def test_remove_device_rejects_unknown_devices(fleet, device_id, mailbox, message):
    before = snapshot()
    with pytest.raises(CommandError, match=message):
        eas("remove-device", device_id, "--mailbox", mailbox)
    assert snapshot() == before


def test_an_unknown_state_is_one_error_line_and_a_non_zero_exit(tmp_path):
    result = run_eas(tmp_path, "get-device", "--state", "Sleeping")
    assert result.returncode != 0
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("eas: error: Unknown access state 'Sleeping'")


def test_a_bad_option_value_is_one_error_line_too(tmp_path):
    result = run_eas(tmp_path, "get-device", "--format", "xml")
    assert result.returncode != 0
    [line] = result.stderr.splitlines()
    assert line.startswith("eas: error: get-device: argument --format: invalid choice: 'xml'")
