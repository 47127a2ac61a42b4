"""The ECP's HTTP security, checked rather than only configured (docs/RELIABILITY.md).

Defaults: plain http on 127.0.0.1 works (`make run`). Production
(ecp.settings_production, TLS ended by nginx): secure cookies, HSTS, https
redirects, and `manage.py check --deploy` with nothing to report.
"""

import functools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from ecp.security import CONTENT_SECURITY_POLICY

REPO = Path(__file__).resolve().parents[1]
PASSWORD = "correct horse battery staple"
PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "ecp.settings_production",
    "SECRET_KEY": "k" * 10 + "production-like-secret-key-with-enough-characters-0123456789",
    "ALLOWED_HOSTS": "ecp.example.org",
    "ECP_BASE_URL": "https://ecp.example.org",
    "DEBUG": "false",
}


@pytest.fixture
def staff(db):
    user = get_user_model().objects.create_superuser("root", "root@example.org", PASSWORD)
    client = Client()
    client.force_login(user)
    return client


# --- headers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/accounts/login/", "/Microsoft-Server-ActiveSync", "/healthz", "/api/v1/me"]
)
def test_every_response_carries_the_policy(db, path):
    response = Client().get(path)
    assert response["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


def test_the_policy_allows_no_inline_script_and_no_framing():
    directives = dict(d.strip().split(" ", 1) for d in CONTENT_SECURITY_POLICY.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"
    assert directives["base-uri"] == "'none'"
    assert "unsafe" not in CONTENT_SECURITY_POLICY


@pytest.mark.parametrize(
    "path",
    ["/", "/devices/", "/devices/quarantine/", "/rules/", "/settings/", "/notifications/"],
)
def test_the_pages_need_no_inline_script(staff, path):
    page = staff.get(path)
    assert page.status_code == 200
    assert page["X-Frame-Options"] == "DENY"
    html = page.content.decode()
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert "src=" in tag, f"inline script on {path}: {tag}"
    assert not re.search(r"\son[a-z]+\s*=", html), f"an inline event handler on {path}"


# --- cookies ---------------------------------------------------------------------------------


def sign_in(client, username="root", password=PASSWORD, **extra):
    client.get("/accounts/login/")
    return client.post("/accounts/login/", {"username": username, "password": password}, **extra)


def test_cookies_are_http_only_and_same_site_and_plain_http_works(db):
    get_user_model().objects.create_user("root", password=PASSWORD)
    client = Client()
    response = sign_in(client)
    assert response.status_code == 302
    session, csrf = client.cookies["sessionid"], client.cookies["csrftoken"]
    for cookie in (session, csrf):
        assert cookie["httponly"] is True
        assert cookie["samesite"] == "Lax"
        assert not cookie["secure"]  # the default serves http on 127.0.0.1
    assert client.get("/my/devices/").status_code == 200


def test_production_cookies_are_secure(db, settings):
    production = production_settings()
    settings.SESSION_COOKIE_SECURE = production["SESSION_COOKIE_SECURE"]
    settings.CSRF_COOKIE_SECURE = production["CSRF_COOKIE_SECURE"]
    get_user_model().objects.create_user("root", password=PASSWORD)
    client = Client()
    sign_in(client, secure=True)
    assert client.cookies["sessionid"]["secure"] is True
    assert client.cookies["csrftoken"]["secure"] is True


# --- production settings ------------------------------------------------------------------------


# The test run's own switches, which a deployment would not have: the SQLite default
# is enough for `check`, and tests/browser sets DJANGO_ALLOW_ASYNC_UNSAFE for Playwright.
NOT_DEPLOYED = ("DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE")


def deployed_env(env: dict) -> dict:
    return {k: v for k, v in {**os.environ, **env}.items() if k not in NOT_DEPLOYED}


def run_django(code: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=deployed_env(env),
        capture_output=True,
        text=True,
        timeout=120,
    )


PRINT_SETTINGS = """
import json, django
django.setup()
from django.conf import settings as s
names = ["DEBUG", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY",
         "CSRF_COOKIE_HTTPONLY", "SESSION_COOKIE_SAMESITE", "CSRF_COOKIE_SAMESITE",
         "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD",
         "SECURE_SSL_REDIRECT", "SECURE_PROXY_SSL_HEADER", "SECURE_REDIRECT_EXEMPT",
         "X_FRAME_OPTIONS", "ECP_GATE_OUTAGE_CACHE_SECONDS", "AXES_FAILURE_LIMIT"]
print(json.dumps({n: getattr(s, n) for n in names}))
"""


@functools.cache
def _production_settings(env: tuple) -> str:
    done = run_django(PRINT_SETTINGS, {**PRODUCTION_ENV, **dict(env)})
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def production_settings(**env) -> dict:
    return json.loads(_production_settings(tuple(sorted(env.items()))))


def test_production_settings_turn_every_switch_on():
    values = production_settings()
    assert values["DEBUG"] is False
    assert values["SESSION_COOKIE_SECURE"] and values["CSRF_COOKIE_SECURE"]
    assert values["SESSION_COOKIE_HTTPONLY"] and values["CSRF_COOKIE_HTTPONLY"]
    assert values["SECURE_HSTS_SECONDS"] >= 31536000
    assert values["SECURE_HSTS_INCLUDE_SUBDOMAINS"] and values["SECURE_HSTS_PRELOAD"]
    assert values["SECURE_SSL_REDIRECT"] is True
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert values["X_FRAME_OPTIONS"] == "DENY"
    assert values["ECP_GATE_OUTAGE_CACHE_SECONDS"] == 0  # fail closed unless asked
    assert values["AXES_FAILURE_LIMIT"] == 10


def test_each_production_switch_can_still_be_turned_off():
    values = production_settings(ECP_HSTS_PRELOAD="false", ECP_HSTS_SECONDS="300")
    assert values["SECURE_HSTS_PRELOAD"] is False
    assert values["SECURE_HSTS_SECONDS"] == 300


def test_production_refuses_debug():
    done = run_django("import django; django.setup()", {**PRODUCTION_ENV, "DEBUG": "true"})
    assert done.returncode != 0
    assert "DEBUG must be off" in done.stderr


def test_check_deploy_is_clean_with_the_production_settings():
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=deployed_env(PRODUCTION_ENV),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues (0 silenced)." in done.stdout


def test_the_development_defaults_are_not_deploy_clean():
    """The check does look: without the production settings it has plenty to say."""
    env = {"DJANGO_SETTINGS_MODULE": "ecp.settings", "DEBUG": "false"}
    for name in ("ECP_SECURE_COOKIES", "ECP_HSTS_SECONDS", "ECP_SSL_REDIRECT"):
        env[name] = ""
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=REPO,
        env=deployed_env(env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = done.stdout + done.stderr
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in output


@pytest.fixture
def behind_tls(settings):
    """The production values, in this process, for requests through the test client."""
    for name, value in production_settings().items():
        if name.startswith(("SECURE_", "SESSION_", "CSRF_")):
            setattr(settings, name, value)
    settings.SECURE_PROXY_SSL_HEADER = tuple(settings.SECURE_PROXY_SSL_HEADER)


def test_over_tls_the_ecp_sends_hsts(db, behind_tls):
    response = Client().get("/accounts/login/", headers={"X-Forwarded-Proto": "https"})
    assert response.status_code == 200
    hsts = response["Strict-Transport-Security"]
    assert hsts == "max-age=31536000; includeSubDomains; preload"


def test_plain_http_to_the_ecp_is_redirected_to_https(db, behind_tls):
    response = Client().get("/accounts/login/")
    assert response.status_code == 301
    assert response["Location"] == "https://testserver/accounts/login/"


@pytest.mark.parametrize("path", ["/eas/auth", "/healthz", "/Microsoft-Server-ActiveSync"])
def test_nginx_subrequests_and_probes_are_not_redirected(db, behind_tls, path):
    # nginx calls /eas/auth over loopback http, and devices must not be sent away with a 301.
    assert Client().get(path).status_code != 301


# --- open redirects ----------------------------------------------------------------------------

OFF_SITE = [
    "https://evil.example/",
    "//evil.example/",
    "/\\evil.example/",
    "https:evil.example",
    "http://testserver@evil.example/",
    "\\\\evil.example",
    " https://evil.example/",
    "javascript:alert(1)",
]


@pytest.mark.parametrize("target", OFF_SITE)
def test_sign_in_never_redirects_off_site(db, target):
    get_user_model().objects.create_user("root", password=PASSWORD)
    client = Client()
    client.get("/accounts/login/", {"next": target})
    response = client.post(
        "/accounts/login/", {"username": "root", "password": PASSWORD, "next": target}
    )
    assert response.status_code == 302
    assert response["Location"] == "/"
    response = Client().get(f"/accounts/login/?next={target}")
    assert "evil.example" not in response.get("Location", "")


def test_sign_in_follows_a_next_on_this_site(db):
    get_user_model().objects.create_user("root", password=PASSWORD)
    response = Client().post(
        "/accounts/login/",
        {"username": "root", "password": PASSWORD, "next": "/devices/quarantine/"},
    )
    assert response["Location"] == "/devices/quarantine/"


@pytest.mark.parametrize("target", OFF_SITE)
def test_sign_out_never_redirects_off_site(staff, target):
    response = staff.post("/accounts/logout/", {"next": target})
    assert response.status_code == 302
    assert not response["Location"].startswith(("http", "//", "/\\"))


@pytest.mark.parametrize("target", OFF_SITE[:3])
def test_device_actions_never_redirect_off_site(staff, target):
    from devices import actions
    from devices.actions import Contact
    from devices.audit import SYSTEM

    mailbox = actions.create_mailbox(SYSTEM, alias="alice", email="alice@example.org").obj
    device = actions.record_contact(SYSTEM, mailbox, Contact(device_id="PHONE1", device_type="X"))
    response = staff.post(f"/devices/{device.pk}/allow", {"next": target})
    assert response.status_code == 302
    assert "evil.example" not in response["Location"]
