"""The gate's paths skip the panel's middleware (devices/gate/shortcut.py, issue 19),
and answer with the same headers as through the whole stack."""

from unittest import mock

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.http import HttpResponse

from devices import actions
from devices.gate import shortcut
from tests.test_gate_recording import ADMIN, GATE, WBXML, basic, eas, eas_auth, plain

SHORTCUT = "devices.gate.shortcut.GateShortcut"


@pytest.fixture
def alice(db):
    return actions.create_mailbox(
        ADMIN, alias="alice", email="alice@contoso.com", password="alice-secret"
    ).obj


@pytest.fixture(autouse=True)
def _fresh(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()
    yield
    cache.clear()


def headers(response) -> dict:
    return {k: v for k, v in response.headers.items() if k.lower() != "date"}


def test_the_shortcut_is_in_the_settings():
    assert SHORTCUT in django_settings.MIDDLEWARE


@pytest.mark.parametrize(
    "request_",
    [
        pytest.param(lambda: eas(), id="allowed"),
        pytest.param(lambda: eas(version="12.0", user_agent=None), id="no-user-agent"),
        pytest.param(lambda: eas_auth(), id="auth-request"),
        pytest.param(lambda: eas(plain(device_id="")), id="bad-request"),
    ],
)
def test_a_gate_answer_has_the_headers_the_whole_stack_gives(alice, settings, request_):
    settings.ECP_DECISION_CACHE_SECONDS = 0
    short = request_()
    settings.MIDDLEWARE = [m for m in django_settings.MIDDLEWARE if m != SHORTCUT]
    whole = request_()
    assert (short.status_code, headers(short), short.content) == (
        whole.status_code,
        headers(whole),
        whole.content,
    )
    assert short["X-Frame-Options"] == "DENY"
    assert "Content-Security-Policy" in short
    assert short["X-Content-Type-Options"] == "nosniff"


def test_a_wrong_password_is_a_challenge_either_way(alice, client):
    response = client.post(
        GATE, b"", content_type=WBXML, headers={"Authorization": basic("alice", "wrong")},
        QUERY_STRING=plain(),
    )  # fmt: skip
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic")


@pytest.mark.parametrize(
    "path",
    [
        *("/Microsoft-Server-ActiveSync", "/microsoft-server-activesync/"),
        *("/MICROSOFT-SERVER-ACTIVESYNC", "/eas/auth", "/eas/observe", "/eas/answer"),
    ],
)
def test_the_gate_paths_skip_sessions_and_the_signed_in_user(client, path):
    seen = {}

    def probe(request):
        seen["session"] = hasattr(request, "session")
        seen["user"] = hasattr(request, "user")
        return HttpResponse("probed")

    views = dict.fromkeys(shortcut.GATE_VIEWS, probe)
    with mock.patch.dict(shortcut.GATE_VIEWS, views):
        response = client.get(path)
    assert (response.status_code, response.content) == (200, b"probed")
    assert seen == {"session": False, "user": False}


@pytest.mark.parametrize("path", ["/eas/auth/", "/EAS/AUTH", "/eas/Observe", "/eas/nothing"])
def test_other_spellings_are_routed_as_the_whole_stack_routes_them(db, client, settings, path):
    short = client.get(path).status_code
    settings.MIDDLEWARE = [m for m in django_settings.MIDDLEWARE if m != SHORTCUT]
    assert short == client.get(path).status_code == 404


def test_other_paths_take_the_whole_stack(db, client):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert "csrftoken" in response.cookies  # CSRF middleware ran
