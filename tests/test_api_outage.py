"""The API during a database outage: JSON in the error shape, 503, never Django's HTML 500.

The connection really fails: the test points the default connection at a
loopback port where nothing listens, so every query of the request (token
lookup, session load, the view's own, the session save in the middleware)
raises OperationalError as it would with PostgreSQL down.
tests/integration/test_faults_postgres.py does the same against gunicorn with
the cluster stopped.
"""

import json
import socket
from contextlib import contextmanager

import pytest
from django.contrib.auth.models import User
from django.db import connection
from rest_framework.test import APIClient

from api import tokens
from api.exceptions import server_error
from tests.conftest import need_service


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def login(transactional_db):
    need_service(
        "PostgreSQL",
        connection.vendor == "postgresql",
        "the outage is a refused PostgreSQL connection (set DATABASE_URL)",
    )
    return User.objects.create_user("olivia", "olivia@example.org", "pw", is_superuser=True)


@contextmanager
def refused_connections():
    """Every new connection of the default database is refused until the block ends."""
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict.update(HOST="127.0.0.1", PORT=str(free_port()))
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)


@pytest.fixture
def token_client(login):
    _, key = tokens.create_token(login, "outage")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/v1/me").status_code == 200
    with refused_connections():
        yield client


@pytest.fixture
def session_client(login):
    # The middleware's failure reaches Django's handler: see its answer, not the exception.
    client = APIClient(raise_request_exception=False)
    client.force_login(login)
    assert client.get("/api/v1/me").status_code == 200
    with refused_connections():
        yield client


def assert_unavailable(response):
    assert response.status_code == 503, response.content[:300]
    assert response["Content-Type"] == "application/json"
    assert response["Retry-After"] == "30"
    body = response.json()
    assert body == {"message": "The database is unavailable; try again shortly.", "errors": {}}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/devices"),
        ("get", "/api/v1/me"),
        ("post", "/api/v1/rules"),
        ("get", "/api/v1/org-settings"),
    ],
)
def test_token_requests_answer_json_503(token_client, method, path):
    assert_unavailable(getattr(token_client, method)(path, {}, format="json"))


def test_a_session_request_answers_json_503(session_client):
    assert_unavailable(session_client.get("/api/v1/devices"))


def test_a_failure_in_the_session_middleware_answers_json_503(settings, session_client):
    """The session is saved after the view, outside DRF: the fallback handler answers."""
    settings.SESSION_SAVE_EVERY_REQUEST = True
    client = session_client
    assert_unavailable(client.get("/api/v1/devices"))
    assert_unavailable(client.get("/api/no-such-endpoint"))


def test_an_anonymous_request_needs_no_database(login):
    with refused_connections():
        response = APIClient().get("/api/v1/devices")
    assert response.status_code == 401
    assert set(response.json()) == {"message", "errors"}


def test_the_fallback_handler_keeps_the_shape_for_other_errors(rf):
    """Not an outage: a JSON 500 under /api/, Django's own page elsewhere."""
    try:
        raise RuntimeError("a bug")
    except RuntimeError:
        api = server_error(rf.get("/api/v1/devices"))
        page = server_error(rf.get("/devices/"))
    assert (api.status_code, api["Content-Type"]) == (500, "application/json")
    assert json.loads(api.content) == {"message": "Internal server error.", "errors": {}}
    assert page.status_code == 500 and page["Content-Type"].startswith("text/html")
