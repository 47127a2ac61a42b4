"""End users approving their own quarantined device, where the organisation allows it."""

from django.db import transaction

from .. import notify
from ..audit import Actor
from ..models import (
    AccessState,
    DeviceIdList,
    Mailbox,
    MailboxDeviceId,
    MobileDevice,
    OrgSettings,
    SelfApproval,
)
from .base import ActionError, Result, lock
from .partnerships import set_device_list


def may_self_approve(user, device: MobileDevice, org: OrgSettings | None = None) -> str:
    """Why this user may not approve this device ('' when they may)."""
    org = org or OrgSettings.load()
    if org.self_approval == SelfApproval.NEVER:
        return "Your organisation does not let users approve their own devices; ask the helpdesk."
    # An anonymous user's pk is None, like a shared mailbox's missing login.
    owner = device.mailbox.user_id
    if user is None or not user.is_authenticated or owner is None or owner != user.pk:
        return "You can only approve your own devices."
    if device.access_state != AccessState.QUARANTINED:
        return "Only a device waiting in quarantine can be approved."
    if org.self_approval == SelfApproval.FIRST_DEVICE and has_approved_device(device):
        return "You may approve your first device only; ask the helpdesk to approve this one."
    return ""


def has_approved_device(device: MobileDevice) -> bool:
    """Another device of this mailbox is allowed, or another DeviceId is on its allowed list."""
    others = MobileDevice.objects.filter(mailbox_id=device.mailbox_id).exclude(pk=device.pk)
    listed = MailboxDeviceId.objects.filter(
        mailbox_id=device.mailbox_id, list=DeviceIdList.ALLOWED
    ).exclude(device_key=device.device_key)
    return others.filter(access_state=AccessState.ALLOWED).exists() or listed.exists()


@transaction.atomic
def self_approve(actor: Actor, device: MobileDevice) -> Result:
    """The device's owner puts it on the allowed list; the admins are told.

    "First device only" is a check across the mailbox's devices, so approvals
    of one mailbox take turns on the mailbox's row lock (taken before the
    device's, the order set_device_list uses); otherwise simultaneous
    approvals of two devices would each see no other device approved yet.
    """
    lock(Mailbox.objects.filter(devices__pk=device.pk)).first()
    device = lock(MobileDevice.objects.filter(pk=device.pk)).select_related("mailbox").first()
    if device is None:
        raise ActionError("That device no longer exists.")
    reason = may_self_approve(actor.user, device)
    if reason:
        raise ActionError(reason)
    with notify.owner_approving():
        result = set_device_list(
            actor,
            device.mailbox,
            device.device_id,
            DeviceIdList.ALLOWED,
            action="device.self_approve",
            what=f"{device.mailbox.alias} approved their own device {device.device_id}",
        )
    notify.self_approved(result.obj, result.event)
    return result
