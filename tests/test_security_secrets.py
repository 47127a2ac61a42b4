"""No Authorization header, password or API token in the logs or the audit trail.

Everything a request can log is captured at DEBUG, SQL included (queries and
their parameters), while devices sign in with Basic credentials, scripts use
API tokens, people sign in, fail, get locked out and change passwords. Then
every log record (message, arguments, extras, traceback) and every audit
event (before, after, message) is searched for each secret, in clear and in
the forms it travels in (base64 Basic credentials, the whole header).
"""

import base64
import io
import json
import logging
import traceback
from unittest import mock

import pytest
from django.core.management import call_command
from django.db import OperationalError, connection
from django.test import Client

from devices import actions
from devices.audit import SYSTEM
from devices.gate import views as gate_views
from devices.models import AuditEvent, MobileDevice

DEVICE_PASSWORD = "Dev1ce-Passw0rd-§42"
SIGN_IN_PASSWORD = "Sign1n-Passw0rd-¤17"
NEW_PASSWORD = "Brand-New-Passw0rd-#99"
CLI_PASSWORD = "Cli-Passw0rd-&31"
GATE = "/Microsoft-Server-ActiveSync"


def basic(login, password) -> str:
    return base64.b64encode(f"{login}:{password}".encode()).decode()


@pytest.fixture
def captured(caplog, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    for name in ("", "django", "django.db.backends", "django.request", "axes"):
        caplog.set_level(logging.DEBUG, logger=name)
    connection.force_debug_cursor = True  # SQL and its parameters, as with DEBUG on
    yield caplog
    connection.force_debug_cursor = False


def logged(caplog) -> list[str]:
    texts = []
    for record in caplog.records:
        texts.append(record.getMessage())
        texts.append(repr(record.args))
        texts.append(repr(vars(record)))
        if record.exc_info:
            texts.append("".join(traceback.format_exception(*record.exc_info)))
    return texts


def audited() -> list[str]:
    return [
        json.dumps([e.before, e.after, e.message, e.object_repr, e.action], default=str)
        for e in AuditEvent.objects.all()
    ]


def assert_nowhere(caplog, secrets: list[str]):
    texts = logged(caplog) + audited()
    assert len(caplog.records) > 20, "the capture caught nothing: the test would prove nothing"
    assert any("SELECT" in text for text in texts), "SQL was not captured"
    for secret in secrets:
        leaks = [text[:300] for text in texts if secret in text]
        assert not leaks, f"{secret!r} leaked into: {leaks[:3]}"


def device_secrets(login, password):
    token = basic(login, password)
    return [password, token, f"Basic {token}"]


def test_gate_credentials_never_reach_logs_or_audit(db, captured, settings):
    actions.create_mailbox(
        SYSTEM, alias="alice", email="alice@example.org", password=DEVICE_PASSWORD
    )
    actions.set_org_settings(SYSTEM, default_access_level="Quarantine")

    def sync(password, *, device="PHONE1", path=GATE, addr="192.0.2.1"):
        headers = {"Authorization": f"Basic {basic('alice', password)}", "X-Real-IP": addr}
        query = f"Cmd=Provision&User=alice&DeviceId={device}&DeviceType=iPhone"
        if path == "/eas/auth":
            headers["X-Original-URI"] = f"{GATE}?{query}"
            return Client().get(path, headers=headers)
        return Client().post(
            path,
            b"",
            content_type="application/vnd.ms-sync.wbxml",
            headers=headers,
            QUERY_STRING=query,
        )

    assert sync(DEVICE_PASSWORD).status_code == 200  # a new partnership, audited
    assert sync(DEVICE_PASSWORD, path="/eas/auth").status_code == 200
    for i in range(12):  # wrong, then throttled
        assert sync(f"{DEVICE_PASSWORD}-wrong{i}").status_code in (401, 429)
    settings.ECP_GATE_OUTAGE_CACHE_SECONDS = 60
    actions.allow_device(SYSTEM, MobileDevice.objects.get().mailbox, "PHONE1")
    assert sync(DEVICE_PASSWORD, addr="192.0.2.2").status_code == 200
    with mock.patch.object(gate_views, "decide_request", side_effect=OperationalError("down")):
        assert sync(DEVICE_PASSWORD, addr="192.0.2.2").status_code == 200  # outage cache
        assert sync(DEVICE_PASSWORD, device="PHONE2", addr="192.0.2.2").status_code == 503
    with mock.patch.object(gate_views, "_verdict", side_effect=RuntimeError("bug")):
        client = Client(raise_request_exception=False)
        response = client.post(
            GATE,
            b"",
            content_type="application/vnd.ms-sync.wbxml",
            headers={"Authorization": f"Basic {basic('alice', DEVICE_PASSWORD)}"},
            QUERY_STRING="Cmd=Sync&User=alice&DeviceId=PHONE1&DeviceType=iPhone",
        )
        assert response.status_code == 500  # logged with its traceback and request

    assert_nowhere(
        captured,
        device_secrets("alice", DEVICE_PASSWORD) + [f"{DEVICE_PASSWORD}-wrong0"],
    )


def test_the_500_report_hides_the_authorization_header(db, settings):
    from django.test import RequestFactory
    from django.views.debug import ExceptionReporter

    request = RequestFactory().post(
        GATE, headers={"Authorization": f"Basic {basic('alice', DEVICE_PASSWORD)}"}
    )
    try:
        raise RuntimeError("bug")
    except RuntimeError as exc:
        report = ExceptionReporter(request, type(exc), exc, exc.__traceback__)
        text = report.get_traceback_text() + report.get_traceback_html()
    for secret in device_secrets("alice", DEVICE_PASSWORD):
        assert secret not in text


def test_api_tokens_never_reach_logs_or_audit(db, captured):
    from django.contrib.auth.models import Group

    from devices.permissions import ORG_MANAGEMENT_GROUP

    admin = actions.create_mailbox(
        SYSTEM, alias="olivia", email="olivia@example.org", password=SIGN_IN_PASSWORD
    ).obj.user
    admin.groups.add(Group.objects.get_or_create(name=ORG_MANAGEMENT_GROUP)[0])
    box = actions.create_mailbox(SYSTEM, alias="bob", email="bob@example.org").obj
    device = actions.record_contact(
        SYSTEM, box, actions.Contact(device_id="BOBPHONE", device_type="iPhone")
    )

    page = Client()
    page.force_login(admin)
    response = page.post("/account/tokens/", {"name": "script"})
    key = response.context["new_key"]
    assert key and key in response.content.decode()  # shown once, on the page

    api = Client(headers={"Authorization": f"Token {key}"})
    assert api.get("/api/v1/me").status_code == 200
    assert api.post(f"/api/v1/devices/{device.pk}/allow").status_code == 200
    assert (
        Client(headers={"Authorization": f"Bearer {key}"}).get("/api/v1/devices").status_code == 200
    )
    assert Client(headers={"Authorization": f"Token {key}x"}).get("/api/v1/me").status_code == 401
    token_pk = response.context["tokens"][0].pk
    page.post(f"/account/tokens/{token_pk}/revoke")
    assert api.get("/api/v1/me").status_code == 401

    out = io.StringIO()
    call_command("eas", "new-api-token", "olivia", stdout=out)
    [cli_key] = [word for word in out.getvalue().split() if word.startswith("ecp_")]

    # The whole keys, and all of a key past the prefix that is logged on purpose.
    secrets = [key, f"Token {key}", key[12:], cli_key]
    assert_nowhere(captured, secrets)


def test_passwords_never_reach_logs_or_audit(db, captured):
    actions.create_mailbox(
        SYSTEM, alias="alice", email="alice@example.org", password=SIGN_IN_PASSWORD
    )
    call_command(
        "eas",
        "new-mailbox",
        "carol",
        "--email",
        "carol@example.org",
        "--password",
        CLI_PASSWORD,
        stdout=mock.Mock(),
    )

    def sign_in(password, addr="192.0.2.10"):
        client = Client(headers={"X-Real-IP": addr})
        return client, client.post("/accounts/login/", {"username": "alice", "password": password})

    for i in range(11):  # failures, then the lockout
        sign_in(f"{SIGN_IN_PASSWORD}-guess{i}")
    client, response = sign_in(SIGN_IN_PASSWORD, addr="192.0.2.11")
    assert response.status_code == 302

    wrong = client.post(
        "/accounts/password/",
        {"old_password": "not-it", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert wrong.status_code == 200
    changed = client.post(
        "/accounts/password/",
        {
            "old_password": SIGN_IN_PASSWORD,
            "new_password1": NEW_PASSWORD,
            "new_password2": NEW_PASSWORD,
        },
    )
    assert changed.status_code == 302
    assert sign_in(NEW_PASSWORD, addr="192.0.2.12")[1].status_code == 302

    assert_nowhere(
        captured,
        [SIGN_IN_PASSWORD, NEW_PASSWORD, CLI_PASSWORD, f"{SIGN_IN_PASSWORD}-guess0"],
    )
