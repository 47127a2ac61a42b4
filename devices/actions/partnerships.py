"""One device of one mailbox: allow, block, remove (Remove-MobileDevice)."""

from django.db import transaction

from ..audit import Actor, record
from ..models import AccessState, DeviceIdList, Mailbox, MailboxDeviceId, MobileDevice
from .base import (
    ActionError,
    AuditAfter,
    Result,
    clean_device_id,
    device_snapshot,
    lock,
    mailbox_snapshot,
)
from .mailboxes import put_on_list
from .reevaluation import reevaluate


def set_device_list(
    actor: Actor, mailbox: Mailbox, device_id: str, kind: str, *, action: str = "", what: str = ""
) -> Result:
    """Put a DeviceId on one of the mailbox's lists and re-decide that device."""
    device_id = clean_device_id(device_id)
    mailbox = Mailbox.objects.select_for_update().get(pk=mailbox.pk)
    device = MobileDevice.objects.filter(mailbox=mailbox, device_key=device_id.lower()).first()
    if device is not None:
        device_id = device.device_id  # keep the spelling the device uses
    before = mailbox_snapshot(mailbox)
    put_on_list(mailbox, device_id, kind)
    after = mailbox_snapshot(mailbox)
    verb = "allow" if kind == DeviceIdList.ALLOWED else "block"
    audit = AuditAfter(
        actor,
        what or f"DeviceId {device_id} {verb}ed for mailbox {mailbox.alias}",
        action=action or f"device.{verb}",
        object_type="MobileDevice",
        object_id=str(device.pk) if device else "",
        object_repr=f"{device_id} ({mailbox.alias})",
        before=before,
        after=after,
    )
    transitions = reevaluate(
        MobileDevice.objects.filter(mailbox=mailbox, device_key=device_id.lower()), audit
    )
    event = audit()
    if device is not None:
        device.refresh_from_db()
    return Result(device, event, transitions)


def list_of(mailbox: Mailbox, device_id: str) -> str:
    """Which of the mailbox's lists holds the DeviceId: 'allowed', 'blocked' or ''."""
    entry = mailbox.device_ids.filter(device_key=device_id.lower()).values_list("list").first()
    return entry[0] if entry else ""


@transaction.atomic
def undo_device_list(actor: Actor, mailbox: Mailbox, device_id: str, previous: str) -> Result:
    """Put a DeviceId back where it was before an Allow or Block: a new, audited change.

    `previous` is the list that held it ('allowed', 'blocked') or '' for none.
    """
    if previous not in ("", DeviceIdList.ALLOWED, DeviceIdList.BLOCKED):
        raise ActionError(f"Unknown list {previous!r}.")
    device_id = clean_device_id(device_id)
    if previous:
        where = f"back on the {previous} list"
        return set_device_list(
            actor,
            mailbox,
            device_id,
            previous,
            action="device.undo",
            what=f"Undo: DeviceId {device_id} {where} of mailbox {mailbox.alias}",
        )
    mailbox = Mailbox.objects.select_for_update().get(pk=mailbox.pk)
    device = MobileDevice.objects.filter(mailbox=mailbox, device_key=device_id.lower()).first()
    before = mailbox_snapshot(mailbox)
    MailboxDeviceId.objects.filter(mailbox=mailbox, device_key=device_id.lower()).delete()
    audit = AuditAfter(
        actor,
        f"Undo: DeviceId {device_id} taken off the lists of mailbox {mailbox.alias}",
        action="device.undo",
        object_type="MobileDevice",
        object_id=str(device.pk) if device else "",
        object_repr=f"{device_id} ({mailbox.alias})",
        before=before,
        after=mailbox_snapshot(mailbox),
    )
    transitions = reevaluate(
        MobileDevice.objects.filter(mailbox=mailbox, device_key=device_id.lower()), audit
    )
    event = audit()
    if device is not None:
        device.refresh_from_db()
    return Result(device, event, transitions)


@transaction.atomic
def allow_device(actor: Actor, mailbox: Mailbox, device_id: str) -> Result:
    """Put the DeviceId on the mailbox's allowed list (and off the blocked list)."""
    return set_device_list(actor, mailbox, device_id, DeviceIdList.ALLOWED)


@transaction.atomic
def block_device(actor: Actor, mailbox: Mailbox, device_id: str) -> Result:
    """Put the DeviceId on the mailbox's blocked list (and off the allowed list)."""
    return set_device_list(actor, mailbox, device_id, DeviceIdList.BLOCKED)


@transaction.atomic
def remove_device(actor: Actor, device: MobileDevice) -> Result:
    """Remove the partnership; the device starts over if it syncs again."""
    # Audit the row as it is now, not the caller's copy; removing twice is refused.
    device = lock(MobileDevice.objects.filter(pk=device.pk)).select_related("mailbox").first()
    if device is None:
        raise ActionError("That partnership no longer exists.")
    before = device_snapshot(device)
    event = record(
        actor,
        action="device.remove",
        object_type="MobileDevice",
        object_id=str(device.pk),
        object_repr=str(device),
        before=before,
        message=f"Partnership {device} removed",
    )
    device.delete()
    return Result(None, event)


@transaction.atomic
def allow_and_replace(actor: Actor, device: MobileDevice, old: MobileDevice) -> Result:
    """Allow a device that replaces an approved one of the same mailbox, and remove the old.

    A reset phone or reinstalled client comes back with a new DeviceId; this is
    the helpdesk's one-click answer. The old DeviceId leaves the allowed list.
    """
    if old.mailbox_id != device.mailbox_id or old.pk == device.pk:
        raise ActionError("A device can only replace another device of the same mailbox.")
    if old.access_state != AccessState.ALLOWED:
        raise ActionError(f"{old.device_id} is not an approved device; nothing to replace.")
    mailbox = device.mailbox
    result = set_device_list(
        actor,
        mailbox,
        device.device_id,
        DeviceIdList.ALLOWED,
        action="device.replace",
        what=f"DeviceId {device.device_id} allowed for mailbox {mailbox.alias}, "
        f"replacing {old.device_id}",
    )
    MailboxDeviceId.objects.filter(
        mailbox=mailbox, device_key=old.device_key, list=DeviceIdList.ALLOWED
    ).delete()
    remove_device(actor, old)
    return result
