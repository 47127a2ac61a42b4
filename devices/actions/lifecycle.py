"""Lifecycle: grandfather existing devices before quarantine, purge stale quarantine."""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from ..audit import Actor
from ..models import (
    AccessReason,
    AccessState,
    AuditEvent,
    DeviceIdList,
    MailboxDeviceId,
    MobileDevice,
)
from .base import CHUNK, ActionError, AuditAfter, Result, device_snapshot, lock
from .reevaluation import reevaluate


@transaction.atomic
def grandfather_devices(actor: Actor, *, dry_run: bool = False) -> Result:
    """Put every device allowed by the org default on its mailbox's allowed list.

    Switching the default to Quarantine afterwards leaves them syncing. The
    lists are merged: nothing already on a list is touched.
    """
    devices = MobileDevice.objects.filter(
        access_state=AccessState.ALLOWED, access_state_reason=AccessReason.GLOBAL
    )
    if dry_run:
        return Result(count=devices.count())
    pairs = list(devices.values_list("pk", "mailbox_id", "device_id"))
    now = timezone.now()
    MailboxDeviceId.objects.bulk_create(
        [
            MailboxDeviceId(
                mailbox_id=mailbox_id,
                device_id=device_id,
                device_key=device_id.lower(),
                list=DeviceIdList.ALLOWED,
                created_at=now,
            )
            for _, mailbox_id, device_id in pairs
        ],
        batch_size=CHUNK,
        ignore_conflicts=True,
    )
    audit = AuditAfter(
        actor,
        f"{len(pairs)} devices added to their mailbox's allowed list",
        action="devices.grandfather",
        object_type="OrgSettings",
        object_id="1",
        object_repr="Organisation settings",
        after={"count": len(pairs)},
    )
    # The same filter still selects exactly them: they are now Allowed/Individual-to-be.
    transitions = reevaluate(devices, audit)
    return Result(event=audit(), transitions=transitions, count=len(pairs))


@transaction.atomic
def purge_quarantined(actor: Actor, *, older_than_days: int, dry_run: bool = False) -> Result:
    """Remove partnerships that have waited in quarantine longer than N days (0: all)."""
    if older_than_days < 0:
        raise ActionError("--older-than-days must be 0 or more.")
    cutoff = timezone.now() - timedelta(days=older_than_days)
    stale = MobileDevice.objects.filter(
        access_state=AccessState.QUARANTINED, state_changed_at__lte=cutoff
    ).select_related("mailbox", "access_rule")
    devices = list(lock(stale))
    if dry_run:
        return Result(obj=devices, count=len(devices))
    now = timezone.now()
    AuditEvent.objects.bulk_create(
        [
            AuditEvent(
                time=now,
                actor_id=actor.user_id,
                actor_name=actor.name,
                source=actor.source,
                client_ip=actor.ip,
                request_id=actor.request_id,
                action="device.purge",
                object_type="MobileDevice",
                object_id=str(d.pk),
                object_repr=str(d)[:256],
                before=device_snapshot(d),
                message=f"Removed after {older_than_days} days or more in quarantine",
            )
            for d in devices
        ],
        batch_size=CHUNK,
    )
    pks = [d.pk for d in devices]
    for i in range(0, len(pks), CHUNK):
        MobileDevice.objects.filter(pk__in=pks[i : i + CHUNK]).delete()
    return Result(obj=devices, count=len(devices))
