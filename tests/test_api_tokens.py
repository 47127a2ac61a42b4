"""API tokens: storage, the Authorization header, revocation, last use, the profile
page /account/tokens/ and `eas new-api-token`."""

import hashlib
import io
import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from api import tokens
from api.models import ApiToken
from devices.models import AuditEvent
from tests import test_api_support as support

cast = support.cast  # the shared fixture

ME = "/api/v1/me"
PAGE = "/account/tokens/"


@pytest.fixture
def alice(cast):
    return cast["users"]["alice"]


def _client(header: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    return client


# ---------------------------------------------------------------------------
# storage and the header


def test_only_a_hash_and_a_prefix_are_stored(alice):
    token, key = tokens.create_token(alice, "ticket system")
    assert key.startswith("ecp_") and len(key) > 40
    row = ApiToken.objects.get(pk=token.pk)
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert row.prefix == key[:12]
    assert key not in {str(v) for v in ApiToken.objects.values().get(pk=token.pk).values()}


@pytest.mark.parametrize("keyword", ["Token", "Bearer", "token", "BEARER"])
def test_token_and_bearer_authenticate(alice, keyword):
    _, key = tokens.create_token(alice, "x")
    response = _client(f"{keyword} {key}").get(ME)
    assert response.status_code == 200
    assert response.json()["username"] == "alice"


def test_no_credentials_is_401_with_a_challenge(cast):
    response = APIClient().get(ME)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Token realm="api"'
    assert response.json() == {
        "message": "Authentication credentials were not provided.",
        "errors": {},
    }


@pytest.mark.parametrize(
    "header",
    ["Token ecp_not-a-real-key", "Token nope", "Token", "Token a b", "Bearer \u00e9t\u00e9"],
)
def test_a_bad_token_is_401(cast, header):
    response = _client(header).get(ME)
    assert response.status_code == 401
    assert response.json()["message"]


def test_a_revoked_token_is_401(alice):
    token, key = tokens.create_token(alice, "x")
    assert tokens.revoke_token(token) is True
    assert tokens.revoke_token(token) is False  # already revoked
    response = _client(f"Token {key}").get(ME)
    assert response.status_code == 401
    assert response.json()["message"] == "This API token has been revoked."


def test_the_token_of_a_disabled_login_is_401(alice):
    _, key = tokens.create_token(alice, "x")
    alice.is_active = False
    alice.save()
    assert _client(f"Token {key}").get(ME).status_code == 401


def test_last_use_is_written_at_most_once_a_minute(alice):
    token, key = tokens.create_token(alice, "x")
    client = _client(f"Token {key}")
    client.get(ME)
    first = ApiToken.objects.get(pk=token.pk).last_used_at
    assert first is not None
    client.get(ME)
    assert ApiToken.objects.get(pk=token.pk).last_used_at == first
    earlier = timezone.now() - timedelta(seconds=61)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=earlier)
    client.get(ME)
    assert ApiToken.objects.get(pk=token.pk).last_used_at > earlier


def test_a_recent_use_costs_no_write(alice):
    _, key = tokens.create_token(alice, "x")
    client = _client(f"Token {key}")
    client.get(ME)
    with CaptureQueriesContext(connection) as queries:
        client.get(ME)
    assert not [q for q in queries if q["sql"].lstrip().upper().startswith("UPDATE")]


def test_the_session_works_for_the_browser_with_csrf(alice):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.get("/api/v1/devices").status_code == 200
    response = client.post("/api/v1/devices/1/allow")
    assert response.status_code == 403
    assert "CSRF" in response.json()["message"]


# ---------------------------------------------------------------------------
# the profile page


@pytest.fixture
def page(alice):
    client = Client()
    client.force_login(alice)
    return client


def test_the_page_needs_a_login(cast):
    response = Client().get(PAGE)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_the_page_lists_only_my_tokens(cast, page):
    tokens.create_token(cast["users"]["alice"], "alice phone script")
    tokens.create_token(cast["users"]["bob"], "bob secret tool")
    body = page.get(PAGE).content.decode()
    assert "alice phone script" in body
    assert "bob secret tool" not in body


def test_a_new_token_is_shown_once_and_works(page):
    response = page.post(PAGE, {"name": "ticket system"})
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    key = response.context["new_key"]
    assert key in response.content.decode()
    token = ApiToken.objects.get(name="ticket system")
    assert token.user.username == "alice"
    assert key not in page.get(PAGE).content.decode()
    assert token.prefix in page.get(PAGE).content.decode()
    assert _client(f"Token {key}").get(ME).status_code == 200


def test_the_page_has_no_inline_script_handler_or_external_asset(page):
    body = page.post(PAGE, {"name": "x"}).content.decode()
    assert all(re.search(r'src="/static/', s) for s in re.findall(r"<script\b[^>]*>", body))
    assert not re.search(r"<script\b[^>]*>\s*[^<\s]", body)
    assert not re.search(r"\son[a-z]+\s*=", body)
    assert not re.search(r'(?:src|href)="(?:https?:)?//', body)
    assert 'style="' not in body


def test_a_too_long_name_creates_nothing(page):
    response = page.post(PAGE, {"name": "x" * 101})
    assert response.status_code == 400
    assert "at most 100" in response.content.decode()
    assert not ApiToken.objects.exists()


def test_revoking_my_token(alice, page):
    token, key = tokens.create_token(alice, "old script")
    response = page.post(f"{PAGE}{token.pk}/revoke")
    assert response.status_code == 302
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None
    assert _client(f"Token {key}").get(ME).status_code == 401
    assert "revoked" in page.get(PAGE).content.decode()


def test_someone_elses_token_cannot_be_revoked(cast, page):
    token, _ = tokens.create_token(cast["users"]["bob"], "bob's")
    assert page.post(f"{PAGE}{token.pk}/revoke").status_code == 404
    assert ApiToken.objects.get(pk=token.pk).revoked_at is None


def test_revoke_needs_post(alice, page):
    token, _ = tokens.create_token(alice, "x")
    assert page.get(f"{PAGE}{token.pk}/revoke").status_code == 405


def test_creating_and_revoking_need_the_csrf_token(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    token, _ = tokens.create_token(alice, "x")
    assert client.post(PAGE, {"name": "y"}).status_code == 403
    assert client.post(f"{PAGE}{token.pk}/revoke").status_code == 403
    assert ApiToken.objects.count() == 1


# ---------------------------------------------------------------------------
# eas new-api-token


def test_the_cli_prints_a_working_token_once(cast, capsys):
    call_command("eas", "new-api-token", "alice", "--name", "ticket system")
    key = capsys.readouterr().out.strip()
    assert key.startswith("ecp_")
    assert ApiToken.objects.get().name == "ticket system"
    assert _client(f"Token {key}").get(ME).json()["username"] == "alice"


def test_the_cli_names_an_unknown_login(cast):
    with pytest.raises(CommandError, match="No login 'nobody'"):
        call_command("eas", "new-api-token", "nobody")
    assert not ApiToken.objects.exists()


# ---------------------------------------------------------------------------
# audit: who made or revoked a token, never the key


def _token_events():
    return list(AuditEvent.objects.filter(object_type="ApiToken").order_by("id"))


def test_creating_and_revoking_a_token_on_the_page_is_audited_without_the_key(alice, page):
    key = page.post(PAGE, {"name": "ticket system"}).context["new_key"]
    token = ApiToken.objects.get(name="ticket system")
    page.post(f"{PAGE}{token.pk}/revoke")
    created, revoked = _token_events()
    assert (created.action, created.source, created.actor_name) == (
        "api_token.create",
        "ui",
        "alice",
    )
    assert revoked.action == "api_token.revoke"
    assert token.prefix in created.object_repr
    for event in (created, revoked):
        assert key not in f"{event.object_repr} {event.message} {event.before} {event.after}"


def test_a_token_made_with_the_cli_is_audited_with_source_cli(alice):
    out = io.StringIO()
    call_command("eas", "new-api-token", "alice", "--name", "nightly", stdout=out)
    (event,) = _token_events()
    assert (event.action, event.source) == ("api_token.create", "cli")
    assert out.getvalue().strip() not in event.message
