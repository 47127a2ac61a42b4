"""Which language and time zone a mailbox's mails and phone notice use.

A mailbox's language comes from, first found wins:
1. the admin (`eas set-mailbox --language`, the mailbox page): Mailbox.language;
2. the directory's preferredLanguage (`eas sync-directory`, sign-in): directory_language;
3. the phone's DeviceOSLanguage (Settings / Provision DeviceInformation): device_language;
4. the organisation's default language (OrgSettings.default_language).
Each source keeps its own column, so that one going away uncovers the next.
Values that name no supported language are not stored: they count as absent.
"""

import zoneinfo

from django.conf import settings
from django.utils.translation import get_supported_language_variant

# DeviceOSLanguage is free text: phones send a tag ("de", "de-DE") or a name.
_NAMES = {
    "english": "en",
    "german": "de",
    "deutsch": "de",
    "french": "fr",
    "français": "fr",
    "francais": "fr",
    "spanish": "es",
    "español": "es",
    "espanol": "es",
    "castellano": "es",
}


def supported_codes() -> list[str]:
    return [code for code, _name in settings.LANGUAGES]


def language_code(value: str | None) -> str:
    """The supported language a tag, a list of tags or a language's name names; "" if none.

    "de-DE", "de_AT", "DE", "German", "Deutsch" and "de-CH, en;q=0.8" (RFC 2798's
    preferredLanguage takes Accept-Language's form) all give "de".
    """
    if not value:
        return ""
    first = str(value).split(",")[0].split(";")[0].strip().lower().replace("_", "-")
    if not first:
        return ""
    first = _NAMES.get(first, first)
    try:
        return get_supported_language_variant(first)
    except LookupError:
        return ""


def mailbox_language(mailbox, org) -> str:
    """The language of a mailbox's mails and phone notice (see the module's docstring)."""
    for value in (mailbox.language, mailbox.directory_language, mailbox.device_language):
        code = language_code(value)
        if code:
            return code
    return org_language(org)


def org_language(org) -> str:
    """The organisation's default language; an unsupported one gives settings' default."""
    return language_code(org.default_language) or settings.LANGUAGE_CODE


def valid_time_zone(name: str | None) -> str:
    """An IANA zone name as given if it exists, else ""."""
    name = (name or "").strip()
    if not name or len(name) > 64 or name not in available_time_zones():
        return ""
    return name


_ZONES: frozenset[str] | None = None


def available_time_zones() -> frozenset[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = frozenset(zoneinfo.available_timezones()) | {"UTC"}
    return _ZONES


def org_time_zone(org) -> str:
    return valid_time_zone(org.time_zone) or "UTC"
