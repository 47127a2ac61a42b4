"""Organisation-wide DeviceIds (a loan pool) through the CLI and the actions.

get-org-device-id, add-org-device-id, remove-org-device-id; the devices with
such an id are Allowed / OrgAllowList in every mailbox, unless the mailbox's
own lists say otherwise; rules come after.
"""

import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.core.management.base import CommandError

from devices import actions
from devices.audit import Actor
from devices.models import (
    AccessReason,
    AccessState,
    AuditEvent,
    AuditSource,
    DeviceStateChange,
    MobileDevice,
    OrgDeviceId,
)
from tests.cli_support import eas, eas_json

GATE = Actor(source=AuditSource.GATE)
LOANER = "LoanPool0001"


def run_eas(tmp_path, *args) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["ECP_VAR_DIR"] = str(tmp_path)
    return subprocess.run(
        [sys.executable, "manage.py", "eas", *args],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def contact(mailbox, device_id, device_type="iPhone"):
    return actions.record_contact(
        GATE,
        mailbox,
        actions.Contact(device_id=device_id, device_type=device_type, info={"model": "X1"}),
    )


def state(device) -> tuple[str, str]:
    device = MobileDevice.objects.get(pk=device.pk)
    return device.access_state, device.access_state_reason


@pytest.fixture
def loaners(cli_actor):
    """Quarantine by default; the same loan phone borrowed by two people, and a private phone."""
    actions.set_org_settings(cli_actor, default_access_level="Quarantine")
    ann = actions.create_mailbox(cli_actor, alias="ann", email="ann@example.org").obj
    ben = actions.create_mailbox(cli_actor, alias="ben", email="ben@example.org").obj
    return {
        "ann": ann,
        "ben": ben,
        "ann_loaner": contact(ann, LOANER),
        "ben_loaner": contact(ben, LOANER.lower()),  # DeviceIds compare in any case
        "ann_private": contact(ann, "ANNPRIVATE1"),
    }


@pytest.mark.django_db
def test_an_org_wide_id_allows_that_device_in_every_mailbox(loaners):
    out = eas("add-org-device-id", LOANER.upper(), "--note", "loan pool, shelf 3")
    for key in ("ann_loaner", "ben_loaner"):
        assert state(loaners[key]) == (AccessState.ALLOWED, AccessReason.ORG_LIST)
    assert state(loaners["ann_private"]) == (AccessState.QUARANTINED, AccessReason.GLOBAL)
    event = AuditEvent.objects.get(action="org_device_id.add")
    assert event.source == AuditSource.CLI
    assert out.strip() == event.message
    assert "2 devices from quarantined to allowed" in event.message
    # Each move is in the device's history, tied to that event.
    assert DeviceStateChange.objects.filter(event=event).count() == 2
    [row] = eas_json("get-org-device-id")
    assert row == {
        "device_id": LOANER.upper(),
        "note": "loan pool, shelf 3",
        "device_count": 2,
        "created_at": row["created_at"],
    }


@pytest.mark.django_db
def test_a_new_device_with_an_org_wide_id_is_allowed_at_first_contact(loaners, cli_actor):
    actions.add_org_device_id(cli_actor, LOANER)
    carl = actions.create_mailbox(cli_actor, alias="carl", email="carl@example.org").obj
    assert state(contact(carl, LOANER)) == (AccessState.ALLOWED, AccessReason.ORG_LIST)


@pytest.mark.django_db
def test_the_mailbox_blocked_list_beats_the_org_wide_list(loaners):
    eas("block-device", LOANER, "--mailbox", "ben")
    eas("add-org-device-id", LOANER)
    assert state(loaners["ben_loaner"]) == (AccessState.BLOCKED, AccessReason.INDIVIDUAL)
    assert state(loaners["ann_loaner"]) == (AccessState.ALLOWED, AccessReason.ORG_LIST)


@pytest.mark.django_db
def test_the_org_wide_list_beats_a_blocking_rule(loaners, cli_actor):
    actions.create_rule(
        cli_actor, characteristic="DeviceType", query_string="iPhone", access_level="Block"
    )
    assert state(loaners["ann_loaner"]) == (AccessState.BLOCKED, AccessReason.DEVICE_RULE)
    eas("add-org-device-id", LOANER)
    device = MobileDevice.objects.get(pk=loaners["ann_loaner"].pk)
    assert (device.access_state, device.access_state_reason) == (
        AccessState.ALLOWED,
        AccessReason.ORG_LIST,
    )
    assert device.access_rule_id is None


@pytest.mark.django_db
def test_removing_the_id_sends_the_devices_back_to_the_engine(loaners):
    eas("add-org-device-id", LOANER)
    out = eas("remove-org-device-id", LOANER.lower())
    assert not OrgDeviceId.objects.exists()
    for key in ("ann_loaner", "ben_loaner"):
        assert state(loaners[key]) == (AccessState.QUARANTINED, AccessReason.GLOBAL)
    event = AuditEvent.objects.get(action="org_device_id.remove")
    assert (event.source, event.before["device_id"]) == (AuditSource.CLI, LOANER)
    assert out.strip() == event.message
    assert "2 devices from allowed to quarantined" in event.message
    assert eas("get-org-device-id").strip() == "No organisation-wide DeviceIds."


@pytest.mark.django_db
def test_the_list_in_every_format(cli_actor):
    actions.add_org_device_id(cli_actor, "LOANB", note="spare")
    actions.add_org_device_id(cli_actor, "LoanA")
    assert [r["device_id"] for r in eas_json("get-org-device-id")] == ["LoanA", "LOANB"]
    lines = eas("get-org-device-id").splitlines()
    assert lines[0].split() == ["DEVICE", "ID", "NOTE", "DEVICE", "COUNT", "CREATED", "AT"]
    assert len(lines) == 3
    csv_lines = eas("get-org-device-id", "--format", "csv").splitlines()
    assert csv_lines[0] == "device_id,note,device_count,created_at"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args, message",
    [
        (["add-org-device-id", LOANER.lower()], "already allowed organisation-wide"),
        (["add-org-device-id", "has space"], "not a valid DeviceId"),
        (["add-org-device-id", "X" * 65], "not a valid DeviceId"),
        (["remove-org-device-id", "NotListed1"], "is not on the organisation-wide list"),
        (["remove-org-device-id", ""], "not a valid DeviceId"),
    ],
    ids=["duplicate-any-case", "space", "too-long", "not-listed", "empty"],
)
def test_it_rejects_bad_ids_and_changes_nothing(loaners, args, message):
    eas("add-org-device-id", LOANER)
    before = (
        list(OrgDeviceId.objects.values_list("device_id", "note")),
        list(MobileDevice.objects.order_by("pk").values_list("access_state", flat=True)),
        AuditEvent.objects.count(),
    )
    with pytest.raises(CommandError, match=message):
        eas(*args)
    after = (
        list(OrgDeviceId.objects.values_list("device_id", "note")),
        list(MobileDevice.objects.order_by("pk").values_list("access_state", flat=True)),
        AuditEvent.objects.count(),
    )
    assert after == before


def test_a_missing_id_is_one_error_line_and_a_non_zero_exit(tmp_path):
    result = run_eas(tmp_path, "add-org-device-id")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "eas: error: add-org-device-id: the following arguments are required: ID"
    ]
