"""Every user and group of the directory, for `eas sync-directory`.

Bound with AUTH_LDAP_BIND_DN, searched page by page (the paged-results
control: Active Directory returns at most 1,000 entries per search without it,
OpenLDAP its sizelimit). Any LDAP error raises DirectoryUnavailable before
anything is changed.
"""

from dataclasses import replace

import ldap
from django.conf import settings
from ldap.controls import SimplePagedResultsControl

from . import DirectoryUnavailable, entries

PAGE_SIZE = 500
MEMBER_ATTRIBUTES = ("member", "uniqueMember", "memberUid")


def connect():
    conn = ldap.initialize(settings.AUTH_LDAP_SERVER_URI, bytes_mode=False)
    for option, value in settings.AUTH_LDAP_CONNECTION_OPTIONS.items():
        conn.set_option(option, value)
    if settings.AUTH_LDAP_START_TLS:
        conn.start_tls_s()
    conn.simple_bind_s(settings.AUTH_LDAP_BIND_DN, settings.AUTH_LDAP_BIND_PASSWORD)
    return conn


def paged(conn, base: str, filterstr: str, attrlist: list[str]):
    """(dn, attrs) of every entry, one page at a time."""
    control = SimplePagedResultsControl(True, size=PAGE_SIZE, cookie="")
    while True:
        msgid = conn.search_ext(
            base, ldap.SCOPE_SUBTREE, filterstr, attrlist, serverctrls=[control]
        )
        _, results, _, controls = conn.result3(msgid)
        for dn, attrs in results:
            if dn is not None:  # search references
                yield dn, attrs
        cookie = next(
            (c.cookie for c in controls if c.controlType == SimplePagedResultsControl.controlType),
            b"",
        )
        if not cookie:
            return
        control.cookie = cookie


def _text(values) -> list[str]:
    return [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in values]


def read_all() -> tuple[list[entries.Entry], dict[str, str]]:
    """Every user entry (with its groups), and every group (lower-cased DN -> DN)."""
    try:
        conn = connect()
        try:
            users = list(
                paged(
                    conn,
                    settings.AUTH_LDAP_USER_SEARCH_BASE,
                    settings.ECP_LDAP_SYNC_FILTER,
                    entries.attribute_names(),
                )
            )
            groups = []
            if settings.AUTH_LDAP_GROUP_SEARCH_BASE:
                groups = list(
                    paged(
                        conn,
                        settings.AUTH_LDAP_GROUP_SEARCH_BASE,
                        settings.AUTH_LDAP_GROUP_FILTER,
                        ["cn", *MEMBER_ATTRIBUTES],
                    )
                )
        finally:
            conn.unbind_s()
    except ldap.LDAPError as exc:
        raise DirectoryUnavailable(f"directory unavailable: {_describe(exc)}") from exc

    by_member: dict[str, set[str]] = {}  # lower-cased member DN or uid -> group DNs
    group_dns = {}
    for dn, attrs in groups:
        group_dns[dn.lower()] = dn
        for name, values in attrs.items():
            if name.lower() in ("member", "uniquemember", "memberuid"):
                for member in _text(values):
                    by_member.setdefault(member.lower(), set()).add(dn.lower())
    found = []
    for dn, attrs in users:
        user_groups = set(by_member.get(dn.lower(), ()))
        entry = entries.entry(dn, attrs)
        if entry is None:
            continue
        user_groups |= by_member.get(entry.username, set())
        found.append(replace(entry, groups=frozenset(user_groups)))
    return found, group_dns


def _describe(exc: ldap.LDAPError) -> str:
    info = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
    return f"{type(exc).__name__}: {info.get('desc', '')} {info.get('info', '')}".strip()
