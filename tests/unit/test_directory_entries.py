"""A directory entry as ECP reads it: login name, address, disabled (pure, no LDAP)."""

import pytest

from devices.directory import entries


@pytest.fixture
def ad(settings):
    settings.ECP_LDAP_USERNAME_ATTRIBUTES = ["uid", "sAMAccountName"]
    settings.ECP_LDAP_DISABLED_ATTRIBUTE = "userAccountControl"
    settings.ECP_LDAP_DISABLED_VALUE = ""
    settings.ECP_DEFAULT_MAIL_DOMAIN = ""


@pytest.mark.parametrize(
    ("uac", "disabled"),
    [("512", False), ("514", True), ("66048", False), ("66050", True), ("", False), ("x", False)],
)
def test_active_directorys_accountdisable_bit(ad, uac, disabled):
    attrs = {"sAMAccountName": [b"JDoe"], "userAccountControl": [uac.encode()]}
    assert entries.is_disabled(attrs) is disabled


def test_an_attribute_and_a_value_mark_a_disabled_account(ad, settings):
    settings.ECP_LDAP_DISABLED_ATTRIBUTE = "employeeType"
    settings.ECP_LDAP_DISABLED_VALUE = "disabled"
    assert entries.is_disabled({"employeeType": [b"Disabled"]})
    assert not entries.is_disabled({"employeeType": [b"staff"]})
    assert not entries.is_disabled({})


def test_an_attributes_presence_can_mark_it(ad, settings):
    settings.ECP_LDAP_DISABLED_ATTRIBUTE = "pwdAccountLockedTime"
    assert entries.is_disabled({"pwdAccountLockedTime": [b"000001010000Z"]})
    assert not entries.is_disabled({"cn": [b"x"]})


def test_the_login_is_the_first_username_attribute_lower_cased(ad):
    entry = entries.entry(
        "CN=John Doe,OU=Staff,DC=corp,DC=example,DC=org",
        {"sAMAccountName": [b"JDoe"], "mail": [b"John.Doe@Example.org"], "cn": [b"John Doe"]},
    )
    assert (entry.username, entry.mail, entry.display_name) == (
        "jdoe",
        "john.doe@example.org",
        "John Doe",
    )


def test_an_entry_without_mail_gets_its_own_domain(ad, settings):
    entry = entries.entry("uid=dave,ou=people,dc=example,dc=org", {"uid": ["dave"]})
    assert entry.mail == "dave@example.org"
    settings.ECP_DEFAULT_MAIL_DOMAIN = "mail.example.net"
    entry = entries.entry("uid=dave,ou=people,dc=example,dc=org", {"uid": ["dave"]})
    assert entry.mail == "dave@mail.example.net"


def test_an_entry_that_names_no_login_is_left_out(ad):
    assert entries.entry("cn=printer,dc=example,dc=org", {"cn": [b"printer"]}) is None
