"""ECP_BASE_URL follows the server (issue 17, point 2).

`make run PORT=8101` links mails to port 8101, `eas simulate-device` sends to
ECP_BASE_URL by default, and the production settings warn at start-up when
ECP_BASE_URL's host is not one the server answers for.
"""

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from devices import actions
from devices.audit import Actor
from devices.models import AuditSource, MobileDevice
from ecp.checks import base_url_host_warnings

ROOT = Path(__file__).resolve().parents[1]
PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "ecp.settings_production",
    "SECRET_KEY": "k" * 10 + "production-like-secret-key-with-enough-characters-0123456789",
    "ALLOWED_HOSTS": "ecp.example.org",
    "DEBUG": "false",
}
NOT_DEPLOYED = ("DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE", "ECP_BASE_URL")


def deployed_env(**env) -> dict:
    base = {k: v for k, v in os.environ.items() if k not in NOT_DEPLOYED}
    return {**base, **PRODUCTION_ENV, **env}


# --- make run -----------------------------------------------------------------------------


@pytest.fixture
def fake_venv(tmp_path):
    """A venv whose python and gunicorn print the ECP_BASE_URL they were started with."""
    (tmp_path / "bin").mkdir()
    for name in ("python", "gunicorn"):
        tool = tmp_path / "bin" / name
        tool.write_text('#!/bin/sh\necho "$(basename "$0") ECP_BASE_URL=$ECP_BASE_URL"\n')
        tool.chmod(0o755)
    return tmp_path


def make_run(venv, *args, **env) -> list[str]:
    environment = {k: v for k, v in os.environ.items() if k != "ECP_BASE_URL"}
    done = subprocess.run(
        ["make", "-s", "-o", "venv", "-o", "migrate", "run", f"VENV={venv}", *args],
        cwd=ROOT,
        env={**environment, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_make_run_links_mails_to_its_own_port(fake_venv):
    lines = make_run(fake_venv, "PORT=8101")
    assert "gunicorn ECP_BASE_URL=http://127.0.0.1:8101" in lines
    assert "python ECP_BASE_URL=http://127.0.0.1:8101" in lines  # seed-demo's mails too
    assert any("links in mails: http://127.0.0.1:8101/" in line for line in lines)


def test_make_run_keeps_an_ecp_base_url_that_is_set(fake_venv):
    lines = make_run(fake_venv, "PORT=8101", ECP_BASE_URL="https://ecp.example.org")
    assert "gunicorn ECP_BASE_URL=https://ecp.example.org" in lines


def test_the_readme_names_port():
    readme = (ROOT / "README.md").read_text()
    assert "make run HOST=0.0.0.0 PORT=8101" in readme
    assert "`ECP_BASE_URL` defaults to `http://HOST:PORT`" in readme


# --- simulate-device ------------------------------------------------------------------------


def test_simulate_device_sends_to_ecp_base_url_by_default(transactional_db, live_server, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.ECP_BASE_URL = live_server.url
    actions.create_mailbox(
        Actor(source=AuditSource.CLI), alias="alice", email="alice@contoso.com", password="pw-1"
    )
    out = io.StringIO()
    call_command(
        "eas",
        "simulate-device",
        "--user",
        "alice",
        "--password",
        "pw-1",
        "--device-id",
        "SIMPHONE1",
        "--format",
        "json",
        stdout=out,
    )
    assert f'"url": "{live_server.url}/Microsoft-Server-ActiveSync"' in out.getvalue()
    assert MobileDevice.objects.get().device_id == "SIMPHONE1"


# --- the production warning -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("base_url", "allowed_hosts"),
    [
        ("https://ecp.example.org", ["ecp.example.org"]),
        ("https://ECP.example.org:8443/", ["ecp.example.org"]),
        ("https://ecp.example.org", [".example.org"]),
        ("https://ecp.example.org", ["*"]),
        ("http://[::1]:8000", ["[::1]"]),
    ],
)
def test_no_warning_when_the_host_is_served(settings, base_url, allowed_hosts):
    settings.ECP_CHECK_BASE_URL_HOST = True
    settings.ECP_BASE_URL = base_url
    settings.ALLOWED_HOSTS = allowed_hosts
    assert base_url_host_warnings() == []


@pytest.mark.parametrize(
    ("base_url", "allowed_hosts"),
    [
        ("http://127.0.0.1:8000", ["ecp.example.org"]),
        ("https://ecp.example.org.evil.test", ["ecp.example.org"]),
        ("https://ecp.example.org", []),
    ],
)
def test_a_warning_when_the_host_is_not_served(settings, base_url, allowed_hosts):
    settings.ECP_CHECK_BASE_URL_HOST = True
    settings.ECP_BASE_URL = base_url
    settings.ALLOWED_HOSTS = allowed_hosts
    (warning,) = base_url_host_warnings()
    assert warning.id == "ecp.W001"
    assert base_url in warning.msg
    assert "ALLOWED_HOSTS" in warning.msg


def test_the_development_settings_do_not_warn(settings):
    settings.ECP_BASE_URL = "http://127.0.0.1:8101"
    settings.ALLOWED_HOSTS = ["example.org"]
    assert base_url_host_warnings() == []


def test_manage_py_check_warns_in_production():
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=deployed_env(ECP_BASE_URL="http://127.0.0.1:8000"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "ecp.W001" in done.stderr
    assert "http://127.0.0.1:8000" in done.stderr


def test_manage_py_check_is_quiet_when_the_host_is_served():
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=deployed_env(ECP_BASE_URL="https://ecp.example.org"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def test_the_wsgi_start_up_logs_the_warning():
    """gunicorn runs no system checks: loading ecp.wsgi logs the warning instead."""
    done = subprocess.run(
        [sys.executable, "-c", "import ecp.wsgi"],
        cwd=ROOT,
        env=deployed_env(ECP_BASE_URL="http://127.0.0.1:8000"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "WARNING ecp ECP_BASE_URL (http://127.0.0.1:8000)" in done.stderr
