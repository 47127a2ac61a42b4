"""The gate's HTTP contract: parsing, status codes and headers (DESIGN.md, "The gate").

Authentication is in test_gate_auth.py, what a request records in
test_gate_recording.py, simultaneous first requests in test_gate_concurrency.py.
"""

import base64
from unittest import mock

import pytest
from django.core.cache import cache
from django.db import OperationalError
from django.test import Client
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from devices import actions, evaluation
from devices.audit import Actor
from devices.eas import MAX_BODY, build_base64_query, build_device_information_body
from devices.models import AuditEvent, AuditSource, DeviceStateChange, MobileDevice

GATE = "/Microsoft-Server-ActiveSync"
WBXML = "application/vnd.ms-sync.wbxml"
ADMIN = Actor(source=AuditSource.CLI)
# MS-ASHTTP 2.2.1.1.1.1, the spec's own example: protocol 14.0, FolderSync,
# DeviceId "v140Device", no policy key, DeviceType "SmartPhone", no User.
SPEC_BASE64_QUERY = "jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l"
DECISION_STATUSES = {200, 403}


@pytest.fixture(autouse=True)
def _fresh_gate(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()  # cached credentials and failure counters
    evaluation._compiled = None  # compiled rules are keyed by a version a rollback resets
    yield
    cache.clear()


def basic(login: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()


@pytest.fixture
def alice(db):
    return actions.create_mailbox(
        ADMIN, alias="alice", email="alice@contoso.com", password="alice-secret"
    ).obj


def plain(cmd="FolderSync", device_id="ALICEPHONE1", device_type="iPhone", user="alice"):
    query = f"Cmd={cmd}&DeviceId={device_id}&DeviceType={device_type}"
    return query + (f"&User={user}" if user is not None else "")


def eas(query, *, body=b"", auth=None, version="14.1", user_agent="Apple-iPhone14C2/2104.61"):
    """POST one ActiveSync request to the standalone gate as alice."""
    headers = {"Authorization": auth or basic("alice", "alice-secret")}
    if version is not None:
        headers["MS-ASProtocolVersion"] = version
    if user_agent is not None:
        headers["User-Agent"] = user_agent
    return Client().post(GATE, body, content_type=WBXML, headers=headers, QUERY_STRING=query)


def eas_auth(query, *, auth=None, method="POST", path=GATE):
    """nginx's auth_request subrequest for one ActiveSync request as alice."""
    return Client().get(
        "/eas/auth",
        headers={
            "Authorization": auth or basic("alice", "alice-secret"),
            "User-Agent": "Apple-iPhone14C2/2104.61",
            "MS-ASProtocolVersion": "14.1",
            "X-Original-URI": f"{path}?{query}",
            "X-Original-Method": method,
        },
    )


def recorded():
    """What requests have written: partnerships, state changes, the gate's audit events."""
    return (
        MobileDevice.objects.count(),
        DeviceStateChange.objects.count(),
        AuditEvent.objects.filter(source=AuditSource.GATE).count(),
    )


NOTHING = (0, 0, 0)


def set_default(level, *, window=None):
    actions.set_org_settings(ADMIN, default_access_level=level, discovery_window_minutes=window)


def assert_decision(response, status, state, reason="Global"):
    assert response.status_code == status, response.content
    assert response["X-EAS-Access-State"] == state
    assert response["X-EAS-Access-Reason"] == reason


# --- OPTIONS and methods ------------------------------------------------------------


@pytest.mark.django_db
def test_options_answers_versions_and_commands_without_credentials():
    response = Client().options(GATE)
    assert response.status_code == 200
    versions = response["MS-ASProtocolVersions"].split(",")
    assert {"12.1", "14.0", "14.1", "16.1"} <= set(versions)
    commands = response["MS-ASProtocolCommands"].split(",")
    assert {"FolderSync", "Sync", "Provision", "Settings", "Ping", "SendMail"} <= set(commands)
    assert recorded() == NOTHING


@pytest.mark.parametrize("method", ["get", "put", "delete", "patch"])
def test_it_rejects_other_methods_with_405(alice, method):
    response = getattr(Client(), method)(
        f"{GATE}?{plain()}", headers={"Authorization": basic("alice", "alice-secret")}
    )
    assert response.status_code == 405
    assert set(response["Allow"].split(",")) == {"OPTIONS", "POST"}
    assert recorded() == NOTHING


# --- the query string -----------------------------------------------------------------


def test_spec_base64_example_records_the_logins_own_mailbox(alice):
    response = eas(SPEC_BASE64_QUERY, version=None)
    assert_decision(response, 200, "Allowed")
    device = MobileDevice.objects.get()
    assert (device.mailbox, device.device_id, device.device_type) == (
        alice,
        "v140Device",
        "SmartPhone",
    )
    assert device.eas_version == "14.0"  # from the binary query, not a header


def test_base64_query_with_padding_percent_encoded(alice):
    query = build_base64_query("FolderSync", "PaddedId", "Android")
    assert query.endswith("=")
    response = eas(query.replace("=", "%3D"))
    assert response.status_code == 200
    assert MobileDevice.objects.get().device_id == "PaddedId"


def test_binary_device_id_is_keyed_as_upper_case_hex(alice):
    raw = bytes.fromhex("0f1e2d3c4b5a69788796a5b4c3d2e1f0")
    response = eas(build_base64_query("Sync", raw, "WindowsMail"))
    assert response.status_code == 200
    device = MobileDevice.objects.get()
    assert device.device_id == "0F1E2D3C4B5A69788796A5B4C3D2E1F0"
    # The same device in the plain form, in another case: the same partnership.
    assert eas(plain(device_id=raw.hex(), device_type="WindowsMail")).status_code == 200
    assert MobileDevice.objects.count() == 1


def test_base64_query_naming_the_login_as_user(alice):
    query = build_base64_query("FolderSync", "B64Dev", "SmartPhone", user="alice@contoso.com")
    assert eas(query).status_code == 200
    assert MobileDevice.objects.get().mailbox == alice


@pytest.mark.parametrize(
    "query",
    [
        pytest.param("", id="empty"),
        pytest.param("!!!!", id="bad-base64-alphabet"),
        pytest.param("jAAJBAp2MTQw", id="truncated-base64"),
        pytest.param("A", id="base64-one-char"),
        pytest.param(base64.b64encode(b"\x8c\x07\x09\x04\x01X\x00\x01Y").decode(), id="cmd-code-7"),
        pytest.param(plain(cmd="Frobnicate"), id="unknown-command"),
        pytest.param("DeviceId=X1&DeviceType=iPhone&User=alice", id="missing-cmd"),
        pytest.param("Cmd=Sync&DeviceType=iPhone&User=alice", id="missing-device-id"),
        pytest.param("Cmd=Sync&DeviceId=X1&User=alice", id="missing-device-type"),
        pytest.param(plain(device_id="A" * 33), id="device-id-too-long"),
        pytest.param(plain(device_id="ab,cd"), id="device-id-comma"),
        pytest.param(plain(device_id=""), id="device-id-empty"),
        pytest.param(plain(device_type="i Phone"), id="device-type-space"),
        pytest.param(plain() + "&deviceid=OTHER", id="duplicate-parameter"),
        pytest.param(plain() + "&SaveInSent=maybe", id="bad-flag"),
        pytest.param(plain(user="al%ZZice"), id="bad-percent-escape"),
        pytest.param(plain(user="%C3%28"), id="bad-utf8"),
        pytest.param(plain() + "&junk", id="parameter-without-value"),
        pytest.param("Cmd=Sync&" + "x" * 3000, id="query-too-long"),
    ],
)
def test_malformed_query_is_400_and_records_nothing(alice, query):
    response = eas(query)
    assert response.status_code == 400
    assert "X-EAS-Access-State" not in response
    assert recorded() == NOTHING


def test_binary_device_id_longer_than_16_bytes_is_400(alice):
    assert eas(build_base64_query("Sync", b"\xff" * 17, "Phone")).status_code == 400
    assert recorded() == NOTHING


@pytest.mark.parametrize("version", ["fourteen", "14", "14.1.0", "1234.5", "14,1"])
def test_malformed_protocol_version_header_is_400(alice, version):
    assert eas(plain(), version=version).status_code == 400
    assert recorded() == NOTHING


def test_parsing_comes_before_credentials(alice):
    # Nothing about a request that is not EAS is worth a password check.
    assert eas(plain(cmd="Nope"), auth=basic("alice", "wrong")).status_code == 400


# --- bodies -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"<Provision/>", id="xml-not-wbxml"),
        pytest.param(b"\x03\x01\x6a\x00\x00\x0e\x45", id="truncated"),
        pytest.param(b"\x03\x01\x6a\x00\x00\x0e\x45\x01\x01", id="end-without-element"),
        pytest.param(b"\x02\x01\x6a\x00\x00\x0e\x05", id="wbxml-1.2"),
        pytest.param(b"\x03\x01\x04\x00\x00\x0e\x05", id="not-utf8-charset"),
        pytest.param(
            build_device_information_body("Provision", {"model": "X"}) + b"\x00", id="trailing-data"
        ),
    ],
)
@pytest.mark.parametrize("cmd", ["Provision", "Settings"])
def test_malformed_wbxml_body_is_400_and_records_nothing(alice, cmd, body):
    response = eas(plain(cmd=cmd), body=body)
    assert response.status_code == 400
    assert recorded() == NOTHING


def test_oversized_provision_body_is_413_and_records_nothing(alice):
    response = eas(plain(cmd="Provision"), body=b"\x03" * (MAX_BODY + 1))
    assert response.status_code == 413
    assert recorded() == NOTHING


def test_large_body_of_other_commands_is_not_read(alice):
    # SendMail and Sync bodies can be large attachments: the gate decides on the query.
    response = eas(plain(cmd="SendMail"), body=b"\x00" * (MAX_BODY + 1))
    assert response.status_code == 200


def test_empty_provision_body_is_fine(alice):
    assert eas(plain(cmd="Provision")).status_code == 200
    assert not MobileDevice.objects.get().device_info_received


# --- the pass-through rule --------------------------------------------------------------


REPORTING = ["Provision", "Settings"]
DENIED_WHILE_WAITING = ["FolderSync", "Sync", "Ping", "SendMail", "ItemOperations", "Search"]


@pytest.mark.parametrize("cmd", REPORTING + DENIED_WHILE_WAITING)
@pytest.mark.parametrize(
    ("level", "window", "state", "passes"),
    [
        ("Allow", None, "Allowed", set(REPORTING + DENIED_WHILE_WAITING)),
        ("Quarantine", 0, "Quarantined", set(REPORTING)),
        ("Quarantine", 15, "DeviceDiscovery", set(REPORTING)),
        ("Block", None, "Blocked", set()),
    ],
)
def test_pass_through_rule(alice, cmd, level, window, state, passes):
    set_default(level, window=window)
    # EAS 12.0: denials are plain HTTP (the phone's answers of 12.1+ and 14.0+ are
    # tests/test_gate_answers.py). An empty body: the state does not move.
    response = eas(plain(cmd=cmd), version="12.0")
    denied = 449 if state == "DeviceDiscovery" else 403  # discovery: "provision first"
    # Let through, but the standalone endpoint serves no mailbox: 200 with the command's
    # server-error status, or, for SendMail before 14.0 (no status of its own), 503.
    passed = 503 if cmd == "SendMail" else 200
    assert_decision(response, passed if cmd in passes else denied, state)
    assert MobileDevice.objects.get().access_state == state
    # The same decision through nginx's auth_request, for a device already known.
    assert_decision(eas_auth(plain(cmd=cmd)), 200 if cmd in passes else 403, state)


def test_allowed_by_the_mailbox_list_reports_individual(alice):
    set_default("Quarantine", window=0)
    actions.allow_device(ADMIN, alice, "ALICEPHONE1")
    assert_decision(eas(plain(cmd="Sync")), 200, "Allowed", "Individual")
    actions.block_device(ADMIN, alice, "ALICEPHONE1")
    assert_decision(eas(plain(cmd="Provision"), version="12.1"), 403, "Blocked", "Individual")


def test_mailbox_without_activesync_is_blocked_by_policy(alice):
    actions.set_mailbox(ADMIN, alice, activesync_enabled=False)
    assert_decision(eas(plain(cmd="Provision"), version="12.1"), 403, "Blocked", "Policy")


# --- the database is down: fail closed ------------------------------------------------


@pytest.mark.parametrize(
    "target",
    ["devices.gate.credentials.check", "devices.gate.views.actions.record_contact"],
)
def test_database_unavailable_is_503_on_every_endpoint(alice, target):
    down = OperationalError("could not connect to server")
    with mock.patch(target, side_effect=down):
        assert eas(plain()).status_code == 503
        assert eas_auth(plain()).status_code == 503
        response = Client().post(
            "/eas/observe",
            b"",
            content_type=WBXML,
            headers={
                "Authorization": basic("alice", "alice-secret"),
                "X-Original-URI": f"{GATE}?{plain()}",
            },
        )
        assert response.status_code == 503
    assert recorded() == NOTHING


@pytest.mark.usefixtures("uncached_gate")  # the uncached path: decisions.py
def test_database_unavailable_for_a_known_device_is_503(alice):
    assert eas(plain()).status_code == 200
    with mock.patch("devices.gate.lookup._fetch", side_effect=OperationalError("gone")):
        assert eas(plain()).status_code == 503


# --- nginx auth_request and mirror endpoints ------------------------------------------


def test_auth_request_decides_with_headers_only(alice):
    set_default("Quarantine", window=0)
    assert_decision(eas_auth(plain(cmd="FolderSync")), 403, "Quarantined")
    assert_decision(eas_auth(plain(cmd="Provision")), 200, "Quarantined")
    assert MobileDevice.objects.count() == 1


@pytest.mark.parametrize(
    "uri",
    [
        "",
        "/",
        "/owa/?Cmd=Sync&DeviceId=X1&DeviceType=iPhone",
        "/eas/auth?Cmd=Sync&DeviceId=X1&DeviceType=iPhone",
        "/Microsoft-Server-ActiveSyncX?Cmd=Sync&DeviceId=X1&DeviceType=iPhone",
    ],
)
def test_auth_request_refuses_a_uri_that_is_not_activesync(alice, uri):
    response = Client().get(
        "/eas/auth",
        headers={"Authorization": basic("alice", "alice-secret"), "X-Original-URI": uri},
    )
    assert response.status_code == 400
    assert recorded() == NOTHING


def test_auth_request_accepts_activesync_path_in_any_case(alice):
    response = eas_auth(plain(), path="/microsoft-server-activesync")
    assert response.status_code == 200


def test_auth_request_lets_options_through_without_credentials(db):
    response = Client().get(
        "/eas/auth", headers={"X-Original-URI": GATE, "X-Original-Method": "OPTIONS"}
    )
    assert response.status_code == 200
    assert recorded() == NOTHING


def test_auth_request_accepts_only_get(alice):
    assert Client().post("/eas/auth").status_code == 405


def test_auth_request_malformed_query_is_400(alice):
    assert eas_auth(plain(device_id="A" * 40)).status_code == 400
    assert recorded() == NOTHING


def observe(query, body, *, auth=None):
    return Client().post(
        "/eas/observe",
        body,
        content_type=WBXML,
        headers={
            "Authorization": auth or basic("alice", "alice-secret"),
            "User-Agent": "Apple-iPhone14C2/2104.61",
            "X-Original-URI": f"{GATE}?{query}",
            "X-Original-Method": "POST",
        },
    )


def test_observe_records_device_information_and_answers_204(alice):
    body = build_device_information_body("Provision", {"model": "iPhone14C2", "os": "iOS 17.1"})
    response = observe(plain(cmd="Provision"), body)
    assert response.status_code == 204
    assert response["X-EAS-Access-State"] == "Allowed"
    device = MobileDevice.objects.get()
    assert (device.device_model, device.device_os) == ("iPhone14C2", "iOS 17.1")


def test_observe_answers_204_for_a_denied_device_too(alice):
    set_default("Block")
    assert observe(plain(cmd="Sync"), b"").status_code == 204


def test_observe_refuses_bad_input(alice):
    assert Client().get("/eas/observe").status_code == 405
    assert observe(plain(cmd="Provision"), b"garbage").status_code == 400
    assert observe(plain(cmd="Sync"), b"", auth=basic("alice", "nope")).status_code == 401
    response = Client().post(
        "/eas/observe", b"", content_type=WBXML, headers={"X-Original-URI": "/elsewhere?a=b"}
    )
    assert response.status_code == 400
    assert recorded() == NOTHING


# --- never a 500 ------------------------------------------------------------------------

ALLOWED_STATUSES = {200, 400, 401, 403, 404, 405, 413, 429}


def _value(name, valid, invalid):
    # Valid values three times out of four, so that many examples get past parsing.
    return st.one_of(
        st.sampled_from(valid),
        st.sampled_from(valid),
        st.sampled_from(valid),
        st.sampled_from(invalid),
    ).map(lambda value: f"{name}={value}")


@st.composite
def _plain_queries(draw):
    pairs = [
        draw(_value("Cmd", ["Sync", "Provision", "settings", "FolderSync", "Ping"], ["Nope", ""])),
        draw(_value("DeviceId", ["FUZZ1", "fuzz1", "0F1E2D3C"], ["a" * 33, "", "a,b"])),
        draw(_value("DeviceType", ["iPhone", "EASProbeDeviceType"], ["", "i%20Phone"])),
    ]
    if draw(st.booleans()):
        pairs.append(
            draw(
                _value(
                    "User",
                    ["alice", "ALICE", "CONTOSO%5Calice", "alice%40contoso.com"],
                    ["bob", "%", "a%00"],
                )
            )
        )
    pairs += draw(
        st.just([]) | st.lists(st.sampled_from(["SaveInSent=T", "%zz", "=", "&", "x"]), max_size=2)
    )
    return "&".join(draw(st.permutations(pairs)))


_queries = st.one_of(
    _plain_queries(),
    _plain_queries(),
    st.text(max_size=80),
    st.binary(max_size=60).map(lambda b: base64.b64encode(b).decode()),
    st.builds(
        lambda cmd, device, kind, user: build_base64_query(cmd, device, kind, user=user),
        st.sampled_from(["Sync", "Provision", "Settings", "Ping"]),
        st.binary(min_size=0, max_size=20),
        st.text(alphabet="abcXYZ09._- ", max_size=10),
        st.none() | st.sampled_from(["alice", "bob", "", "CONTOSO\\alice"]),
    ),
)
_bodies = st.one_of(
    st.just(b""),
    st.binary(max_size=200),
    st.builds(lambda head, rest: head + rest, st.just(b"\x03\x01\x6a\x00"), st.binary(max_size=80)),
    st.dictionaries(
        st.sampled_from(["model", "os", "imei", "user_agent", "friendly_name"]),
        st.text(max_size=30).filter(lambda t: "\x00" not in t),
        max_size=4,
    ).map(lambda info: build_device_information_body("Provision", info)),
)
_auths = st.sampled_from(
    [
        basic("alice", "alice-secret"),
        basic("CONTOSO\\alice", "alice-secret"),
        basic("alice", "wrong"),
        "Basic !!!",
        "Bearer abc",
        "",
    ]
)


@pytest.mark.django_db
@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    query=_queries,
    body=_bodies,
    auth=_auths,
    version=st.sampled_from(["14.1", "16.1", "", "14.1", "x"]),
)
def test_random_requests_never_get_a_500(alice, query, body, auth, version):
    headers = {"MS-ASProtocolVersion": version}
    if auth:
        headers["Authorization"] = auth
    response = Client().post(GATE, body, content_type=WBXML, headers=headers, QUERY_STRING=query)
    event(f"status {response.status_code}")
    assert response.status_code in ALLOWED_STATUSES
    if response.status_code in DECISION_STATUSES:
        assert response["X-EAS-Access-State"]
        assert response["X-EAS-Access-Reason"]


@pytest.mark.parametrize(
    "query",
    [
        pytest.param(plain(user="bob"), id="not-owner"),
        pytest.param(plain(device_type="EASProbeDeviceType"), id="probe"),
        pytest.param(plain(), id="device"),
    ],
)
def test_decision_headers_are_plain_strings(alice, query):
    # wsgiref (runserver, live_server) refuses str subclasses such as an AccessState member.
    response = eas(query)
    assert type(response["X-EAS-Access-State"]) is str
    assert type(response["X-EAS-Access-Reason"]) is str
