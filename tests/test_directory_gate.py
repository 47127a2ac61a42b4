"""The gate in ldap mode against a real slapd: no password typed into ECP (issue 14)."""

from unittest import mock

import ldap
import pytest
from django.contrib.auth import get_user_model

from devices import actions
from devices.gate import credentials
from devices.models import AuditEvent, Mailbox, MobileDevice
from tests.directory_support import sync_request

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("_fresh_gate")]


def state(response):
    return (
        response.status_code,
        response.get("X-EAS-Access-State"),
        response.get("X-EAS-Access-Reason"),
    )


def test_a_right_password_makes_the_mailbox_from_the_directory(directory):
    response = sync_request("alice", "alice-pw")
    assert state(response) == (200, "Allowed", "Global")
    mailbox = Mailbox.objects.get()
    assert (mailbox.alias, mailbox.primary_smtp_address, mailbox.display_name) == (
        "alice",
        "alice@example.org",
        "Alice Example",
    )
    assert mailbox.directory_dn == directory.user_dn("alice")
    assert mailbox.user.get_username() == "alice"
    assert not mailbox.user.has_usable_password()  # the directory keeps the password
    created = AuditEvent.objects.get(action="mailbox.create")
    assert created.source == "directory"
    assert MobileDevice.objects.get().mailbox == mailbox


def test_the_org_default_decides_a_new_directory_users_device(directory, cli_actor):
    actions.set_org_settings(cli_actor, default_access_level="Quarantine")
    response = sync_request("bob", "bob-pw", device_id="BOBPHONE")
    # Waiting for its model, and asked to provision first (HTTP 449 before EAS 14.0).
    assert state(response) == (449, "DeviceDiscovery", "Global")


def test_a_wrong_password_is_401_and_records_nothing(directory):
    response = sync_request("alice", "not-her-password")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic")
    assert not Mailbox.objects.exists()
    assert not MobileDevice.objects.exists()
    assert not get_user_model().objects.exists()


def test_an_unknown_login_is_401(directory):
    assert sync_request("mallory", "alice-pw").status_code == 401
    assert not Mailbox.objects.exists()


def test_a_disabled_user_is_refused_with_the_reason_account_disabled(directory):
    response = sync_request("carol", "carol-pw", device_id="CAROLPHONE")
    assert state(response) == (403, "Blocked", "AccountDisabled")
    assert Mailbox.objects.get().directory_disabled


def test_a_user_disabled_later_loses_access_at_the_next_check(directory, settings):
    assert state(sync_request("alice", "alice-pw"))[0] == 200
    directory.set_disabled("alice")
    credentials._memo.clear()
    from django.core.cache import cache

    cache.clear()  # past the credential cache's TTL
    assert state(sync_request("alice", "alice-pw")) == (403, "Blocked", "AccountDisabled")
    device = MobileDevice.objects.get()
    assert device.access_state_reason == "AccountDisabled"


@pytest.mark.parametrize(
    "login", ["alice", "ALICE", "EXAMPLE\\alice", "example\\Alice", "alice@example.org"]
)
def test_every_spelling_of_one_account_is_one_mailbox(directory, login):
    sync_request("alice", "alice-pw")
    response = sync_request(login, "alice-pw")
    assert response.status_code == 200
    assert Mailbox.objects.count() == 1
    assert get_user_model().objects.count() == 1
    assert MobileDevice.objects.count() == 1


@pytest.mark.parametrize("login", ["*)(uid=*", "*", "alice)(|(uid=*", "al*"])
def test_filter_metacharacters_in_a_login_are_escaped(directory, login):
    # Were the login put into the filter raw, these would match alice (or everyone),
    # and her password would let them in.
    response = sync_request(login, "alice-pw")
    assert response.status_code == 401
    assert not Mailbox.objects.exists()


def test_the_directory_down_is_503_never_401(directory):
    directory.stop()
    response = sync_request("alice", "alice-pw")
    assert response.status_code == 503
    assert "directory unavailable" in response.content.decode()
    assert response["Retry-After"]
    assert not Mailbox.objects.exists()


def test_a_directory_that_does_not_answer_is_503_after_the_timeout(directory):
    directory.freeze()
    try:
        response = sync_request("alice", "alice-pw")
    finally:
        directory.thaw()
    assert response.status_code == 503


def test_a_cached_pair_makes_no_directory_call(directory):
    assert sync_request("alice", "alice-pw").status_code == 200
    directory.stop()  # any directory call would now fail with 503
    with mock.patch.object(ldap, "initialize", side_effect=AssertionError("no LDAP call")):
        response = sync_request("alice", "alice-pw")
    assert state(response) == (200, "Allowed", "Global")


def test_an_imported_mailbox_works_as_soon_as_its_login_verifies(directory, cli_actor):
    imported = actions.create_mailbox(
        cli_actor, alias="bob", email="bob@example.org", display_name="Bob (HR import)"
    ).obj
    assert imported.user is None
    assert sync_request("bob", "bob-pw").status_code == 200
    imported.refresh_from_db()
    assert imported.user.get_username() == "bob"
    assert imported.directory_dn == directory.user_dn("bob")
    assert Mailbox.objects.count() == 1


def test_an_entry_without_mail_gets_an_address_in_its_domain(directory):
    assert sync_request("dave", "dave-pw").status_code == 200
    assert Mailbox.objects.get().primary_smtp_address == "dave@example.org"


def test_the_auth_request_endpoint_binds_too(directory):
    from django.test import Client

    from tests.directory_support import basic

    response = Client().get(
        "/eas/auth",
        HTTP_X_ORIGINAL_URI="/Microsoft-Server-ActiveSync?Cmd=Sync&DeviceId=NGX1&DeviceType=iPhone",
        HTTP_X_ORIGINAL_METHOD="POST",
        HTTP_AUTHORIZATION=basic("bob", "bob-pw"),
        HTTP_MS_ASPROTOCOLVERSION="14.1",
    )
    assert state(response) == (200, "Allowed", "Global")
    bad = Client().get(
        "/eas/auth",
        HTTP_X_ORIGINAL_URI="/Microsoft-Server-ActiveSync?Cmd=Sync&DeviceId=NGX1&DeviceType=iPhone",
        HTTP_X_ORIGINAL_METHOD="POST",
        HTTP_AUTHORIZATION=basic("bob", "wrong"),
        HTTP_MS_ASPROTOCOLVERSION="14.1",
    )
    assert bad.status_code == 401


def test_a_known_device_costs_one_query_in_ldap_mode_too(directory, django_assert_num_queries):
    assert sync_request("alice", "alice-pw").status_code == 200
    directory.stop()
    with django_assert_num_queries(1):  # login, mailbox and device in one; as in local mode
        assert sync_request("alice", "alice-pw").status_code == 200


def test_a_disabled_users_phone_on_eas_14_gets_status_129(directory):
    from devices.eas import wbxml

    response = sync_request("carol", "carol-pw", device_id="CAROLPHONE", version="14.1")
    assert state(response) == (200, "Blocked", "AccountDisabled")
    assert response["X-MS-ASThrottle"] == "AccountDisabled"
    assert "129" in str(wbxml.decode(response.content))
