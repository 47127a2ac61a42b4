"""A NUL (or another control) in what a client sends never looks like a database outage.

PostgreSQL refuses NUL in text; the gate used to read the DataError as "database
unavailable" and answer 503, so anyone could make monitoring believe the
database was down (issue 16, item 5). Credentials with a control character are
401, query/header/body fields 400, and only a real connection failure is 503.
"""

import base64
from unittest import mock

import pytest
from django.core.cache import cache
from django.db import DataError, OperationalError
from django.test import Client

from devices import actions, evaluation
from devices.audit import Actor
from devices.eas import Element, build_device_information_body, encode
from devices.models import AuditEvent, AuditSource, MobileDevice
from tests.web.conftest import build_world

GATE = "/Microsoft-Server-ActiveSync"
WBXML = "application/vnd.ms-sync.wbxml"
ADMIN = Actor(source=AuditSource.CLI)
QUERY = "Cmd=Provision&DeviceId=ALICEPHONE1&DeviceType=iPhone&User=alice"


@pytest.fixture(autouse=True)
def _fresh_gate(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()
    evaluation._compiled = None
    yield
    cache.clear()


@pytest.fixture
def alice(db):
    return actions.create_mailbox(
        ADMIN, alias="alice", email="alice@contoso.com", password="alice-secret"
    ).obj


def basic(login: str, password: str) -> str:
    raw = f"{login}:{password}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def gate(*, auth=None, body=b"", query=QUERY, **headers):
    headers = {"Authorization": auth or basic("alice", "alice-secret"), **headers}
    return Client().post(GATE, body, content_type=WBXML, headers=headers, QUERY_STRING=query)


def eas_auth(*, auth=None, query=QUERY):
    return Client().get(
        "/eas/auth",
        headers={
            "Authorization": auth or basic("alice", "alice-secret"),
            "X-Original-URI": f"{GATE}?{query}",
            "X-Original-Method": "POST",
        },
    )


HOSTILE_CREDENTIALS = [
    ("ali\x00ce", "alice-secret"),
    ("\x00", "x"),
    ("alice", "alice-\x00secret"),
    ("alice\x1b[2J", "alice-secret"),
    ("alice\r\nX-Injected: 1", "alice-secret"),
    ("ali\x85ce", "alice-secret"),
    ("CONTOSO\\al\x00ice", "alice-secret"),
    ("al\x00ice@contoso.com", "alice-secret"),
]


@pytest.mark.django_db
@pytest.mark.parametrize("login,password", HOSTILE_CREDENTIALS)
def test_a_control_character_in_the_credentials_is_401_not_503(alice, login, password):
    for response in (gate(auth=basic(login, password)), eas_auth(auth=basic(login, password))):
        assert response.status_code == 401, response.content
        assert response["WWW-Authenticate"].startswith("Basic")
    assert not MobileDevice.objects.exists()


@pytest.mark.django_db
def test_the_real_user_still_signs_in_afterwards(alice):
    for _ in range(3):
        gate(auth=basic("ali\x00ce", "alice-secret"))
    assert gate().status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("user_agent", ["Apple\x00iPhone", "Apple-iPhone\x1b", "UA\x7f", "UA\x85"])
def test_a_control_character_in_the_user_agent_is_400(alice, user_agent):
    # Django's test client sends str headers as they are; WSGI would hand over latin-1.
    response = gate(**{"User-Agent": user_agent})
    assert response.status_code == 400, response.content
    assert not MobileDevice.objects.exists()


@pytest.mark.django_db
def test_a_nul_in_x_request_id_is_replaced_not_stored(alice):
    response = gate(**{"X-Request-ID": "abc\x00def"})
    assert response.status_code == 200, response.content
    event = AuditEvent.objects.get(action="device.create")
    assert "\x00" not in event.request_id and len(event.request_id) == 32


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["iPhone\u2028X", "iPhone\x9b", b"iPhone\x00X"])
def test_a_control_character_in_device_information_is_400(alice, value):
    if isinstance(value, bytes):  # a NUL cannot be inline (STR_I): send it as OPAQUE
        model = Element("Settings:Model", [value])
        device_set = Element("Settings:Set", [model])
        info = Element("Settings:DeviceInformation", [device_set])
        body = encode(Element("Provision:Provision", [info]))
    else:
        body = build_device_information_body("Provision", {"model": value})
    response = gate(body=body)
    assert response.status_code == 400, response.content
    assert not MobileDevice.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["Cmd=Sync&DeviceId=A%00B&DeviceType=iPhone", "Cmd=Sync%00"])
def test_a_nul_in_the_query_is_400(alice, query):
    assert gate(query=query).status_code == 400
    assert eas_auth(query=query).status_code == 400


# --- only a connection failure is an outage (a unit test of the view's mapping) --------


@pytest.mark.django_db
def test_a_data_error_is_not_answered_as_an_outage(alice):
    with (
        mock.patch.object(actions, "record_contact", side_effect=DataError("NUL")),
        pytest.raises(DataError),
    ):
        gate()


@pytest.mark.django_db
def test_a_connection_failure_is_still_503(alice):
    with mock.patch.object(actions, "record_contact", side_effect=OperationalError("gone")):
        response = gate()
    assert response.status_code == 503
    assert response["Retry-After"] == "30"


# --- the same class of bug in the panel and the API -------------------------------------


@pytest.fixture
def world(db):
    return build_world()


def signed_in(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "/devices/?q=a%00b",
        "/devices/quarantine/?q=%00",
        "/mailboxes/?q=%00",
        "/audit/?actor=%00",
        "/devices/?mailbox=%00",
    ],
)
def test_a_nul_in_a_panel_filter_is_no_server_error(world, url):
    response = signed_in(world.org).get(url)
    assert response.status_code in (200, 400), response.status_code


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/devices?q=a%00b",
        "/api/v1/devices?mailbox=%00",
        "/api/v1/mailboxes?q=%00",
        "/api/v1/audit-events?actor=%00",
        "/api/v1/notifications?recipient=%00",
    ],
)
def test_a_nul_in_an_api_filter_is_400_json(world, url):
    response = signed_in(world.org).get(url)
    assert response.status_code in (200, 400), response.status_code
    assert response["Content-Type"].startswith("application/json")


@pytest.mark.django_db
def test_a_nul_in_x_request_id_on_a_panel_action_is_not_stored(world):
    client = signed_in(world.org)
    response = client.post(
        f"/devices/{world.carol_phone.pk}/allow", headers={"X-Request-ID": "a\x00b"}
    )
    assert response.status_code in (200, 302)
    event = AuditEvent.objects.filter(action__startswith="device.allow").latest("id")
    assert "\x00" not in event.request_id


@pytest.mark.django_db
def test_a_nul_in_an_api_body_is_400_json(world):
    response = signed_in(world.org).post(
        "/api/v1/access-check",
        {"mailbox": "ali\x00ce", "device_id": "X1", "device_type": "iPhone"},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
