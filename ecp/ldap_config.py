"""The directory (LDAP / Active Directory), configured as django-auth-ldap configures it.

Setting AUTH_LDAP_SERVER_URI turns LDAP on: panel sign-in accepts directory
users, `eas sync-directory` and its beat task read the directory, and
ECP_GATE_CREDENTIALS=ldap lets the gate bind as the device's user. The names
are django-auth-ldap's own (README, "Directory and mail-server sign-in"), so an
operator can copy that library's documentation; ECP adds only what it needs on
top (ECP_LDAP_*). ecp.settings imports this only when LDAP is on, so python-ldap
is not loaded otherwise; tests build the same settings with `ldap_settings()`.
"""

import ldap
from django_auth_ldap.config import (
    ActiveDirectoryGroupType,
    GroupOfNamesType,
    GroupOfUniqueNamesType,
    LDAPSearch,
    NestedActiveDirectoryGroupType,
    PosixGroupType,
)

from .env import ConfigError

DEFAULT_USER_FILTER = "(|(uid=%(user)s)(sAMAccountName=%(user)s)(mail=%(user)s))"
GROUP_TYPES = {
    "groupOfNames": (GroupOfNamesType, "(objectClass=groupOfNames)"),
    "groupOfUniqueNames": (GroupOfUniqueNamesType, "(objectClass=groupOfUniqueNames)"),
    "posixGroup": (PosixGroupType, "(objectClass=posixGroup)"),
    "activeDirectory": (ActiveDirectoryGroupType, "(objectClass=group)"),
    "nestedActiveDirectory": (NestedActiveDirectoryGroupType, "(objectClass=group)"),
}


def ldap_settings(env) -> dict:
    """The settings for the variables in `env` (os.environ, or a test's dict)."""

    def get(name: str, default: str = "") -> str:
        return (env.get(name) or default).strip()

    def number(name: str, default: int) -> int:
        raw = get(name, str(default))
        if not raw.isdigit():
            raise ConfigError(f"{name} must be a whole number, not {raw!r}")
        return int(raw)

    user_base = get("AUTH_LDAP_USER_SEARCH_BASE")
    if not user_base:
        raise ConfigError("AUTH_LDAP_USER_SEARCH_BASE must be set with AUTH_LDAP_SERVER_URI")
    user_filter = get("AUTH_LDAP_USER_FILTER", DEFAULT_USER_FILTER)
    if "%(user)s" not in user_filter:
        raise ConfigError("AUTH_LDAP_USER_FILTER must contain %(user)s")
    start_tls = get("AUTH_LDAP_START_TLS", "false").lower()
    if start_tls not in ("true", "false"):
        raise ConfigError(f"AUTH_LDAP_START_TLS must be true or false, not {start_tls!r}")
    group_type = get("AUTH_LDAP_GROUP_TYPE", "groupOfNames")
    if group_type not in GROUP_TYPES:
        raise ConfigError(f"AUTH_LDAP_GROUP_TYPE must be one of {', '.join(GROUP_TYPES)}")
    group_class, group_filter = GROUP_TYPES[group_type]
    group_base = get("AUTH_LDAP_GROUP_SEARCH_BASE")
    group_filter = get("AUTH_LDAP_GROUP_FILTER", group_filter)
    timeout = number("ECP_LDAP_TIMEOUT", 5)
    found = {
        "AUTH_LDAP_SERVER_URI": get("AUTH_LDAP_SERVER_URI"),
        "AUTH_LDAP_BIND_DN": get("AUTH_LDAP_BIND_DN"),
        "AUTH_LDAP_BIND_PASSWORD": env.get("AUTH_LDAP_BIND_PASSWORD", ""),
        "AUTH_LDAP_START_TLS": start_tls == "true",
        "AUTH_LDAP_USER_SEARCH_BASE": user_base,
        "AUTH_LDAP_USER_FILTER": user_filter,
        "AUTH_LDAP_USER_SEARCH": LDAPSearch(user_base, ldap.SCOPE_SUBTREE, user_filter),
        "AUTH_LDAP_USER_ATTR_MAP": {"first_name": "givenName", "last_name": "sn", "email": "mail"},
        "AUTH_LDAP_ALWAYS_UPDATE_USER": True,
        "AUTH_LDAP_GROUP_SEARCH_BASE": group_base,
        "AUTH_LDAP_GROUP_FILTER": group_filter,
        # A directory that does not answer must not hold a device's request for long:
        # the gate answers 503 after this, and panel sign-in says so.
        "ECP_LDAP_TIMEOUT": timeout,
        "AUTH_LDAP_CONNECTION_OPTIONS": {
            ldap.OPT_NETWORK_TIMEOUT: timeout,
            ldap.OPT_TIMEOUT: timeout,
            ldap.OPT_REFERRALS: 0,  # Active Directory's referrals: not followed
        },
        "AUTH_LDAP_CACHE_TIMEOUT": 0,  # a removed admin loses the role at the next sign-in
        # ECP's own: roles from groups (DNs), the login name, the account-disabled marker.
        "ECP_LDAP_ADMIN_GROUP": get("ECP_LDAP_ADMIN_GROUP").lower(),
        "ECP_LDAP_HELPDESK_GROUP": get("ECP_LDAP_HELPDESK_GROUP").lower(),
        # The attributes that name the ECP login and the mailbox alias (the first present).
        "ECP_LDAP_USERNAME_ATTRIBUTES": [
            a.strip()
            for a in get("ECP_LDAP_USERNAME_ATTRIBUTES", "uid,sAMAccountName").split(",")
            if a.strip()
        ],
        # Active Directory: userAccountControl's ACCOUNTDISABLE bit (2). Elsewhere an
        # attribute and the value that means "disabled" (employeeType / disabled), or
        # an attribute whose mere presence does (pwdAccountLockedTime, no value).
        "ECP_LDAP_DISABLED_ATTRIBUTE": get("ECP_LDAP_DISABLED_ATTRIBUTE", "userAccountControl"),
        "ECP_LDAP_DISABLED_VALUE": get("ECP_LDAP_DISABLED_VALUE"),
        # What sync-directory reads: every person the sign-in filter finds for some login
        # (Active Directory: (&(objectCategory=person)(objectClass=user)) leaves computers out).
        "ECP_LDAP_SYNC_FILTER": get(
            "ECP_LDAP_SYNC_FILTER",
            "(&(objectClass=person)" + user_filter.replace("%(user)s", "*") + ")",
        ),
        "ECP_DIRECTORY_SYNC_MINUTES": number("ECP_DIRECTORY_SYNC_MINUTES", 60),
        "ECP_DIRECTORY_MAX_DISABLE_PERCENT": number("ECP_DIRECTORY_MAX_DISABLE_PERCENT", 10),
    }
    if group_base:
        found["AUTH_LDAP_GROUP_SEARCH"] = LDAPSearch(group_base, ldap.SCOPE_SUBTREE, group_filter)
        found["AUTH_LDAP_GROUP_TYPE"] = group_class()
    return found
