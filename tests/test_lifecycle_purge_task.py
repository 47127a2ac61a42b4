"""The periodic housekeeping in devices.tasks, run by Celery beat.

purge_stale_quarantine: off by default; with the org setting it removes the
devices left in quarantine that long, each removal audited as the system.
end_discovery_windows: decides the devices whose discovery window ended
without DeviceInformation.
"""

import json
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.management.base import CommandError
from django.utils import timezone

from devices import actions, tasks
from devices.audit import Actor
from devices.models import (
    AccessReason,
    AccessState,
    AuditEvent,
    AuditSource,
    DeviceStateChange,
    MobileDevice,
    OrgSettings,
)
from tests.cli_support import eas

GATE = Actor(source=AuditSource.GATE)


def contact(mailbox, device_id, info=True):
    return actions.record_contact(
        GATE,
        mailbox,
        actions.Contact(
            device_id=device_id, device_type="iPhone", info={"model": "X1"} if info else None
        ),
    )


def age(device, *, days=0, minutes=0, field="state_changed_at"):
    # The fixture's own backdating: devices are not audit events.
    when = timezone.now() - timedelta(days=days, minutes=minutes)
    MobileDevice.objects.filter(pk=device.pk).update(**{field: when})


@pytest.fixture
def waiting(cli_actor):
    """Quarantine by default; devices waiting 2, 29, 31 and 90 days, and an old allowed one."""
    actions.set_org_settings(cli_actor, default_access_level="Quarantine")
    box = actions.create_mailbox(cli_actor, alias="pat", email="pat@example.org").obj
    devices = {}
    for name, days in (("d2", 2), ("d29", 29), ("d31", 31), ("d90", 90)):
        devices[name] = contact(box, name.upper())
        age(devices[name], days=days)
    devices["allowed"] = contact(box, "ALLOWED1")
    actions.allow_device(cli_actor, box, "ALLOWED1")
    age(devices["allowed"], days=400)
    return devices


def present(devices) -> set[str]:
    pks = {d.pk: name for name, d in devices.items()}
    return {pks[pk] for pk in MobileDevice.objects.filter(pk__in=pks).values_list("pk", flat=True)}


# ---------------------------------------------------------------------------
# purge_stale_quarantine


def test_both_tasks_are_on_the_beat_schedule():
    tasks_scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "devices.tasks.purge_stale_quarantine" in tasks_scheduled
    assert "devices.tasks.end_discovery_windows" in tasks_scheduled


@pytest.mark.django_db
def test_the_purge_is_off_by_default(waiting):
    assert OrgSettings.load().purge_quarantined_after_days is None
    events = AuditEvent.objects.count()
    assert tasks.purge_stale_quarantine() == 0
    assert present(waiting) == set(waiting)
    assert AuditEvent.objects.count() == events


@pytest.mark.django_db
def test_it_removes_what_waited_longer_than_the_setting_as_the_system(waiting):
    eas("set-org-settings", "--purge-quarantined-after-days", "30")
    assert tasks.purge_stale_quarantine.apply().get() == 2
    assert present(waiting) == {"d2", "d29", "allowed"}
    events = AuditEvent.objects.filter(action="device.purge").order_by("object_id")
    assert sorted(e.object_id for e in events) == sorted(str(waiting[n].pk) for n in ("d31", "d90"))
    for event in events:
        assert (event.source, event.actor, event.actor_name) == (AuditSource.SYSTEM, None, "system")
        assert event.object_type == "MobileDevice"
        assert event.before["access_state"] == AccessState.QUARANTINED
        assert event.before["mailbox"] == "pat"
        assert "30 days" in event.message
    # Run again: nothing more to do, nothing more written.
    assert tasks.purge_stale_quarantine() == 0
    assert AuditEvent.objects.filter(action="device.purge").count() == 2


@pytest.mark.django_db
def test_the_time_in_quarantine_counts_not_the_age(waiting, cli_actor):
    """An old device quarantined again yesterday has waited one day."""
    old = waiting["allowed"]
    actions.set_mailbox(cli_actor, old.mailbox, remove_allowed=["ALLOWED1"])
    old.refresh_from_db()
    assert old.access_state == AccessState.QUARANTINED
    eas("set-org-settings", "--purge-quarantined-after-days", "30")
    tasks.purge_stale_quarantine()
    assert "allowed" in present(waiting)


@pytest.mark.django_db
def test_never_turns_it_off_again(waiting):
    eas("set-org-settings", "--purge-quarantined-after-days", "7")
    [row] = json.loads(eas("get-org-settings", "--format", "json"))
    assert row["purge_quarantined_after_days"] == 7
    out = eas("set-org-settings", "--purge-quarantined-after-days", "NEVER")
    assert "purge_quarantined_after_days: 7 -> None" in out
    assert OrgSettings.load().purge_quarantined_after_days is None
    assert tasks.purge_stale_quarantine() == 0
    assert present(waiting) == set(waiting)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "value, message",
    [
        ("0", "1 to 3650 days, or never"),
        ("3651", "1 to 3650 days, or never"),
        ("-3", "a number of days or never"),
        ("soon", "a number of days or never"),
        ("1.5", "a number of days or never"),
    ],
)
def test_bad_purge_settings_are_refused(value, message):
    actions.set_org_settings(Actor(), purge_quarantined_after_days=14)
    events = AuditEvent.objects.count()
    with pytest.raises(CommandError, match=message):
        eas("set-org-settings", "--purge-quarantined-after-days", value)
    assert OrgSettings.load().purge_quarantined_after_days == 14
    assert AuditEvent.objects.count() == events


# ---------------------------------------------------------------------------
# end_discovery_windows


@pytest.fixture
def discovering(cli_actor):
    """Quarantine by default; two devices that never sent DeviceInformation."""
    actions.set_org_settings(cli_actor, default_access_level="Quarantine")
    box = actions.create_mailbox(cli_actor, alias="quinn", email="quinn@example.org").obj
    stale, fresh = contact(box, "STALE1", info=False), contact(box, "FRESH1", info=False)
    for device in (stale, fresh):
        assert device.access_state == AccessState.DEVICE_DISCOVERY
    window = OrgSettings.load().discovery_window_minutes
    age(stale, minutes=window + 1, field="first_seen")
    return stale, fresh


@pytest.mark.django_db
def test_devices_whose_window_ended_are_decided_as_the_system(discovering):
    stale, fresh = discovering
    assert tasks.end_discovery_windows() == 1
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert (stale.access_state, stale.access_state_reason) == (
        AccessState.QUARANTINED,
        AccessReason.GLOBAL,
    )
    assert fresh.access_state == AccessState.DEVICE_DISCOVERY
    event = AuditEvent.objects.get(action="devices.discovery_ended")
    assert (event.source, event.actor_name) == (AuditSource.SYSTEM, "system")
    assert "1 device from in discovery to quarantined" in event.message
    [change] = DeviceStateChange.objects.filter(event=event)
    assert change.device_id == stale.pk


@pytest.mark.django_db
def test_nothing_to_decide_writes_nothing(discovering):
    _, fresh = discovering
    tasks.end_discovery_windows()
    events = AuditEvent.objects.count()
    assert tasks.end_discovery_windows() == 0
    assert AuditEvent.objects.count() == events
    assert MobileDevice.objects.get(pk=fresh.pk).access_state == AccessState.DEVICE_DISCOVERY
