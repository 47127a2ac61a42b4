"""Hostile input at the real server: oversized requests and a flood of failed sign-ins.

    this test --raw HTTP--> gunicorn ecp.wsgi (its default limits) --> PostgreSQL test DB
                                     \\--> Redis (private): the gate's cache, shared by the workers

Oversized request lines, headers and bodies are refused before the gate reads
them (gunicorn's limits, then the gate's declared-length check), quickly and
without a 5xx. A flood of wrong passwords from one address is throttled
(401, then 429) while the real user, from another address, keeps syncing.
The failure count lives in the cache: with CACHE_URL unset each gunicorn
worker counts for itself (docs/RELIABILITY.md).
"""

import base64
import contextlib
import socket
import time

import pytest
from django.db import connection

from devices import actions
from devices.audit import SYSTEM
from devices.eas import MAX_BODY
from devices.models import MobileDevice
from tests.conftest import need_service

from .test_faults_support import GATE, Gunicorn, PrivateRedis, database_url, project_env

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

QUICK = 3  # seconds


@pytest.fixture(scope="module")
def gate(django_db_setup, tmp_path_factory):
    need_service(
        "PostgreSQL",
        connection.vendor == "postgresql",
        "gunicorn must share the test database (set DATABASE_URL)",
    )
    tmp = tmp_path_factory.mktemp("hostile")
    cache = PrivateRedis(tmp).start()
    server = Gunicorn(
        tmp,
        project_env(DATABASE_URL=database_url(connection.settings_dict), CACHE_URL=cache.url(1)),
    )
    try:
        yield server.start()
    finally:
        server.stop()
        cache.stop()


@pytest.fixture
def alice(settings):
    return actions.create_mailbox(
        SYSTEM, alias="alice", email="alice@contoso.com", password="alice-secret"
    ).obj


def raw(port: int, head: bytes, body: bytes = b"") -> tuple[int, float]:
    """Send a request as bytes; (status, seconds until the status line)."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        # The server may refuse before it has read everything.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(head + body)
        answer = b""
        while b"\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0
    return status, time.monotonic() - started


def head(query="Cmd=Sync&User=alice&DeviceId=PHONE1&DeviceType=iPhone", **headers) -> bytes:
    lines = [f"POST {GATE}?{query} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def auth(password="alice-secret"):
    return "Basic " + base64.b64encode(f"alice:{password}".encode()).decode()


@pytest.mark.parametrize(
    ("what", "request_bytes", "statuses"),
    [
        ("a 10 KB request line", head(query="Cmd=Sync&" + "x" * 10_000), {400, 414}),
        ("a 64 KB header", head(X_Junk="y" * 65_536), {400, 431}),
        ("a 10 KB Authorization header", head(Authorization="Basic " + "A" * 10_000), {400, 431}),
        ("200 headers", head(**{f"X_H{i}": "1" for i in range(200)}), {400, 431}),
    ],
)
def test_oversized_requests_are_refused_by_the_server(gate, what, request_bytes, statuses):
    status, took = raw(gate.port, request_bytes)
    assert status in statuses, (what, status)
    assert took < QUICK, (what, took)


def test_a_body_declared_too_large_is_refused_without_reading_it(gate, alice):
    request = head(
        query="Cmd=Provision&User=alice&DeviceId=PHONE1&DeviceType=iPhone",
        Authorization=auth(),
        Content_Type="application/vnd.ms-sync.wbxml",
        Content_Length=str(100 * 1024 * 1024),
    )
    status, took = raw(gate.port, request, b"\x03\x01" * 512)  # far less than declared
    assert status == 413
    assert took < QUICK  # it did not wait for 100 MB
    assert not MobileDevice.objects.exists()


def test_a_body_just_over_the_limit_is_refused(gate, alice):
    body = b"\x03" * (MAX_BODY + 1)
    request = head(
        query="Cmd=Provision&User=alice&DeviceId=PHONE1&DeviceType=iPhone",
        Authorization=auth(),
        Content_Length=str(len(body)),
    )
    assert raw(gate.port, request, body)[0] == 413


def test_a_flood_of_failed_sign_ins_does_not_lock_out_the_real_user(gate, alice):
    statuses = []
    for i in range(60):
        status, _ = raw(gate.port, head(Authorization=auth(f"guess{i}"), X_Real_IP="203.0.113.9"))
        statuses.append(status)
    assert statuses[:10] == [401] * 10
    assert set(statuses[10:]) == {429}
    # Even the right password waits at the flooding address ...
    assert raw(gate.port, head(Authorization=auth(), X_Real_IP="203.0.113.9"))[0] == 429
    # ... while the real user, elsewhere, syncs.
    assert raw(gate.port, head(Authorization=auth(), X_Real_IP="198.51.100.20"))[0] == 200
    log = gate.log.read_text(errors="replace")
    assert "alice-secret" not in log and "guess1" not in log


def test_a_utf8_user_agent_through_gunicorn_is_stored_as_utf8(gate, alice):
    """WSGI hands headers over latin-1-decoded; the gate stores the UTF-8 text (issue 16)."""
    request = (
        f"POST {GATE}?Cmd=Sync&User=alice&DeviceId=UTF8PHONE&DeviceType=iPhone HTTP/1.1\r\n"
        f"Host: 127.0.0.1\r\nAuthorization: {auth()}\r\nContent-Length: 0\r\n"
    ).encode() + "User-Agent: Gerät-Phone/1.0 (Zürich)\r\n\r\n".encode()
    status, _ = raw(gate.port, request)
    assert status in (200, 403)
    assert MobileDevice.objects.get(device_id="UTF8PHONE").user_agent == "Gerät-Phone/1.0 (Zürich)"


def test_a_nul_in_the_login_through_gunicorn_is_401(gate, alice):
    bad = "Basic " + base64.b64encode(b"ali\x00ce:alice-secret").decode()
    status, _ = raw(gate.port, head(Authorization=bad, Content_Length="0"))
    assert status == 401
