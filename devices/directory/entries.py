"""A directory entry as ECP reads it: pure functions of the LDAP attributes."""

from dataclasses import dataclass, field

from django.conf import settings

from ..languages import language_code

ACCOUNTDISABLE = 0x2  # Active Directory's userAccountControl bit
ATTRIBUTES = ("uid", "sAMAccountName", "mail", "displayName", "cn", "preferredLanguage")


@dataclass(frozen=True)
class Entry:
    dn: str
    username: str  # the ECP login and the mailbox alias: lower-case
    mail: str  # lower-case; "" when the entry has none
    display_name: str
    disabled: bool = False
    groups: frozenset[str] = field(default_factory=frozenset)  # lower-cased DNs
    # preferredLanguage as a supported language code ("" when none or unsupported).
    language: str = ""


def _first(attrs: dict, name: str) -> str:
    """The first value of an attribute (any case of its name), as text."""
    for key, values in attrs.items():
        if key.lower() == name.lower() and values:
            value = values[0]
            if isinstance(value, bytes):
                value = value.decode("utf-8", "replace")
            return str(value).strip()
    return ""


def attribute_names() -> list[str]:
    names = [*ATTRIBUTES, *settings.ECP_LDAP_USERNAME_ATTRIBUTES]
    disabled = settings.ECP_LDAP_DISABLED_ATTRIBUTE
    if disabled:
        names.append(disabled)
    return sorted(set(names), key=str.lower)


def is_disabled(attrs: dict) -> bool:
    """Disabled by the configured attribute (AD: the ACCOUNTDISABLE bit)."""
    name = settings.ECP_LDAP_DISABLED_ATTRIBUTE
    if not name:
        return False
    value = _first(attrs, name)
    wanted = settings.ECP_LDAP_DISABLED_VALUE
    if name.lower() == "useraccountcontrol" and not wanted:
        return value.isdigit() and bool(int(value) & ACCOUNTDISABLE)
    if not wanted:
        return bool(value)
    return value.lower() == wanted.lower()


def username_of(attrs: dict) -> str:
    for name in settings.ECP_LDAP_USERNAME_ATTRIBUTES:
        value = _first(attrs, name)
        if value:
            return value.lower()
    return ""


def default_domain(dn: str) -> str:
    """ECP_DEFAULT_MAIL_DOMAIN, else the entry's own dc= parts (dc=example,dc=org)."""
    if settings.ECP_DEFAULT_MAIL_DOMAIN:
        return settings.ECP_DEFAULT_MAIL_DOMAIN
    parts = [p.split("=", 1)[1] for p in dn.lower().split(",") if p.strip().startswith("dc=")]
    return ".".join(p.strip() for p in parts) or "localdomain"


def entry(dn: str, attrs: dict, groups=()) -> Entry | None:
    """The entry ECP keeps of a directory user; None when it names no login."""
    username = username_of(attrs)
    if not username:
        return None
    mail = _first(attrs, "mail").lower()
    if not mail:
        mail = f"{username}@{default_domain(dn)}"
    return Entry(
        dn=dn,
        username=username,
        mail=mail,
        display_name=(_first(attrs, "displayName") or _first(attrs, "cn") or username)[:256],
        disabled=is_disabled(attrs),
        groups=frozenset(g.lower() for g in groups),
        language=language_code(_first(attrs, "preferredLanguage")),
    )
