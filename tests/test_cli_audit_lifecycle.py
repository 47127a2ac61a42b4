"""eas get-audit-log / grandfather-devices / purge-quarantined."""

import csv
import io
import json
from datetime import timedelta

import pytest
from django.core.management.base import CommandError
from django.db.models import QuerySet  # backdating bypasses the append-only guard
from django.utils import timezone

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
from tests.cli_support import eas, eas_json

AUDIT_KEYS = {
    "time",
    "actor",
    "source",
    "action",
    "object_type",
    "object_repr",
    "before",
    "after",
    "message",
    "client_ip",
    "request_id",
}


@pytest.fixture
def devices(cli_actor):
    """Four devices syncing under the default Allow, in two mailboxes."""
    jdoe = actions.create_mailbox(cli_actor, alias="jdoe", email="jdoe@example.org").obj
    rsmith = actions.create_mailbox(cli_actor, alias="rsmith", email="rsmith@example.org").obj
    for mailbox, device_id in (
        (jdoe, "ApplF17XK2ABCDEF"),
        (jdoe, "SEC1D9A24B7C5E8F"),
        (rsmith, "androidc1823745921"),
        (rsmith, "3A5F0C2B9D8E7F61"),
    ):
        MobileDevice.objects.create(
            mailbox=mailbox, device_id=device_id, device_type="iPhone", device_info_received=True
        )
    actions.reevaluate(MobileDevice.objects.all(), None)
    return MobileDevice.objects.order_by("pk")


@pytest.fixture
def quarantined(devices, cli_actor):
    """The same devices, quarantined 1, 10, 40 and 40 days ago."""
    actions.set_org_settings(cli_actor, default_access_level="Quarantine")
    now = timezone.now()
    for device, days in zip(devices, (1, 10, 40, 40), strict=True):
        MobileDevice.objects.filter(pk=device.pk).update(
            state_changed_at=now - timedelta(days=days)
        )
    assert devices.filter(access_state=AccessState.QUARANTINED).count() == 4
    return devices


# ---------------------------------------------------------------------------
# get-audit-log


@pytest.fixture
def history(cli_actor, django_user_model):
    """Three events on three days, by cli, by a named admin and by the system."""
    admin = django_user_model.objects.create_user("admin")
    actions.create_mailbox(cli_actor, alias="jdoe", email="jdoe@example.org")
    actions.create_rule(
        Actor(user=admin, source=AuditSource.UI),
        characteristic="DeviceType",
        query_string="iPhone",
        access_level="Allow",
    )
    actions.set_org_settings(Actor(), default_access_level="Quarantine")
    now = timezone.now()
    for days, event in zip((3, 2, 1), AuditEvent.objects.order_by("id"), strict=True):
        QuerySet(AuditEvent).filter(pk=event.pk).update(time=now - timedelta(days=days))
    return list(AuditEvent.objects.order_by("time", "id"))


@pytest.mark.django_db
def test_the_audit_log_is_oldest_first_with_the_contract_keys(history):
    rows = eas_json("get-audit-log")
    assert [row["action"] for row in rows] == [e.action for e in history]
    for row, event in zip(rows, history, strict=True):
        assert set(row) >= AUDIT_KEYS
        assert row["time"] == event.time.isoformat()
        assert row["actor"] == event.actor_name
        assert row["source"] == event.source
        assert row["object_repr"] == event.object_repr
        assert row["before"] == event.before
        assert row["after"] == event.after
        assert row["message"] == event.message


@pytest.mark.django_db
def test_it_filters_by_actor_action_and_since(history):
    assert [r["actor"] for r in eas_json("get-audit-log", "--actor", "ADMIN")] == ["admin"]
    assert [r["action"] for r in eas_json("get-audit-log", "--action", "rule")] == ["rule.create"]
    assert eas_json("get-audit-log", "--action", "rul") == []
    since = timezone.localtime(history[1].time).date().isoformat()
    assert [r["action"] for r in eas_json("get-audit-log", "--since", since)] == [
        e.action for e in history[1:]
    ]
    since = history[2].time.isoformat()
    assert [r["action"] for r in eas_json("get-audit-log", "--since", since)] == [history[2].action]


@pytest.mark.django_db
def test_limit_keeps_the_most_recent_events_oldest_first(history):
    rows = eas_json("get-audit-log", "--limit", "2")
    assert [r["action"] for r in rows] == [e.action for e in history[1:]]


@pytest.mark.django_db
def test_audit_csv_and_table(history):
    rows = list(csv.DictReader(io.StringIO(eas("get-audit-log", "--format", "csv"))))
    assert set(rows[0]) >= AUDIT_KEYS
    assert len(rows) == len(history)
    assert json.loads(rows[0]["after"]) == history[0].after
    lines = eas("get-audit-log").splitlines()
    assert lines[0].split()[:3] == ["TIME", "ACTOR", "SOURCE"]
    assert len(lines) == 1 + len(history)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args, message",
    [
        (["--since", "yesterday"], "ISO date"),
        (["--since", "2025-02-30"], "ISO date"),
        (["--limit", "0"], "1 or more"),
        (["--limit", "many"], "invalid int value"),
    ],
)
def test_it_rejects_bad_audit_filters(history, args, message):
    with pytest.raises(CommandError, match=message):
        eas("get-audit-log", *args)


# ---------------------------------------------------------------------------
# grandfather-devices


@pytest.mark.django_db
def test_grandfather_dry_run_counts_and_changes_nothing(devices):
    events = AuditEvent.objects.count()
    out = eas("grandfather-devices", "--dry-run")
    count = devices.filter(
        access_state=AccessState.ALLOWED, access_state_reason=AccessReason.GLOBAL
    ).count()
    assert out.strip() == (f"Dry run: would add {count} devices to their mailbox's allowed list.")
    assert not MailboxDeviceId.objects.exists()
    assert AuditEvent.objects.count() == events


@pytest.mark.django_db
def test_grandfather_lists_allowed_devices_and_audits_as_cli(devices, cli_actor):
    out = eas("grandfather-devices")
    assert set(MailboxDeviceId.objects.values_list("mailbox_id", "device_id", "list")) == {
        (d.mailbox_id, d.device_id, DeviceIdList.ALLOWED) for d in devices
    }
    assert set(devices.values_list("access_state", "access_state_reason")) == {
        (AccessState.ALLOWED, AccessReason.INDIVIDUAL)
    }
    event = AuditEvent.objects.get(action="devices.grandfather")
    assert event.source == AuditSource.CLI
    assert out.strip() == event.message
    # Switching on quarantine afterwards leaves them syncing.
    actions.set_org_settings(cli_actor, default_access_level="Quarantine")
    assert not devices.filter(access_state=AccessState.QUARANTINED).exists()


# ---------------------------------------------------------------------------
# purge-quarantined


@pytest.mark.django_db
def test_purge_dry_run_lists_the_devices_and_removes_nothing(quarantined):
    stale = quarantined.filter(state_changed_at__lte=timezone.now() - timedelta(days=30))
    out = eas("purge-quarantined", "--older-than-days", "30", "--dry-run")
    lines = out.splitlines()
    assert (
        lines[0]
        == f"Dry run: would remove {stale.count()} devices quarantined for 30 days or more."
    )
    listed = {line.split()[1] for line in lines[3:]}
    assert listed == set(stale.values_list("device_id", flat=True))
    assert MobileDevice.objects.count() == 4
    rows = eas_json("purge-quarantined", "--older-than-days", "30", "--dry-run")
    assert {r["device_id"] for r in rows} == listed


@pytest.mark.django_db
def test_purge_removes_devices_quarantined_longer_than_n_days(quarantined):
    stale = set(
        quarantined.filter(state_changed_at__lte=timezone.now() - timedelta(days=7)).values_list(
            "pk", flat=True
        )
    )
    out = eas("purge-quarantined", "--older-than-days", "7")
    assert out.strip() == f"Removed {len(stale)} devices quarantined for 7 days or more."
    assert not MobileDevice.objects.filter(pk__in=stale).exists()
    assert MobileDevice.objects.count() == 4 - len(stale)
    events = AuditEvent.objects.filter(action="device.purge")
    assert {int(e.object_id) for e in events} == stale
    assert {e.source for e in events} == {AuditSource.CLI}


@pytest.mark.django_db
def test_purge_with_zero_days_removes_every_quarantined_device(quarantined, cli_actor):
    allowed = quarantined.first()
    actions.allow_device(cli_actor, allowed.mailbox, allowed.device_id)
    waiting = quarantined.filter(access_state=AccessState.QUARANTINED).count()
    out = eas("purge-quarantined", "--older-than-days", "0")
    assert out.strip() == f"Removed {waiting} quarantined devices."
    assert list(MobileDevice.objects.values_list("pk", flat=True)) == [allowed.pk]


@pytest.mark.django_db
def test_purge_rejects_negative_days(quarantined):
    with pytest.raises(CommandError, match="0 or more"):
        eas("purge-quarantined", "--older-than-days", "-1")
    assert MobileDevice.objects.count() == 4
