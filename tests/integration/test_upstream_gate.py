"""The gate in upstream mode: real nginx with auth_basic decides the password (issue 14).

ECP sends an OPTIONS with the device's own Authorization to ECP_GATE_UPSTREAM_URL:
200 is a right password, 401/403 a wrong one, anything else (or silence) means
ECP cannot decide and the gate fails closed with 503.
"""

from unittest import mock

import pytest

from devices.directory import upstream
from devices.models import AuditEvent, Mailbox, MobileDevice
from tests.directory_support import sync_request

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("_fresh_gate"),
]


@pytest.fixture
def gate_upstream(settings, upstream_nginx):
    settings.ECP_GATE_CREDENTIALS = "upstream"
    settings.ECP_GATE_UPSTREAM_URL = upstream_nginx.url
    settings.ECP_GATE_UPSTREAM_TIMEOUT = 2
    settings.ECP_DEFAULT_MAIL_DOMAIN = "example.org"
    return upstream_nginx


def state(response):
    return (
        response.status_code,
        response.get("X-EAS-Access-State"),
        response.get("X-EAS-Access-Reason"),
    )


def test_200_from_upstream_lets_the_device_in_with_a_new_mailbox(gate_upstream):
    response = sync_request("alice", "alice-pw")
    assert state(response) == (200, "Allowed", "Global")
    mailbox = Mailbox.objects.get()
    assert (mailbox.alias, mailbox.primary_smtp_address) == ("alice", "alice@example.org")
    assert not mailbox.user.has_usable_password()
    asked = gate_upstream.requests()
    assert [(r["method"], r["user"], r["status"]) for r in asked] == [("OPTIONS", "alice", 200)]
    assert AuditEvent.objects.get(action="mailbox.create").source == "directory"


def test_a_login_with_an_address_keeps_that_address(gate_upstream):
    gate_upstream.set_user("bob@example.net", "bob-pw")
    assert sync_request("bob@example.net", "bob-pw").status_code == 200
    assert Mailbox.objects.get().primary_smtp_address == "bob@example.net"


def test_an_existing_mailbox_without_a_login_is_linked(gate_upstream, cli_actor):
    from devices import actions

    actions.create_mailbox(cli_actor, alias="alice", email="alice@example.org")
    assert sync_request("alice", "alice-pw").status_code == 200
    mailbox = Mailbox.objects.get()
    assert mailbox.user.get_username() == "alice"


def test_401_from_upstream_is_401_and_records_nothing(gate_upstream):
    response = sync_request("alice", "wrong")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic")
    assert not Mailbox.objects.exists()
    assert not MobileDevice.objects.exists()


def test_403_from_upstream_is_a_wrong_password(gate_upstream, settings):
    settings.ECP_GATE_UPSTREAM_URL = gate_upstream.url.replace(
        "/Microsoft-Server-ActiveSync", "/forbidden/Microsoft-Server-ActiveSync"
    )
    assert sync_request("alice", "alice-pw").status_code == 401


def test_an_upstream_error_is_503(gate_upstream, settings):
    settings.ECP_GATE_UPSTREAM_URL = gate_upstream.url_500
    response = sync_request("alice", "alice-pw")
    assert response.status_code == 503
    assert not MobileDevice.objects.exists()


def test_an_upstream_that_is_down_is_503_never_401(gate_upstream):
    gate_upstream.stop()
    response = sync_request("alice", "alice-pw")
    assert response.status_code == 503
    assert "upstream server unavailable" in response.content.decode()
    assert not Mailbox.objects.exists()


def test_a_silent_upstream_is_503_after_the_timeout(gate_upstream, settings, silent_upstream):
    settings.ECP_GATE_UPSTREAM_URL = silent_upstream.url
    settings.ECP_GATE_UPSTREAM_TIMEOUT = 1
    assert sync_request("alice", "alice-pw").status_code == 503


def test_a_cached_pair_makes_no_upstream_call(gate_upstream):
    assert sync_request("alice", "alice-pw").status_code == 200
    gate_upstream.stop()
    with mock.patch.object(upstream, "verify", side_effect=AssertionError("no upstream call")):
        assert state(sync_request("alice", "alice-pw")) == (200, "Allowed", "Global")


def test_upstream_failures_share_the_accounts_throttle(gate_upstream):
    from devices.gate import credentials

    for i in range(credentials.MAX_FAILURES):
        assert sync_request(f"DOMAIN{i}\\alice", "guess").status_code == 401
    before = len(gate_upstream.requests())
    assert sync_request("alice", "alice-pw").status_code == 429
    assert len(gate_upstream.requests()) == before  # throttled before asking upstream


def test_a_known_device_costs_one_query_in_upstream_mode_too(
    gate_upstream, django_assert_num_queries
):
    assert sync_request("alice", "alice-pw").status_code == 200
    with django_assert_num_queries(1):  # login, mailbox and device in one; as in local mode
        assert sync_request("alice", "alice-pw").status_code == 200
    assert len(gate_upstream.requests()) == 1
