"""Simultaneous writers through a real HTTP server, on whichever database the run uses.

nginx sends auth_request and mirror for one device request at the same
moment, so the live server's threads write the same rows together. On the
embedded SQLite this once failed with "database table is locked" on a busy
machine: the in-memory test database is one connection shared by every
thread. The test run now gives SQLite a file with WAL and a busy timeout
(tests/conftest.py), so each thread has its own connection and waits its turn.
"""

import base64
import http.client
import threading
from urllib.parse import urlsplit

import pytest
from django.core.cache import cache

from devices import actions, evaluation
from devices.audit import Actor
from devices.eas import build_device_information_body
from devices.models import AuditSource, DeviceStateChange, MobileDevice

pytestmark = pytest.mark.integration

ADMIN = Actor(source=AuditSource.CLI)
GATE = "/Microsoft-Server-ActiveSync"
THREADS = 8
ROUNDS = 5


@pytest.fixture
def alice(transactional_db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()
    evaluation._compiled = None
    actions.set_org_settings(ADMIN, default_access_level="Allow", discovery_window_minutes=0)
    yield actions.create_mailbox(
        ADMIN, alias="alice", email="alice@contoso.com", password="alice-secret"
    ).obj
    cache.clear()


def post(port: int, device_id: str, model: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    token = base64.b64encode(b"alice:alice-secret").decode()
    try:
        connection.request(
            "POST",
            f"{GATE}?Cmd=Provision&User=alice&DeviceId={device_id}&DeviceType=iPhone",
            build_device_information_body("Provision", {"model": model, "os": "iOS 17.1"}),
            {
                "Authorization": f"Basic {token}",
                "MS-ASProtocolVersion": "14.1",
                "User-Agent": "Apple-iPhone14C2/2104.61",
                "Content-Type": "application/vnd.ms-sync.wbxml",
            },
        )
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def one_round(port: int, round_: int) -> list:
    """THREADS requests released together, two per new device; their statuses."""
    barrier = threading.Barrier(THREADS)
    statuses, errors = [None] * THREADS, []

    def send(i):
        try:
            barrier.wait(timeout=10)
            # Two requests per device at once, as auth_request and mirror are.
            statuses[i] = post(port, f"LIVE{round_}X{i // 2}", f"Model{i % 2}")
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    assert not errors, errors
    return statuses


def test_simultaneous_first_requests_through_the_live_server(alice, live_server):
    port = urlsplit(live_server.url).port
    for round_ in range(ROUNDS):
        assert one_round(port, round_) == [200] * THREADS

    devices = MobileDevice.objects.filter(device_id__startswith="LIVE")
    assert devices.count() == ROUNDS * THREADS // 2
    assert set(devices.values_list("access_state", flat=True)) == {"Allowed"}
    assert DeviceStateChange.objects.count() == ROUNDS * THREADS // 2
