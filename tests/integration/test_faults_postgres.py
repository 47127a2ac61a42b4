"""PostgreSQL restarts under the running gate (issue 9, "Faults").

    this test --HTTP--> gunicorn ecp.wsgi (2 workers) --> PostgreSQL (a private cluster)
                                                     \\-> Redis (private; the gate's cache)

The cluster is our own (initdb into a temporary directory, a free port), so
stopping it disturbs nobody. During the outage the gate must answer a clear
503 and let no device in; afterwards the same server processes (same PIDs)
must decide and record again by themselves (CONN_HEALTH_CHECKS reconnects).
With the opt-in outage cache (ECP_GATE_OUTAGE_CACHE_SECONDS) a device allowed
before the outage keeps syncing; nothing else does.
"""

import json
import time

import pytest

from tests.conftest import need_service

from .test_faults_support import (
    Gunicorn,
    PrivatePostgres,
    PrivateRedis,
    child_pids,
    eventually,
    manage,
    project_env,
)

pytestmark = pytest.mark.integration

DB = "ecp_faults"
FAST = 5  # seconds: an answer during the outage is quick, not a hung connection


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    need_service("PostgreSQL server binaries", PrivatePostgres.available(), "initdb, pg_ctl")
    pg = PrivatePostgres()
    try:
        pg.init()
        pg.start()
        pg.create_database(DB)
        env = project_env(DATABASE_URL=pg.url(DB))
        manage(env, "migrate", "--noinput", "-v0")
        for alias in ("alice", "bob"):
            manage(
                env,
                *("eas", "new-mailbox", alias, "--email", f"{alias}@contoso.com"),
                *("--password", f"{alias}-secret"),
            )
        manage(env, "eas", "set-org-settings", "--default-access-level", "Allow")
        manage(env, "eas", "block-device", "BOBPHONE", "--mailbox", "bob")
        yield pg
    finally:
        pg.destroy()


@pytest.fixture(scope="module")
def cache_server(tmp_path_factory):
    server = PrivateRedis(tmp_path_factory.mktemp("pg-faults-redis")).start()
    yield server
    server.stop()


def _gunicorn(tmp_path_factory, cluster, cache_server, name, **env):
    tmp = tmp_path_factory.mktemp(name)
    environment = project_env(DATABASE_URL=cluster.url(DB), CACHE_URL=cache_server.url(1), **env)
    return Gunicorn(tmp, environment, name=name).start()


@pytest.fixture(scope="module")
def gate(tmp_path_factory, cluster, cache_server):
    server = _gunicorn(tmp_path_factory, cluster, cache_server, "gate-fail-closed")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gate_with_outage_cache(tmp_path_factory, cluster, cache_server):
    server = _gunicorn(
        tmp_path_factory,
        cluster,
        cache_server,
        "gate-outage-cache",
        ECP_GATE_OUTAGE_CACHE_SECONDS=120,
    )
    yield server
    server.stop()


def timed(call):
    started = time.monotonic()
    status, headers, body = call()
    return status, headers, body, time.monotonic() - started


def partnerships(cluster, device_id) -> int:
    return cluster.query(
        DB, "SELECT count(*) FROM devices_mobiledevice WHERE device_id = %s", device_id
    )[0][0]


def processes(server) -> tuple:
    return server.pid, tuple(sorted(child_pids(server.pid)))


def test_during_a_restart_the_gate_is_a_clear_503_and_then_recovers(cluster, gate):
    status, headers, _ = gate.sync("alice", "alice-secret", "ALICEPHONE")
    assert (status, headers["x-eas-access-state"]) == (200, "Allowed")
    assert gate.sync("bob", "bob-secret", "BOBPHONE")[0] == 403
    assert gate.get("/readyz")[0] == 200
    before = processes(gate)
    assert len(before[1]) == 2

    cluster.stop()
    try:
        calls = {
            "allowed device": lambda: gate.sync("alice", "alice-secret", "ALICEPHONE"),
            "new device": lambda: gate.sync("alice", "alice-secret", "NEWPHONE"),
            "wrong password": lambda: gate.sync("alice", "guess", "ALICEPHONE"),
            "blocked device": lambda: gate.sync("bob", "bob-secret", "BOBPHONE"),
            "auth_request": lambda: gate.request(
                "GET",
                "/eas/auth",
                headers={
                    **_auth_headers("alice", "alice-secret"),
                    "X-Original-URI": "/Microsoft-Server-ActiveSync?Cmd=Sync"
                    "&User=alice&DeviceId=ALICEPHONE&DeviceType=iPhone",
                    "X-Original-Method": "POST",
                },
            ),
        }
        for what, call in calls.items():
            for _ in range(3):  # both workers, more than once
                status, headers, body, took = timed(call)
                assert status == 503, (what, status, body)
                assert headers["retry-after"] == "30"
                assert "x-eas-access-state" not in headers
                assert body == b"access control database unavailable\n"
                assert took < FAST, (what, took)
        assert gate.get("/readyz")[0] == 503
        assert gate.get("/healthz")[0] == 200
    finally:
        cluster.start()

    # The same processes reconnect by themselves.
    eventually(
        lambda: gate.sync("alice", "alice-secret", "ALICEPHONE")[0] == 200,
        "the gate to decide again after the restart",
        on_timeout=gate.tail,
    )
    status, headers, _ = gate.sync("alice", "alice-secret", "NEWPHONE")
    assert (status, headers["x-eas-access-state"]) == (200, "Allowed")
    assert partnerships(cluster, "NEWPHONE") == 1
    for _ in range(4):  # every worker, not just the first to reconnect
        assert gate.sync("bob", "bob-secret", "BOBPHONE")[0] == 403
        assert gate.get("/readyz")[0] == 200
    assert processes(gate) == before, "the server processes were restarted"
    log = gate.log.read_text(errors="replace")
    assert "alice-secret" not in log and "Traceback" not in log, gate.tail()


def _auth_headers(login, password):
    import base64

    token = base64.b64encode(f"{login}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}", "User-Agent": "Apple-iPhone15C2/2104.61"}


def test_the_outage_cache_keeps_only_allowed_devices_syncing(cluster, gate_with_outage_cache):
    gate = gate_with_outage_cache
    for _ in range(2):
        status, headers, _ = gate.sync("alice", "alice-secret", "ALICEPHONE2")
        assert (status, headers["x-eas-access-state"]) == (200, "Allowed")
        assert "x-eas-degraded" not in headers
    assert gate.sync("bob", "bob-secret", "BOBPHONE")[0] == 403

    cluster.stop()
    try:
        for _ in range(4):
            status, headers, _, took = timed(
                lambda: gate.sync("alice", "alice-secret", "ALICEPHONE2", cmd="Sync")
            )
            assert status == 200
            assert headers["x-eas-access-state"] == "Allowed"
            assert headers["x-eas-degraded"] == "database-unavailable"
            assert took < FAST
        for login, password, device in [
            ("alice", "alice-secret", "NEWPHONE2"),  # never allowed
            ("alice", "guess", "ALICEPHONE2"),  # not the verified credentials
            ("bob", "bob-secret", "BOBPHONE"),  # blocked
            ("bob", "bob-secret", "ALICEPHONE2"),  # someone else's device id
        ]:
            assert gate.sync(login, password, device)[0] == 503, (login, device)
        assert gate.get("/readyz")[0] == 503
    finally:
        cluster.start()

    eventually(
        lambda: gate.sync("alice", "alice-secret", "NEWPHONE2")[0] == 200,
        "the gate to decide again after the restart",
        on_timeout=gate.tail,
    )
    status, headers, _ = gate.sync("alice", "alice-secret", "ALICEPHONE2")
    assert status == 200 and "x-eas-degraded" not in headers
    assert partnerships(cluster, "NEWPHONE2") == 1


def test_during_a_restart_the_api_answers_json_503_and_then_recovers(cluster, gate):
    """Token and session requests alike: the API's error shape, never Django's HTML 500."""
    env = project_env(DATABASE_URL=cluster.url(DB))
    key = manage(env, "eas", "new-api-token", "alice", "--name", "faults").strip()
    token = {"Authorization": f"Token {key}"}
    session = {"Cookie": "sessionid=0123456789abcdefghijklmnopqrstuv"}
    assert gate.get("/api/v1/me", headers=token)[0] == 200

    cluster.stop()
    try:
        for headers in (token, session):
            for path in ("/api/v1/me", "/api/v1/devices", "/api/v1/audit-events"):
                for _ in range(2):  # both workers
                    status, response_headers, body, took = timed(
                        lambda path=path, headers=headers: gate.get(path, headers=headers)
                    )
                    assert status == 503, (path, status, body[:200])
                    assert response_headers["content-type"] == "application/json", body[:200]
                    assert json.loads(body) == {
                        "message": "The database is unavailable; try again shortly.",
                        "errors": {},
                    }
                    assert response_headers["retry-after"] == "30"
                    assert took < FAST, (path, took)
    finally:
        cluster.start()

    eventually(
        lambda: gate.get("/api/v1/me", headers=token)[0] == 200,
        "the API to answer again after the restart",
        on_timeout=gate.tail,
    )
