"""Mailboxes and their allowed/blocked DeviceId lists (Set-CASMailbox)."""

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from .. import hostile
from ..audit import Actor, record
from ..models import DeviceIdList, Mailbox, MailboxDeviceId, MobileDevice
from .base import (
    ActionError,
    AuditAfter,
    ConflictError,
    Result,
    clean_device_id,
    clean_email,
    mailbox_snapshot,
)
from .policies import resolve_policies
from .reevaluation import reevaluate


@transaction.atomic
def create_mailbox(
    actor: Actor,
    *,
    alias: str,
    email: str,
    display_name: str = "",
    password: str | None = None,
    activesync_enabled: bool = True,
) -> Result:
    alias = (alias or "").strip()
    if not alias or len(alias) > 64 or not all(c.isalnum() or c in "._-" for c in alias):
        raise ActionError(f"{alias!r} is not a valid alias (letters, digits, '.', '_', '-').")
    email = clean_email(email)
    conflict = _existing(alias, email, with_login=password is not None)
    if conflict:
        raise ConflictError(conflict)
    if password is not None and not password:
        raise ActionError("The password must not be empty.")
    try:
        # A savepoint: a simultaneous creation of the same alias or address wins the
        # unique constraint, and this one is told so, as if it had come second.
        with transaction.atomic():
            user = None
            if password is not None:
                user = get_user_model().objects.create_user(
                    username=alias, email=email, password=password
                )
            mailbox = Mailbox.objects.create(
                alias=alias,
                primary_smtp_address=email,
                display_name=hostile.clean_line(display_name)[:256] or alias,
                activesync_enabled=activesync_enabled,
                user=user,
            )
    except IntegrityError:
        conflict = _existing(alias, email, with_login=password is not None)
        raise ConflictError(
            conflict or f"A mailbox with alias {alias!r} or address {email!r} already exists."
        ) from None
    resolve_policies(Mailbox.objects.filter(pk=mailbox.pk))
    mailbox.refresh_from_db()
    event = record(
        actor,
        action="mailbox.create",
        obj=mailbox,
        after=mailbox_snapshot(mailbox),
        message=f"Mailbox {alias} created" + (" with a login" if user else ""),
    )
    return Result(mailbox, event)


def _existing(alias: str, email: str, *, with_login: bool) -> str:
    """Why a mailbox with this alias and address cannot be made ('' when it can)."""
    if Mailbox.objects.filter(alias__iexact=alias).exists():
        return f"A mailbox with alias {alias!r} already exists."
    if Mailbox.objects.filter(primary_smtp_address__iexact=email).exists():
        return f"A mailbox with address {email!r} already exists."
    if with_login and get_user_model().objects.filter(username__iexact=alias).exists():
        return f"A login named {alias!r} already exists."
    return ""


def put_on_list(mailbox: Mailbox, device_id: str, kind: str) -> None:
    key = device_id.lower()
    entry = MailboxDeviceId.objects.filter(mailbox=mailbox, device_key=key).first()
    if entry is None:
        MailboxDeviceId.objects.create(mailbox=mailbox, device_id=device_id, list=kind)
    elif entry.list != kind:
        entry.list = kind
        entry.save(update_fields=["list"])


def _take_off_list(mailbox: Mailbox, device_id: str, kind: str) -> bool:
    deleted, _ = MailboxDeviceId.objects.filter(
        mailbox=mailbox, device_key=device_id.lower(), list=kind
    ).delete()
    return bool(deleted)


@transaction.atomic
def set_mailbox(
    actor: Actor,
    mailbox: Mailbox,
    *,
    activesync_enabled: bool | None = None,
    display_name: str | None = None,
    add_allowed: list[str] = (),
    remove_allowed: list[str] = (),
    add_blocked: list[str] = (),
    remove_blocked: list[str] = (),
) -> Result:
    mailbox = Mailbox.objects.select_for_update().get(pk=mailbox.pk)
    add_allowed = [clean_device_id(d) for d in add_allowed]
    add_blocked = [clean_device_id(d) for d in add_blocked]
    remove_allowed = [clean_device_id(d) for d in remove_allowed]
    remove_blocked = [clean_device_id(d) for d in remove_blocked]
    both = {d.lower() for d in add_allowed} & {d.lower() for d in add_blocked}
    if both:
        raise ActionError(
            f"A DeviceId cannot be both allowed and blocked: {', '.join(sorted(both))}."
        )
    before = mailbox_snapshot(mailbox)
    if activesync_enabled is not None:
        mailbox.activesync_enabled = activesync_enabled
    if display_name is not None:
        mailbox.display_name = hostile.clean_line(display_name)[:256]
    mailbox.save()
    for device_id in remove_allowed:
        _take_off_list(mailbox, device_id, DeviceIdList.ALLOWED)
    for device_id in remove_blocked:
        _take_off_list(mailbox, device_id, DeviceIdList.BLOCKED)
    for device_id in add_allowed:
        put_on_list(mailbox, device_id, DeviceIdList.ALLOWED)
    for device_id in add_blocked:
        put_on_list(mailbox, device_id, DeviceIdList.BLOCKED)
    after = mailbox_snapshot(mailbox)
    audit = AuditAfter(
        actor,
        f"Mailbox {mailbox.alias} changed",
        action="mailbox.update",
        obj=mailbox,
        before=before,
        after=after,
    )
    transitions = reevaluate(MobileDevice.objects.filter(mailbox=mailbox), audit)
    return Result(mailbox, audit(), transitions)


def parse_language(value: str | None) -> str:
    """A supported language code for `value`; "" for "" or "none"; ActionError otherwise."""
    from ..languages import language_code, supported_codes

    value = (value or "").strip()
    if value.lower() in ("", "none"):
        return ""
    code = language_code(value)
    if not code:
        raise ActionError(
            f"Unsupported language {value!r}: use one of {', '.join(supported_codes())}, or none."
        )
    return code


@transaction.atomic
def set_mailbox_language(actor: Actor, mailbox: Mailbox, language: str | None) -> Result:
    """The admin's language for a mailbox's mails and phone notice ("" or "none": follow
    the directory, then the phone, then the organisation default: devices.languages)."""
    code = parse_language(language)
    before = {"language": mailbox.language}
    mailbox.language = code
    mailbox.save(update_fields=["language"])
    shown = code or "none (directory, phone or organisation default)"
    event = record(
        actor,
        action="mailbox.update",
        obj=mailbox,
        before=before,
        after={"language": code},
        message=f"Language of mailbox {mailbox.alias} set to {shown}",
    )
    return Result(mailbox, event)
