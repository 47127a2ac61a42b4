"""Where state changes meet notifications.

devices.actions calls `state_changed` inside the transaction that changed the
state. This module decides who is told, builds ready-made mail contexts and
writes them to the `notifications` outbox, which never imports `devices`.

Each mail's dedupe key names the DeviceStateChange row behind it, so one
transition gives one mail per recipient however often the device retries.
"""

from contextlib import contextmanager
from contextvars import ContextVar
from datetime import timedelta

from django.utils import timezone, translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from notifications import webhooks
from notifications.models import Channel, Kind
from notifications.outbox import Mail, annotate_waiting, enqueue

from . import links
from .languages import mailbox_language, org_language, org_time_zone
from .models import AccessReason, AccessState, AdminMailMode, MobileDevice, OrgSettings
from .replacements import mark_replacements

# The ECP's URL contract: the mails link here.
DEVICE_PATH = "/devices/{pk}/"
MY_DEVICES_PATH = "/my/devices/"
QUARANTINE_PATH = "/devices/quarantine/"

REASON_TEXT = {
    AccessReason.GLOBAL: _("the organisation's default access level"),
    AccessReason.INDIVIDUAL: _("the mailbox's own list of allowed or blocked devices"),
    AccessReason.DEVICE_RULE: _("a device access rule"),
    AccessReason.POLICY: _("ActiveSync being turned off for the mailbox"),
    AccessReason.UPGRADE: _("an upgrade"),
    AccessReason.ORG_LIST: _("the organisation-wide list of allowed DeviceIds"),
    AccessReason.ACCOUNT_DISABLED: _("the account being disabled or removed in the directory"),
}
_CHUNK = 1000
# Set while a user approves their own device: they need no mail saying so.
_owner_approving: ContextVar[bool] = ContextVar("owner_approving", default=False)


# Set while an owner answers "No, this was not me": they get the "change your password"
# mail instead of the usual "your device was blocked".
_reporting_not_mine: ContextVar[bool] = ContextVar("reporting_not_mine", default=False)


@contextmanager
def owner_approving():
    token = _owner_approving.set(True)
    try:
        yield
    finally:
        _owner_approving.reset(token)


@contextmanager
def reporting_not_mine():
    token = _reporting_not_mine.set(True)
    try:
        yield
    finally:
        _reporting_not_mine.reset(token)


def state_changed(transitions, org: OrgSettings | None = None) -> None:
    """Queue the mails a batch of transitions calls for (same transaction); `org`: the
    organisation's settings when the caller has just read them."""
    moved = [t for t in transitions if t.from_state != t.to_state and t.change_id]
    if not moved:
        return
    org = org or OrgSettings.load()
    # Only these can call for a mail (mails_for decides which do): a rule releasing
    # 100,000 devices must not load them all to find that none does.
    moved = [
        t
        for t in moved
        if t.to_state in (AccessState.QUARANTINED, AccessState.BLOCKED)
        or (t.from_state == AccessState.UNKNOWN and org.new_device_alert)
        or (_approval(t) and org.send_user_mail)
    ]
    mails: list[Mail] = []
    for i in range(0, len(moved), _CHUNK):
        chunk = moved[i : i + _CHUNK]
        devices = MobileDevice.objects.select_related(
            "mailbox", "access_rule", "access_policy"
        ).in_bulk([t.device_pk for t in chunk])
        if org.admin_mail_recipients:
            # The admin mail's "probably replaces" hint, as on the quarantine list.
            mark_replacements(
                [d for d in devices.values() if d.access_state == AccessState.QUARANTINED]
            )
        for t in chunk:
            device = devices.get(t.device_pk)
            if device is not None:
                mails.extend(mails_for(t, device, org))
    enqueue(mails)


def mails_for(transition, device: MobileDevice, org: OrgSettings) -> list[Mail]:
    # The user's mails in the mailbox's language, the admins' in the organisation's.
    context = mail_context(device, org)
    if context["language"] == org_language(org):
        admin_context = context
    else:
        admin_context = mail_context(device, org, language=org_language(org))
    user = device.mailbox.primary_smtp_address
    key = f"{transition.change_id}"
    mails = []
    about = f"device:{device.pk}"  # coalesced per device (notifications.outbox)
    if transition.to_state == AccessState.QUARANTINED:
        if org.send_user_mail and user:
            mails.append(
                _mail(Kind.USER_QUARANTINED, user, owner_context(device, org), key, about=about)
            )
        hold_until = None
        if org.admin_mail_mode == AdminMailMode.DIGEST:
            hold_until = timezone.now() + timedelta(minutes=org.admin_digest_minutes)
        admin_context = {**admin_context, "links": links.paths(device, sorted(links.ADMIN_ACTIONS))}
        for admin in org.admin_mail_recipients:
            mails.append(
                _mail(Kind.ADMIN_QUARANTINED, admin, admin_context, key, hold_until, about)
            )
        for hook in webhooks.configured():
            mails.append(
                Mail(
                    kind=Kind.WEBHOOK_QUARANTINED,
                    recipient=hook.label,
                    context=admin_context,
                    dedupe_key=f"{Kind.WEBHOOK_QUARANTINED}:{key}:{hook.key}",
                    coalesce_key=about,
                    channel=Channel.WEBHOOK,
                    target=hook.key,
                )
            )
    elif transition.to_state == AccessState.BLOCKED:
        # A mailbox turned off or a disabled account (a leaver, usually) gets no mail
        # per device; an owner who said "not me" gets the "change your password" mail.
        quiet = (AccessReason.POLICY, AccessReason.ACCOUNT_DISABLED)
        if _reporting_not_mine.get():
            pass
        elif org.send_user_mail and user and transition.to_reason not in quiet:
            mails.append(_mail(Kind.USER_BLOCKED, user, context, key, about=about))
    elif _approval(transition):
        if org.send_user_mail and user:
            mails.append(_mail(Kind.USER_APPROVED, user, context, key, about=about))
    elif transition.from_state == AccessState.UNKNOWN and org.new_device_alert and user:
        mails.append(_mail(Kind.USER_NEW_DEVICE, user, context, key, about=about))
    return mails


def _approval(transition) -> bool:
    """Quarantined -> Allowed: the user hears that the device now syncs."""
    return (
        transition.from_state == AccessState.QUARANTINED
        and transition.to_state == AccessState.ALLOWED
        and not _owner_approving.get()
    )


def _mail(kind, recipient, context, key, hold_until=None, about="") -> Mail:
    return Mail(
        kind=kind,
        recipient=recipient,
        context=context,
        dedupe_key=f"{kind}:{key}:{recipient.lower()}"[:200],
        hold_until=hold_until,
        coalesce_key=about,
    )


def reason_text(device: MobileDevice) -> str:
    """What decided, in words: the policy by name where a policy's default decided."""
    if device.access_state_reason == AccessReason.GLOBAL and device.access_policy_id:
        policy = device.access_policy
        level = policy.get_default_access_level_display()
        return gettext("the access policy %(name)s (default access level %(level)s)") % {
            "name": policy.name,
            "level": level,
        }
    return str(REASON_TEXT.get(device.access_state_reason, ""))


def _replaces(device: MobileDevice) -> dict | None:
    old = getattr(device, "replaces", None)
    if old is None:
        return None
    return {
        "device_id": old.device_id,
        "label": old.marketing_name or old.device_model or old.device_type,
        "approved_at": old.state_changed_at.isoformat(),
        "page_path": DEVICE_PATH.format(pk=old.pk),
    }


def owner_context(
    device: MobileDevice, org: OrgSettings, at: float | None = None, *, language: str = ""
) -> dict:
    """The user's quarantine mail (and the phone notice): "Was this you?" links."""
    return {
        **mail_context(device, org, language=language),
        "links": links.paths(device, [links.MINE, links.NOT_MINE], at),
    }


def _owner_answer(device: MobileDevice) -> dict | None:
    if not device.owner_answer:
        return None
    return {
        "answer": device.owner_answer,
        "at": device.owner_answered_at.isoformat() if device.owner_answered_at else "",
        "ip": device.owner_answer_ip or "",
    }


def mail_context(device: MobileDevice, org: OrgSettings, *, language: str = "") -> dict:
    """A mail's context, in `language` (default: the mailbox's, devices.languages)."""
    language = language or mailbox_language(device.mailbox, org)
    with translation.override(language):
        return _mail_context(device, org, language)


def _mail_context(device: MobileDevice, org: OrgSettings, language: str) -> dict:
    mailbox = device.mailbox
    marketing_name = device.marketing_name
    return {
        # notifications.rendering writes the mail in this language and time zone.
        "language": language,
        "time_zone": org_time_zone(org),
        "device": {
            "pk": device.pk,
            "device_id": device.device_id,
            "device_type": device.device_type,
            "device_model": device.device_model,
            # "iPhone 14 Pro" for iPhone15C2 (devices.model_names); shown beside the code.
            "marketing_name": marketing_name,
            "label": marketing_name or device.device_model or device.device_type,
            "device_os": device.device_os,
            "device_os_language": device.device_os_language,
            "user_agent": device.user_agent,
            "imei": device.imei,
            "phone_number": device.phone_number,
            "friendly_name": device.friendly_name,
            "mobile_operator": device.mobile_operator,
            "eas_version": device.eas_version,
            "first_seen": device.first_seen.isoformat(),
            "access_state": device.access_state,
            "access_state_display": device.get_access_state_display(),
            "access_state_reason": device.access_state_reason,
            "reason_text": reason_text(device),
            "access_rule": str(device.access_rule) if device.access_rule_id else "",
            # Since when it is in its present state: the admin mail's waiting time.
            "state_changed_at": device.state_changed_at.isoformat(),
            "replaces": _replaces(device),
            "page_path": DEVICE_PATH.format(pk=device.pk),
        },
        "mailbox": {
            "alias": mailbox.alias,
            "display_name": mailbox.display_name or mailbox.alias,
            "email": mailbox.primary_smtp_address,
        },
        # "Was this you?": the owner's answer ("mine", "not-mine"), when and from where.
        "owner_answer": _owner_answer(device),
        "user_mail_insert": org.user_mail_insert_for(language),
        "my_devices_path": MY_DEVICES_PATH,
        "quarantine_path": QUARANTINE_PATH,
    }


def self_approved(device: MobileDevice, event) -> None:
    """Tell the admins that a user approved their own device (same transaction)."""
    org = OrgSettings.load()
    context = mail_context(device, org, language=org_language(org))
    context["approved_at"] = event.time.isoformat()
    enqueue(
        [
            _mail(Kind.ADMIN_SELF_APPROVED, admin, context, f"event{event.pk}")
            for admin in org.admin_mail_recipients
        ]
    )


def owner_confirmed(device: MobileDevice) -> None:
    """The owner said "yes, mine": admin mails still waiting (one, or a digest's items)
    say so when they go out (same transaction)."""
    annotate_waiting(
        f"device:{device.pk}",
        [Kind.ADMIN_QUARANTINED],
        {"owner_answer": _owner_answer(device)},
    )


def not_mine(device: MobileDevice, event) -> None:
    """The owner said "not me": a high-priority alert to every admin recipient, and the
    owner is told to change their password (same transaction)."""
    org = OrgSettings.load()
    context = mail_context(device, org)
    context["reported_at"] = event.time.isoformat()
    context["reported_from"] = event.client_ip or ""
    mails = [
        _mail(Kind.ADMIN_NOT_MINE, admin, context, f"event{event.pk}")
        for admin in org.admin_mail_recipients
    ]
    user = device.mailbox.primary_smtp_address
    if user:
        # Sent even when the organisation sends no user mail: this one is about security.
        mails.append(_mail(Kind.USER_NOT_MINE, user, context, f"event{event.pk}"))
    enqueue(mails)
