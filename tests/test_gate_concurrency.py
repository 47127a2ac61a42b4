"""Simultaneous first requests of one new device: one partnership, one transition, one event.

Devices retry eagerly and nginx sends auth_request and mirror for the same
request, so the first requests of a device routinely arrive together. This
needs real row locks and concurrent transactions: PostgreSQL.
"""

import base64

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client

from devices import actions, evaluation
from devices.audit import Actor
from devices.eas import build_device_information_body
from devices.models import AuditEvent, AuditSource, DeviceStateChange, MobileDevice
from tests import threads_support
from tests.conftest import need_service

GATE = "/Microsoft-Server-ActiveSync"
WBXML = "application/vnd.ms-sync.wbxml"
ADMIN = Actor(source=AuditSource.CLI)
THREADS = 8


@pytest.fixture(autouse=True)
def _fresh_gate(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()
    evaluation._compiled = None
    yield
    cache.clear()


@pytest.fixture
def alice(transactional_db):
    need_service(
        "PostgreSQL",
        connection.vendor == "postgresql",
        "concurrent first requests need row locks (set DATABASE_URL)",
    )
    return actions.create_mailbox(
        ADMIN, alias="alice", email="alice@contoso.com", password="alice-secret"
    ).obj


def basic(login: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()


def all_at_once(send, count=THREADS):
    return threads_support.all_at_once(send, count)


def first_request(cmd="FolderSync", body=b""):
    return Client().post(
        GATE,
        body,
        content_type=WBXML,
        headers={
            "Authorization": basic("alice", "alice-secret"),
            "MS-ASProtocolVersion": "14.1",
            "User-Agent": "Apple-iPhone14C2/2104.61",
        },
        QUERY_STRING=f"Cmd={cmd}&DeviceId=RACEPHONE&DeviceType=iPhone&User=alice",
    )


def auth_request(_):
    return Client().get(
        "/eas/auth",
        headers={
            "Authorization": basic("alice", "alice-secret"),
            "MS-ASProtocolVersion": "14.1",
            "User-Agent": "Apple-iPhone14C2/2104.61",
            "X-Original-URI": f"{GATE}?Cmd=Sync&DeviceId=RACEPHONE&DeviceType=iPhone",
            "X-Original-Method": "POST",
        },
    )


def assert_one_partnership(to_state):
    device = MobileDevice.objects.get()
    assert device.device_id == "RACEPHONE"
    changes = list(DeviceStateChange.objects.values_list("from_state", "to_state"))
    assert changes == [("Unknown", to_state)]
    assert AuditEvent.objects.filter(action="device.create").count() == 1
    return device


@pytest.mark.integration
@pytest.mark.parametrize(
    ("level", "state", "status"), [("Allow", "Allowed", 200), ("Quarantine", "Quarantined", 403)]
)
def test_simultaneous_first_requests_give_one_partnership(alice, level, state, status):
    actions.set_org_settings(ADMIN, default_access_level=level, discovery_window_minutes=0)
    responses = all_at_once(lambda i: first_request() if i % 2 else auth_request(i))
    # auth_request says 403; the standalone endpoint answers a quarantined phone's
    # FolderSync itself (the notice mailbox, HTTP 200).
    assert [r.status_code for r in responses] == [200 if i % 2 else status for i in range(THREADS)]
    assert {r["X-EAS-Access-State"] for r in responses} == {state}
    assert_one_partnership(state)
    assert not AuditEvent.objects.filter(action__in=["device.update", "device.reevaluate"]).exists()


@pytest.mark.integration
def test_simultaneous_provision_with_device_information(alice):
    # The auth_request (no body) and the mirrored Provision (with DeviceInformation)
    # of the same request race each other through nginx.
    body = build_device_information_body("Provision", {"model": "iPhone14C2", "os": "iOS 17"})
    responses = all_at_once(
        lambda i: first_request("Provision", body) if i % 2 else auth_request(i)
    )
    assert {r.status_code for r in responses} == {200}
    device = assert_one_partnership("Allowed")
    assert (device.device_model, device.device_os, device.device_info_received) == (
        "iPhone14C2",
        "iOS 17",
        True,
    )
    # The details arrived once: at most one update event, whoever came first.
    assert AuditEvent.objects.filter(action="device.update").count() <= 1
