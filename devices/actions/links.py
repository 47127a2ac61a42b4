"""Signed mail links that act (issue 18): Allow / Block for the admins, "Was this you?"
for the device's owner. devices.links makes and reads them; this uses one.

Using a link is one transaction: the device's row is locked, the link's state is
checked again (fresh, not used, not stale), its use is recorded (ActionLinkUse,
unique: two simultaneous uses, one wins), then the action runs through the same
functions as the panel's, audited as source "mail link" with the address.
"""

from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from .. import links, notify
from ..audit import Actor, record
from ..models import (
    AccessState,
    ActionLinkUse,
    DeviceIdList,
    Mailbox,
    MobileDevice,
    OrgSettings,
    OwnerAnswer,
    SelfApproval,
)
from .base import ActionError, Result, lock
from .partnerships import set_device_list
from .self_service import has_approved_device


class LinkRefused(ActionError):
    """The link is used, expired, tampered with or stale: nothing was changed."""

    def __init__(self, state: str):
        super().__init__(str(links.PROBLEMS[state]))
        self.state = state


@dataclass(frozen=True)
class LinkOutcome:
    result: Result
    approved: bool = False  # "mine" and the self-approval policy let the device in


@dataclass(frozen=True)
class OwnerActor(Actor):
    """The device's owner, who proved it with the signed link and need not sign in."""

    alias: str = ""

    @property
    def name(self) -> str:
        if self.user is not None:
            return self.user.get_username()
        return self.alias


def self_approval_allows(device: MobileDevice, org: OrgSettings) -> bool:
    """The organisation's self-approval policy lets the owner's "yes" approve the device."""
    if org.self_approval == SelfApproval.NEVER:
        return False
    if org.self_approval == SelfApproval.FIRST_DEVICE and has_approved_device(device):
        return False
    return device.access_state == AccessState.QUARANTINED


@transaction.atomic
def use_link(actor: Actor, token: str) -> LinkOutcome:
    """Do what a link says, once. LinkRefused (nothing changed) when it may not."""
    link, problem = links.read(token)
    if link is None:
        raise LinkRefused(problem)
    lock(Mailbox.objects.filter(devices__pk=link.device_pk)).first()
    device = lock(MobileDevice.objects.filter(pk=link.device_pk)).select_related("mailbox").first()
    state = links.state_of(link, device)
    if state != links.LinkState.FRESH:
        raise LinkRefused(state)
    try:
        with transaction.atomic():
            ActionLinkUse.objects.create(
                device=device,
                action=link.action,
                issued_for=link.issued_for,
                used_by=actor.user if getattr(actor.user, "pk", None) else None,
                used_by_name=actor.name[:150],
                client_ip=actor.ip,
            )
    except IntegrityError:
        raise LinkRefused(links.LinkState.USED) from None
    if link.action == links.ALLOW:
        return LinkOutcome(_set(actor, device, DeviceIdList.ALLOWED, "allowed"))
    if link.action == links.BLOCK:
        return LinkOutcome(_set(actor, device, DeviceIdList.BLOCKED, "blocked"))
    if link.action == links.MINE:
        return _mine(actor, device)
    return _not_mine(actor, device)


def _set(actor: Actor, device: MobileDevice, kind: str, past: str) -> Result:
    mailbox = device.mailbox
    return set_device_list(
        actor,
        mailbox,
        device.device_id,
        kind,
        what=f"DeviceId {device.device_id} {past} for mailbox {mailbox.alias} "
        "from the link in the admin mail",
    )


def _answer(actor: Actor, device: MobileDevice, answer: str) -> MobileDevice:
    now = timezone.now()
    MobileDevice.objects.filter(pk=device.pk).update(
        owner_answer=answer, owner_answered_at=now, owner_answer_ip=actor.ip
    )
    device.owner_answer, device.owner_answered_at, device.owner_answer_ip = answer, now, actor.ip
    return device


def _answer_fields(device: MobileDevice) -> dict:
    return {
        "owner_answer": device.owner_answer,
        "owner_answered_at": device.owner_answered_at.isoformat(),
        "owner_answer_ip": device.owner_answer_ip,
    }


def _mine(actor: Actor, device: MobileDevice) -> LinkOutcome:
    """ "Yes, this is my new phone": confirmed; approved where self-approval allows it."""
    before = {"owner_answer": device.owner_answer}
    device = _answer(actor, device, OwnerAnswer.MINE)
    mailbox = device.mailbox
    if self_approval_allows(device, OrgSettings.load()):
        with notify.owner_approving():
            result = set_device_list(
                actor,
                mailbox,
                device.device_id,
                DeviceIdList.ALLOWED,
                action="device.self_approve",
                what=f"{mailbox.alias} confirmed the device {device.device_id} as theirs "
                "from the link in the user mail and approved it (self-approval)",
            )
        notify.self_approved(result.obj, result.event)
        return LinkOutcome(result, approved=True)
    event = record(
        actor,
        action="device.confirm",
        obj=device,
        object_type="MobileDevice",
        object_repr=f"{device.device_id} ({mailbox.alias})",
        before=before,
        after=_answer_fields(device),
        message=f"{mailbox.alias} confirmed the device {device.device_id} as theirs "
        "from the link in the user mail; it still waits for approval",
    )
    notify.owner_confirmed(device)
    return LinkOutcome(Result(device, event))


def _not_mine(actor: Actor, device: MobileDevice) -> LinkOutcome:
    """ "No, this was not me": blocked at once, the admins alerted, the owner told to
    change their password."""
    device = _answer(actor, device, OwnerAnswer.NOT_MINE)
    mailbox = device.mailbox
    with notify.reporting_not_mine():
        result = set_device_list(
            actor,
            mailbox,
            device.device_id,
            DeviceIdList.BLOCKED,
            action="device.not_mine",
            what=f"{mailbox.alias} said the device {device.device_id} is not theirs "
            f"(from {actor.ip or 'an unknown address'}): blocked; the password may be stolen",
        )
    notify.not_mine(result.obj or device, result.event)
    return LinkOutcome(result)
