"""The gate under hostile input and during a database outage (in process).

The outage itself, through gunicorn and a PostgreSQL that really stops, is
tests/integration/test_faults_postgres.py; here the database error is
injected, to check the fail-closed answer and the opt-in outage cache exactly.
"""

import base64
from unittest import mock

import pytest
from django.contrib.auth.hashers import MD5PasswordHasher
from django.core.cache import cache
from django.db import OperationalError
from django.test import Client

from devices import actions, evaluation
from devices.audit import Actor
from devices.gate import credentials, outage
from devices.gate import views as gate_views
from devices.models import AuditSource, MobileDevice

GATE = "/Microsoft-Server-ActiveSync"
ADMIN = Actor(source=AuditSource.CLI)


@pytest.fixture(autouse=True)
def _fresh_gate(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.ECP_GATE_OUTAGE_CACHE_SECONDS = 0
    cache.clear()
    outage._written.clear()
    evaluation._compiled = None
    yield
    cache.clear()
    outage._written.clear()


@pytest.fixture
def alice(db):
    return actions.create_mailbox(
        ADMIN, alias="alice", email="alice@contoso.com", password="alice-secret"
    ).obj


def basic(login="alice", password="alice-secret") -> str:
    return "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()


def sync(device_id="ALICEPHONE1", *, auth=None, cmd="FolderSync", user="alice", addr="127.0.0.1"):
    query = f"Cmd={cmd}&DeviceId={device_id}&DeviceType=iPhone"
    if user:
        query += f"&User={user}"
    return Client(REMOTE_ADDR=addr).post(
        GATE,
        b"",
        content_type="application/vnd.ms-sync.wbxml",
        headers={"Authorization": auth or basic(), "User-Agent": "Apple-iPhone14C2/2104.61"},
        QUERY_STRING=query,
    )


def auth_request(device_id="ALICEPHONE1", *, auth=None):
    query = f"Cmd=Sync&DeviceId={device_id}&DeviceType=iPhone&User=alice"
    return Client().get(
        "/eas/auth",
        headers={
            "Authorization": auth or basic(),
            "X-Original-URI": f"{GATE}?{query}",
            "X-Original-Method": "POST",
        },
    )


class DatabaseDown:
    """Every decision hits a dead database, as when PostgreSQL is stopped."""

    def __enter__(self):
        self.patch = mock.patch.object(
            gate_views, "decide_request", side_effect=OperationalError("connection refused")
        )
        self.patch.start()
        return self

    def __exit__(self, *exc):
        self.patch.stop()


# --- fail closed ----------------------------------------------------------------------------


def test_without_the_database_every_request_is_503(alice):
    assert sync().status_code == 200  # allowed a moment ago
    with DatabaseDown():
        for response in (sync(), sync("NEWPHONE"), auth_request(), sync(auth=basic("alice", "x"))):
            assert response.status_code == 503
            assert response["Retry-After"] == "30"
            assert "X-EAS-Access-State" not in response
            assert outage.HEADER not in response


def test_the_outage_cache_is_off_by_default():
    from ecp import settings as project_settings

    assert project_settings.ECP_GATE_OUTAGE_CACHE_SECONDS == 0


def test_nothing_is_remembered_while_it_is_off(alice):
    assert sync().status_code == 200
    assert not [k for k in cache._cache if "gate:outage:" in k]  # LocMemCache internals


# --- the opt-in outage cache ----------------------------------------------------------------


@pytest.fixture
def outage_cache(settings):
    settings.ECP_GATE_OUTAGE_CACHE_SECONDS = 600


def test_an_allowed_device_keeps_syncing_during_an_outage(alice, outage_cache):
    assert sync().status_code == 200
    with DatabaseDown():
        response = sync()
        assert response.status_code == 200
        assert (response["X-EAS-Access-State"], response["X-EAS-Access-Reason"]) == (
            "Allowed",
            "Global",
        )
        assert response[outage.HEADER] == "database-unavailable"
        assert auth_request().status_code == 200  # nginx's path too


@pytest.mark.parametrize(
    "request_kwargs",
    [
        pytest.param({"device_id": "NEWPHONE"}, id="unknown-device"),
        pytest.param({"auth": basic("alice", "wrong")}, id="wrong-password"),
        pytest.param({"user": "bob"}, id="another-mailbox"),
        pytest.param({"auth": "Basic !!"}, id="malformed-credentials"),
    ],
)
def test_everything_else_is_still_503(alice, outage_cache, request_kwargs):
    assert sync().status_code == 200
    with DatabaseDown():
        kwargs = {"device_id": "ALICEPHONE1", **request_kwargs}
        assert sync(**kwargs).status_code == 503


def test_a_quarantined_device_is_not_let_in(alice, outage_cache):
    actions.set_org_settings(ADMIN, default_access_level="Quarantine", discovery_window_minutes=0)
    assert sync(cmd="Provision").status_code == 200  # a quarantined device may report itself
    with DatabaseDown():
        assert sync(cmd="Provision").status_code == 503
        assert sync().status_code == 503


def test_a_blocked_device_is_forgotten_at_its_next_request(alice, outage_cache):
    assert sync().status_code == 200
    actions.block_device(ADMIN, alice, "ALICEPHONE1")
    assert sync().status_code == 403
    with DatabaseDown():
        assert sync().status_code == 503


def test_the_memory_expires(alice, outage_cache, settings):
    assert sync().status_code == 200
    settings.ECP_GATE_OUTAGE_CACHE_SECONDS = 1
    with (
        DatabaseDown(),
        mock.patch.object(outage.time, "time", return_value=outage.time.time() + 2),
    ):
        assert sync().status_code == 503


def test_the_memory_holds_no_password(alice, outage_cache):
    assert sync().status_code == 200
    stored = repr(dict(cache._cache.items()))
    assert "alice-secret" not in stored
    assert base64.b64encode(b"alice:alice-secret").decode() not in stored


def test_a_syncing_device_does_not_write_the_cache_on_every_request(alice, outage_cache):
    with mock.patch.object(credentials, "_safe_cache", wraps=credentials._safe_cache) as calls:
        for _ in range(5):
            assert sync().status_code == 200
    writes = [c for c in calls.call_args_list if c.args[0] == "set" and "outage" in c.args[1]]
    assert len(writes) == 1


def test_guessing_during_an_outage_is_throttled_like_any_sign_in(alice, outage_cache):
    assert sync().status_code == 200
    with DatabaseDown():
        for i in range(credentials.MAX_FAILURES):
            assert sync(auth=basic("alice", f"guess{i}"), addr="127.0.0.1").status_code == 503
        # The right password from the guessing address now waits too ...
        assert sync().status_code == 503
        # ... but the real user from their own address goes on syncing.
        assert sync(addr="192.0.2.10").status_code == 200


# --- hostile input ----------------------------------------------------------------------------


def test_a_flood_of_failed_sign_ins_runs_the_hasher_only_up_to_the_limit(alice):
    real = MD5PasswordHasher.verify
    with mock.patch.object(MD5PasswordHasher, "verify", autospec=True, side_effect=real) as spy:
        statuses = [sync(auth=basic("alice", f"guess{i}")).status_code for i in range(200)]
        assert statuses[: credentials.MAX_FAILURES] == [401] * credentials.MAX_FAILURES
        assert set(statuses[credentials.MAX_FAILURES :]) == {429}
        assert spy.call_count == credentials.MAX_FAILURES
        # The real user, from another address, is not locked out.
        assert sync(addr="198.51.100.4").status_code == 200
    assert MobileDevice.objects.count() == 1


@pytest.mark.parametrize(
    "auth",
    [
        pytest.param("Basic " + "A" * 100_000, id="100k-of-base64"),
        pytest.param(basic("a" * 300, "x"), id="long-login"),
        pytest.param(basic("alice", "x" * 2000), id="long-password"),
    ],
)
def test_oversized_credentials_are_refused_before_any_lookup(alice, auth):
    with mock.patch.object(credentials, "verify") as verify:
        response = sync(auth=auth)
    assert response.status_code == 401
    verify.assert_not_called()


def test_an_oversized_body_is_refused_by_its_declared_length(alice):
    from devices.eas import MAX_BODY

    response = Client().generic(
        "POST",
        f"{GATE}?Cmd=Provision&DeviceId=ALICEPHONE1&DeviceType=iPhone&User=alice",
        b"\x03\x01",
        content_type="application/vnd.ms-sync.wbxml",
        headers={"Authorization": basic(), "Content-Length": str(MAX_BODY * 1000)},
    )
    assert response.status_code == 413
    assert not MobileDevice.objects.exists()
