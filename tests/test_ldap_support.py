"""The slapd harness itself (tests/ldap_support.py), through python-ldap only."""

import socket
import time

import ldap
import pytest

from tests.conftest import need_service
from tests.ldap_support import (  # noqa: F401  (slapd_fixture: the slapd fixture)
    Slapd,
    available,
    paged_search,
    seed_ldif,
    seed_password,
    slapd_fixture,
)

# django-auth-ldap's and the default user filter, as the gate will fill it.
USER_FILTER = "(|(uid=%(user)s)(sAMAccountName=%(user)s)(mail=%(user)s))"


def find_user(server, login):
    with server.admin() as conn:
        escaped = ldap.filter.escape_filter_chars(login)
        return conn.search_s(
            server.users_base, ldap.SCOPE_SUBTREE, USER_FILTER % {"user": escaped}, ["uid"]
        )


def test_bind_as_a_user(slapd):
    assert slapd.uri.startswith("ldap://127.0.0.1:")
    assert slapd.bind(slapd.user_dn("alice"), "alice-pw")
    conn = slapd.connect()
    with pytest.raises(ldap.INVALID_CREDENTIALS):
        conn.simple_bind_s(slapd.user_dn("alice"), "wrong")
    with pytest.raises(ldap.INVALID_CREDENTIALS):
        conn.simple_bind_s(slapd.user_dn("nobody"), "alice-pw")
    # The password is stored hashed, and nobody but the rootdn reads it.
    [(_, attrs)] = slapd.search(slapd.users_base, "(uid=alice)", ["userPassword"])
    assert attrs["userPassword"][0].startswith("{SSHA}")
    conn.simple_bind_s(slapd.reader_dn, slapd.reader_password)
    [(_, attrs)] = conn.search_s(slapd.users_base, ldap.SCOPE_SUBTREE, "(uid=alice)")
    assert "userPassword" not in attrs and attrs["mail"] == [b"alice@example.org"]


def test_operations_are_logged(slapd):
    before = len(slapd.operations())
    assert not slapd.bind(slapd.user_dn("bob"), "wrong")
    slapd.search(slapd.users_base, "(uid=bob)")
    assert slapd.binds()[-2:] == [slapd.user_dn("bob"), slapd.bind_dn]
    verbs = [verb for verb, _ in slapd.operations()[before:]]
    assert verbs == ["BIND", "BIND", "SRCH"]


def test_default_tree_and_filters(slapd):
    users = {
        a["uid"][0]: a for _, a in slapd.search(slapd.users_base, "(objectClass=inetOrgPerson)")
    }
    assert set(users) == {"alice", "bob", "carol", "dave"}
    assert users["alice"]["displayName"] == ["Alice Example"]
    assert "mail" not in users["dave"]
    disabled = slapd.search(slapd.users_base, "(employeeType=disabled)", ["uid"])
    assert [a["uid"] for _, a in disabled] == [["carol"]]
    # sAMAccountName is in no loaded schema: slapd evaluates that branch as Undefined and
    # the OR still matches on uid or mail.
    assert [dn for dn, _ in find_user(slapd, "alice")] == [slapd.user_dn("alice")]
    assert [dn for dn, _ in find_user(slapd, "ALICE@example.org")] == [slapd.user_dn("alice")]
    assert find_user(slapd, "*)(uid=*") == []  # escaped: no injection
    every_person = "(&(objectClass=person)" + USER_FILTER.replace("%(user)s", "*") + ")"
    found = {a["uid"][0] for _, a in slapd.search(slapd.suffix, every_person, ["uid"])}
    assert found == {"alice", "bob", "carol", "dave"}  # not cn=reader, not the groups
    groups = {
        a["cn"][0]: a["member"]
        for _, a in slapd.search(slapd.groups_base, "(objectClass=groupOfNames)")
    }
    assert groups == {
        "ecp-admins": [slapd.user_dn("alice")],
        "ecp-helpdesk": [slapd.user_dn("bob")],
        "sales": [slapd.user_dn("bob"), slapd.user_dn("dave")],
    }
    in_sales = f"(member={slapd.user_dn('dave')})"
    assert [a["cn"] for _, a in slapd.search(slapd.groups_base, in_sales, ["cn"])] == [["sales"]]


def test_live_changes(slapd):
    slapd.add_user("erin", "erin-pw", mail="erin@example.org", display_name="Erin Ä", language="de")
    assert slapd.bind(slapd.user_dn("erin"), "erin-pw")
    [(_, erin)] = slapd.search(slapd.users_base, "(uid=erin)")
    assert erin["displayName"] == ["Erin Ä"] and erin["preferredLanguage"] == ["de"]
    slapd.set_disabled("erin")
    assert slapd.search(slapd.users_base, "(&(uid=erin)(employeeType=disabled))")
    slapd.set_disabled("erin", False)
    assert not slapd.search(slapd.users_base, "(&(uid=erin)(employeeType=disabled))")
    slapd.modify(slapd.user_dn("erin"), "mail", "erin.new@example.org")
    slapd.modify(slapd.user_dn("erin"), "displayName", None)
    [(_, erin)] = slapd.search(slapd.users_base, "(uid=erin)")
    assert erin["mail"] == ["erin.new@example.org"] and "displayName" not in erin
    slapd.add_group("support", ["erin"])
    slapd.add_member("support", "alice")
    slapd.remove_member("support", "erin")
    [(_, support)] = slapd.search(slapd.groups_base, "(cn=support)")
    assert support["member"] == [slapd.user_dn("alice")]
    with pytest.raises(ldap.OBJECT_CLASS_VIOLATION):
        slapd.remove_member("support", "alice")  # groupOfNames keeps one member
    slapd.delete_user("bob")
    assert not slapd.search(slapd.users_base, "(uid=bob)")
    [(_, sales)] = slapd.search(slapd.groups_base, "(cn=sales)")
    assert sales["member"] == [slapd.user_dn("dave")]


def test_stopped_then_started_again(slapd):
    slapd.add_user("erin", "erin-pw")
    slapd.stop()
    with pytest.raises(ldap.SERVER_DOWN):
        slapd.connect().simple_bind_s(slapd.user_dn("alice"), "alice-pw")
    slapd.start()
    assert slapd.bind(slapd.user_dn("erin"), "erin-pw")  # same data, same port


def test_frozen_accepts_and_never_answers(slapd):
    slapd.freeze()
    try:
        with socket.create_connection(("127.0.0.1", slapd.port), timeout=2):
            pass  # the kernel still accepts
        conn = slapd.connect(timeout=1)
        started = time.monotonic()
        with pytest.raises((ldap.TIMEOUT, ldap.SERVER_DOWN)):
            conn.simple_bind_s(slapd.user_dn("alice"), "alice-pw")
        assert time.monotonic() - started < 5
    finally:
        slapd.thaw()
    assert slapd.bind(slapd.user_dn("alice"), "alice-pw")


def test_paged_search_over_seeded_users(tmp_path):
    need_service("slapd", available(), "install Debian's slapd package (and ldap-utils)")
    with Slapd(tmp_path, seed=seed_ldif(1200, 30)) as server:
        assert server.seed_seconds < 30
        assert server.bind(server.user_dn("user01200"), seed_password(1200))
        conn = server.connect()
        conn.simple_bind_s(server.reader_dn, server.reader_password)
        people = "(objectClass=inetOrgPerson)"
        # The service account is under the size limit (500) unpaged, as in AD...
        with pytest.raises(ldap.SIZELIMIT_EXCEEDED):
            conn.search_s(server.users_base, ldap.SCOPE_SUBTREE, people, ["uid"])
        # ...and gets everything page by page.
        uids = {a["uid"][0] for _, a in paged_search(conn, server.users_base, people, ["uid"])}
        assert len(uids) == 1200 and b"user00001" in uids and b"user01200" in uids
        groups = list(paged_search(conn, server.groups_base, "(objectClass=groupOfNames)"))
        assert len(groups) == 30
        per_user = {}
        for _, attrs in groups:
            for member in attrs["member"]:
                per_user[member] = per_user.get(member, 0) + 1
        assert len(per_user) == 1200 and set(per_user.values()) == {1, 2, 3}
        conn.unbind_s()
