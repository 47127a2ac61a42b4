"""Organisation settings (Set-ActiveSyncOrganizationSettings)."""

from collections import Counter

from django.db import transaction

from ..audit import Actor
from ..languages import supported_codes, valid_time_zone
from ..models import AdminMailMode, MobileDevice, OrgSettings, SelfApproval
from .base import (
    ActionError,
    AuditAfter,
    Result,
    choice,
    clean_email,
    org_snapshot,
    parse_access_level,
)
from .mailboxes import parse_language
from .reevaluation import DevicePreview, preview, preview_devices, reevaluate

UNCHANGED = object()


def _language(value: str) -> str:
    code = parse_language(value)
    if not code:
        raise ActionError(f"Give a language: one of {', '.join(supported_codes())}.")
    return code


@transaction.atomic
def set_org_settings(
    actor: Actor,
    *,
    default_access_level: str | None = None,
    admin_mail_recipients: list[str] | None = None,
    user_mail_insert: str | None = None,
    discovery_window_minutes: int | None = None,
    allow_health_probes: bool | None = None,
    send_user_mail: bool | None = None,
    admin_mail_mode: str | None = None,
    admin_digest_minutes: int | None = None,
    new_device_alert: bool | None = None,
    purge_quarantined_after_days: int | None | object = UNCHANGED,
    self_approval: str | None = None,
    user_mail_insert_language: str | None = None,
    user_mail_inserts: dict[str, str] | None = None,
    default_language: str | None = None,
    time_zone: str | None = None,
) -> Result:
    """Change the given settings. `user_mail_insert` with `user_mail_insert_language`
    sets that language's insert ("" removes it); `user_mail_inserts` replaces them all."""
    org = OrgSettings.objects.select_for_update().get_or_create(pk=1)[0]
    before = org_snapshot(org)
    if default_access_level is not None:
        org.default_access_level = parse_access_level(default_access_level)
    if admin_mail_recipients is not None:
        seen = []
        for address in admin_mail_recipients:
            address = clean_email(address)
            if address.lower() not in (a.lower() for a in seen):
                seen.append(address)
        org.admin_mail_recipients = seen
    if user_mail_insert is not None:
        if len(user_mail_insert) > 4000:
            raise ActionError("The user mail insert is limited to 4,000 characters.")
        if user_mail_insert_language:
            code = _language(user_mail_insert_language)
            inserts = dict(org.user_mail_inserts or {})
            if user_mail_insert:
                inserts[code] = user_mail_insert
            else:
                inserts.pop(code, None)
            org.user_mail_inserts = inserts
        else:
            org.user_mail_insert = user_mail_insert
    if user_mail_inserts is not None:
        inserts = {}
        for language, text in user_mail_inserts.items():
            if len(text) > 4000:
                raise ActionError("The user mail insert is limited to 4,000 characters.")
            if text:
                inserts[_language(language)] = text
        org.user_mail_inserts = inserts
    if default_language is not None:
        org.default_language = _language(default_language)
    if time_zone is not None:
        zone = valid_time_zone(time_zone)
        if not zone:
            raise ActionError(
                f"Unknown time zone {time_zone!r}: give an IANA name such as Europe/Berlin or UTC."
            )
        org.time_zone = zone
    if discovery_window_minutes is not None:
        if not 0 <= discovery_window_minutes <= 1440:
            raise ActionError("The discovery window must be between 0 and 1440 minutes.")
        org.discovery_window_minutes = discovery_window_minutes
    for name, value in (
        ("allow_health_probes", allow_health_probes),
        ("send_user_mail", send_user_mail),
        ("new_device_alert", new_device_alert),
    ):
        if value is not None:
            setattr(org, name, bool(value))
    if admin_mail_mode is not None:
        org.admin_mail_mode = choice(admin_mail_mode, AdminMailMode, "admin mail mode")
    if admin_digest_minutes is not None:
        if not 1 <= admin_digest_minutes <= 1440:
            raise ActionError("The digest interval must be between 1 and 1440 minutes.")
        org.admin_digest_minutes = admin_digest_minutes
    if purge_quarantined_after_days is not UNCHANGED:  # None turns the purge off
        days = purge_quarantined_after_days
        if days is not None and not 1 <= days <= 3650:
            raise ActionError("Purge after 1 to 3650 days, or never.")
        org.purge_quarantined_after_days = days
    if self_approval is not None:
        org.self_approval = choice(self_approval, SelfApproval, "self-approval setting")
    org.save()
    after = org_snapshot(org)
    audit = AuditAfter(
        actor,
        "Organisation settings changed",
        action="org_settings.update",
        obj=org,
        before=before,
        after=after,
    )
    transitions = []
    decisive = ("default_access_level", "discovery_window_minutes")
    if any(before[k] != after[k] for k in decisive):
        transitions = reevaluate(MobileDevice.objects.all(), audit, org=org)
    return Result(org, audit(), transitions)


def preview_org_settings(*, default_access_level: str | None = None) -> Counter:
    org = OrgSettings.load()
    if default_access_level is not None:
        org.default_access_level = parse_access_level(default_access_level)
    return preview(MobileDevice.objects.all(), org=org)


def preview_org_settings_devices(*, default_access_level: str, first: int = 20) -> DevicePreview:
    """preview_org_settings, naming the devices the new default would move."""
    org = OrgSettings.load()
    org.default_access_level = parse_access_level(default_access_level)
    return preview_devices(MobileDevice.objects.all(), org=org, first=first)
