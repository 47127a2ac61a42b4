"""What a request through the gate writes: the partnership, its details, history and audit."""

import base64
from datetime import timedelta
from unittest import mock

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from devices import actions, evaluation
from devices.audit import Actor
from devices.eas import build_device_information_body
from devices.models import (
    AuditEvent,
    AuditSource,
    DeviceClass,
    DeviceStateChange,
    MobileDevice,
)

GATE = "/Microsoft-Server-ActiveSync"
WBXML = "application/vnd.ms-sync.wbxml"
ADMIN = Actor(source=AuditSource.CLI)
UA = "Apple-iPhone14C2/2104.61"


def s(text: str) -> bytes:
    """WBXML STR_I: an inline, NUL-terminated UTF-8 string."""
    return b"\x03" + text.encode() + b"\x00"


# The initial Provision request of an iPhone on EAS 14.1, written out token by
# token from the MS-ASWBXML code pages (14 Provision, 18 Settings), so it does
# not depend on our own encoder.
IPHONE_PROVISION = (
    b"\x03\x01\x6a\x00"  # WBXML 1.3, public id unknown, UTF-8, no string table
    b"\x00\x0e\x45"  # page 14: <Provision>
    b"\x00\x12\x56\x48"  # page 18: <DeviceInformation><Set>
    b"\x57" + s("iPhone14C2") + b"\x01"  # <Model>
    b"\x58" + s("356789101234567") + b"\x01"  # <IMEI>
    b"\x59" + s("Alice's iPhone") + b"\x01"  # <FriendlyName>
    b"\x5a" + s("iOS 17.1.2 21B101") + b"\x01"  # <OS>
    b"\x5b" + s("de-DE") + b"\x01"  # <OSLanguage>
    b"\x5c" + s("+49301234567") + b"\x01"  # <PhoneNumber>
    b"\x60" + s("Apple-iPhone14C2/2101.101") + b"\x01"  # <UserAgent>
    b"\x62" + s("Telekom.de") + b"\x01"  # <MobileOperator>
    b"\x01\x01"  # </Set></DeviceInformation>
    b"\x00\x0e\x46\x47"  # page 14: <Policies><Policy>
    b"\x48" + s("MS-EAS-Provisioning-WBXML") + b"\x01"  # <PolicyType>
    b"\x01\x01\x01"  # </Policy></Policies></Provision>
)


@pytest.fixture(autouse=True)
def _fresh_gate(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()
    evaluation._compiled = None
    yield
    cache.clear()


def basic(login: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()


@pytest.fixture
def alice(db):
    return actions.create_mailbox(
        ADMIN, alias="alice", email="alice@contoso.com", password="alice-secret"
    ).obj


def plain(cmd="FolderSync", device_id="ALICEPHONE1", device_type="iPhone"):
    return f"Cmd={cmd}&DeviceId={device_id}&DeviceType={device_type}&User=alice"


def eas(query=None, body=b"", *, user_agent=UA, version="14.1", **extra):
    headers = {"Authorization": basic("alice", "alice-secret"), "MS-ASProtocolVersion": version}
    if user_agent is not None:
        headers["User-Agent"] = user_agent
    return Client(**extra).post(
        GATE, body, content_type=WBXML, headers=headers, QUERY_STRING=query or plain()
    )


def eas_auth(query=None, **extra):
    return Client(**extra).get(
        "/eas/auth",
        headers={
            "Authorization": basic("alice", "alice-secret"),
            "MS-ASProtocolVersion": "14.1",
            "User-Agent": UA,
            "X-Original-URI": f"{GATE}?{query or plain()}",
            "X-Original-Method": "POST",
        },
    )


def history(device):
    return [(c.from_state, c.to_state) for c in device.state_changes.order_by("id")]


def gate_events():
    return list(AuditEvent.objects.filter(source=AuditSource.GATE).values_list("action", flat=True))


def set_default(level, *, window=None):
    actions.set_org_settings(ADMIN, default_access_level=level, discovery_window_minutes=window)


# --- a new partnership ----------------------------------------------------------------


def test_first_request_creates_the_partnership_with_history_and_audit(alice):
    response = eas(REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 200
    device = MobileDevice.objects.get()
    assert (device.mailbox, device.device_id, device.device_type) == (
        alice,
        "ALICEPHONE1",
        "iPhone",
    )
    assert (device.user_agent, device.eas_version) == (UA, "14.1")
    assert (device.access_state, device.access_state_reason) == ("Allowed", "Global")
    assert history(device) == [("Unknown", "Allowed")]
    event = AuditEvent.objects.get(source=AuditSource.GATE)
    assert (event.action, event.actor_name, event.client_ip) == (
        "device.create",
        "alice",
        "203.0.113.9",
    )
    assert event.request_id
    assert device.state_changes.get().event == event


def test_device_ids_are_case_insensitive(alice):
    assert eas(plain(device_id="AbCdEf")).status_code == 200
    assert eas(plain(device_id="ABCDEF")).status_code == 200
    assert eas(plain(device_id="abcdef")).status_code == 200
    device = MobileDevice.objects.get()
    assert device.device_id == "AbCdEf"  # as first seen


def test_x_real_ip_is_trusted_from_the_proxy_only(alice):
    eas(plain(device_id="VIAPROXY"), REMOTE_ADDR="127.0.0.1", HTTP_X_REAL_IP="198.51.100.4")
    eas(plain(device_id="DIRECT"), REMOTE_ADDR="192.0.2.1", HTTP_X_REAL_IP="198.51.100.66")
    ips = dict(
        AuditEvent.objects.filter(action="device.create").values_list("object_repr", "client_ip")
    )
    assert ips == {"VIAPROXY (alice)": "198.51.100.4", "DIRECT (alice)": "192.0.2.1"}


def test_request_id_header_ties_the_event_to_the_proxy_log(alice):
    eas(HTTP_X_REQUEST_ID="nginx-5f2a9c")
    assert AuditEvent.objects.get(action="device.create").request_id == "nginx-5f2a9c"


# --- DeviceInformation -------------------------------------------------------------


def test_provision_body_fills_device_information(alice):
    response = eas(plain(cmd="Provision"), IPHONE_PROVISION)
    assert response.status_code == 200
    device = MobileDevice.objects.get()
    assert device.device_info_received
    assert {
        "device_model": device.device_model,
        "imei": device.imei,
        "friendly_name": device.friendly_name,
        "device_os": device.device_os,
        "device_os_language": device.device_os_language,
        "phone_number": device.phone_number,
        "mobile_operator": device.mobile_operator,
    } == {
        "device_model": "iPhone14C2",
        "imei": "356789101234567",
        "friendly_name": "Alice's iPhone",
        "device_os": "iOS 17.1.2 21B101",
        "device_os_language": "de-DE",
        "phone_number": "+49301234567",
        "mobile_operator": "Telekom.de",
    }
    # The User-Agent header wins over the one inside DeviceInformation.
    assert device.user_agent == UA


def test_device_information_user_agent_is_used_without_a_header(alice):
    assert eas(plain(cmd="Provision"), IPHONE_PROVISION, user_agent=None).status_code == 200
    assert MobileDevice.objects.get().user_agent == "Apple-iPhone14C2/2101.101"


def test_settings_body_fills_device_information(alice):
    eas(plain())
    body = build_device_information_body("Settings", {"model": "SM-S918B", "os": "Android 14"})
    assert eas(plain(cmd="Settings"), body).status_code == 200
    device = MobileDevice.objects.get()
    assert (device.device_model, device.device_os) == ("SM-S918B", "Android 14")
    assert "device.update" in gate_events()


def test_device_information_ends_device_discovery(alice):
    set_default("Quarantine")  # default Quarantine: new devices wait for their details
    actions.create_rule(
        ADMIN, characteristic="DeviceModel", query_string="iPhone1*", access_level="Allow"
    )
    # A User-Agent without a model: the rule on DeviceModel must wait for the details,
    # and the device is asked to provision (EAS 12.0: HTTP 449).
    response = eas(plain(cmd="FolderSync"), user_agent="ECP-test/1.0", version="12.0")
    assert (response.status_code, response["X-EAS-Access-State"]) == (449, "DeviceDiscovery")
    response = eas(plain(cmd="Provision"), IPHONE_PROVISION)
    assert response.status_code == 200
    assert (response["X-EAS-Access-State"], response["X-EAS-Access-Reason"]) == (
        "Allowed",
        "DeviceRule",
    )
    device = MobileDevice.objects.get()
    assert device.access_rule.query_string == "iPhone1*"
    assert history(device) == [("Unknown", "DeviceDiscovery"), ("DeviceDiscovery", "Allowed")]
    assert eas(plain(cmd="Sync")).status_code == 200


def test_device_information_without_a_matching_rule_quarantines(alice):
    set_default("Quarantine")
    eas(plain(cmd="FolderSync"))
    response = eas(plain(cmd="Provision"), IPHONE_PROVISION)
    assert (response.status_code, response["X-EAS-Access-State"]) == (200, "Quarantined")
    assert eas(plain(cmd="FolderSync"), version="12.0").status_code == 403


def test_an_empty_field_never_erases_a_known_one(alice):
    eas(plain(cmd="Provision"), IPHONE_PROVISION)
    body = build_device_information_body("Settings", {"model": "", "os": "iOS 17.2"})
    eas(plain(cmd="Settings"), body)
    device = MobileDevice.objects.get()
    assert (device.device_model, device.device_os) == ("iPhone14C2", "iOS 17.2")


def test_device_class_is_kept_up_to_date(alice):
    eas(plain(device_type="iPhone"), user_agent="ECP-test/1.0")
    assert list(DeviceClass.objects.values_list("device_type", "device_model")) == [("iPhone", "")]
    eas(plain(cmd="Provision"), IPHONE_PROVISION)
    assert set(DeviceClass.objects.values_list("device_type", "device_model")) == {
        ("iPhone", ""),
        ("iPhone", "iPhone14C2"),
    }
    eas(plain(device_id="OTHERPHONE", device_type="Android"))
    assert DeviceClass.objects.filter(device_type="Android").exists()


# --- the discovery window ---------------------------------------------------------------


def test_device_discovery_ends_when_the_window_passes(alice):
    set_default("Quarantine", window=15)
    plain_ua = "ECP-test/1.0"  # names no model
    assert eas(plain(cmd="Provision"), user_agent=plain_ua).status_code == 200
    device = MobileDevice.objects.get()
    assert device.access_state == "DeviceDiscovery"
    # Still inside the window: nothing is decided again.
    assert eas(plain(cmd="Provision"), user_agent=plain_ua)["X-EAS-Access-State"] == (
        "DeviceDiscovery"
    )
    MobileDevice.objects.filter(pk=device.pk).update(
        first_seen=timezone.now() - timedelta(minutes=16)
    )
    response = eas(plain(cmd="FolderSync"), user_agent=plain_ua)
    # Quarantined on 14.1: the notice mailbox answers (tests/test_gate_answers.py).
    assert (response.status_code, response["X-EAS-Access-State"]) == (200, "Quarantined")
    device.refresh_from_db()
    assert history(device) == [("Unknown", "DeviceDiscovery"), ("DeviceDiscovery", "Quarantined")]
    assert gate_events() == ["device.create", "device.reevaluate"]


def test_discovery_window_end_is_noticed_by_auth_request_too(alice):
    set_default("Quarantine", window=15)
    eas_auth(plain(cmd="Provision"))
    later = timezone.now() + timedelta(minutes=15, seconds=1)
    with mock.patch("django.utils.timezone.now", return_value=later):
        response = eas_auth(plain(cmd="Provision"))
    assert (response.status_code, response["X-EAS-Access-State"]) == (200, "Quarantined")


# --- last seen ----------------------------------------------------------------------


@pytest.mark.usefixtures("uncached_gate")  # the uncached path: decisions.py
def test_last_seen_is_written_at_most_once_a_minute(alice, django_assert_num_queries):
    eas()
    device = MobileDevice.objects.get()
    first = device.last_seen
    with django_assert_num_queries(1):  # login, mailbox and device in one; no write
        assert eas().status_code == 200
    device.refresh_from_db()
    assert device.last_seen == first

    soon = first + timedelta(seconds=59)
    with mock.patch("django.utils.timezone.now", return_value=soon), django_assert_num_queries(1):
        assert eas().status_code == 200
    device.refresh_from_db()
    assert device.last_seen == first

    later = first + timedelta(seconds=61)
    # One query more: the UPDATE of last_seen.
    with mock.patch("django.utils.timezone.now", return_value=later), django_assert_num_queries(2):
        assert eas().status_code == 200
    device.refresh_from_db()
    assert device.last_seen == later
    assert gate_events() == ["device.create"]  # seeing a device again is not audited


@pytest.mark.usefixtures("uncached_gate")  # the uncached path: decisions.py
def test_last_seen_moves_when_the_row_is_older_than_a_minute(alice):
    eas()
    an_hour_ago = timezone.now() - timedelta(hours=1)
    MobileDevice.objects.update(last_seen=an_hour_ago)
    eas()
    assert MobileDevice.objects.get().last_seen > an_hour_ago + timedelta(minutes=59)


def test_a_changed_user_agent_is_recorded_and_audited(alice):
    eas()
    eas(user_agent="Apple-iPhone14C2/2105.1")
    device = MobileDevice.objects.get()
    assert device.user_agent == "Apple-iPhone14C2/2105.1"
    assert gate_events() == ["device.create", "device.update"]
    assert AuditEvent.objects.get(action="device.update").after == {
        "user_agent": "Apple-iPhone14C2/2105.1"
    }


# --- the hot path -------------------------------------------------------------------


@pytest.mark.usefixtures("uncached_gate")  # the uncached path: decisions.py
@pytest.mark.parametrize("state", ["Allow", "Quarantine", "Block"])
def test_a_known_device_with_cached_credentials_costs_one_query(
    alice, state, django_assert_num_queries
):
    set_default(state, window=0)
    eas()  # creates the partnership and caches the credentials
    eas_auth()
    with django_assert_num_queries(1):  # the login, its mailbox and the device together
        eas()
    with django_assert_num_queries(1):
        eas_auth()


def test_a_device_in_discovery_costs_one_more_query(alice, django_assert_num_queries):
    set_default("Quarantine", window=15)
    eas()
    with django_assert_num_queries(2):  # and the org settings, for the window
        assert eas()["X-EAS-Access-State"] == "DeviceDiscovery"


def test_nothing_changes_for_a_known_device_seen_again(alice):
    eas(plain(cmd="Provision"), IPHONE_PROVISION)
    before = (
        MobileDevice.objects.values().get(),
        DeviceStateChange.objects.count(),
        AuditEvent.objects.count(),
    )
    for cmd in ("FolderSync", "Sync", "Ping"):
        eas(plain(cmd=cmd))
    after = (
        MobileDevice.objects.values().get(),
        DeviceStateChange.objects.count(),
        AuditEvent.objects.count(),
    )
    assert after == before
