"""eas simulate-device: a real ActiveSync request over HTTP to a running gate (live_server)."""

import io
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.core.management.base import CommandError

from devices import actions, evaluation
from devices.audit import Actor
from devices.models import AuditSource, MobileDevice

ADMIN = Actor(source=AuditSource.CLI)
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _fresh_gate(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()
    evaluation._compiled = None
    yield
    cache.clear()


@pytest.fixture
def alice(transactional_db):
    actions.create_mailbox(ADMIN, alias="bob", email="bob@contoso.com")
    return actions.create_mailbox(
        ADMIN, alias="alice", email="alice@contoso.com", password="alice-secret"
    ).obj


def simulate(live_server, *args, password="alice-secret") -> str:
    out = io.StringIO()
    options = ["--url", live_server.url, "--user", "alice"]
    if password is not None:
        options += ["--password", password]
    call_command("eas", "simulate-device", *options, *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_allowed_device(alice, live_server):
    out = simulate(live_server, "--device-id", "SIMPHONE1", "--device-type", "iPhone")
    # The standalone endpoint serves no mailbox: FolderSync's own server error.
    assert out.splitlines() == [
        "HTTP 200 OK",
        "X-EAS-Access-State: Allowed",
        "X-EAS-Access-Reason: Global",
        "<FolderHierarchy:FolderSync>",
        "  <FolderHierarchy:Status>6</FolderHierarchy:Status>",
        "</FolderHierarchy:FolderSync>",
    ]
    device = MobileDevice.objects.get()
    assert (device.mailbox, device.device_id, device.device_type) == (alice, "SIMPHONE1", "iPhone")
    assert (device.user_agent, device.eas_version) == ("ECP-simulate-device/1.0", "14.1")


def test_a_quarantined_device_is_a_403_answer_not_an_error(alice, live_server):
    actions.set_org_settings(ADMIN, default_access_level="Quarantine", discovery_window_minutes=0)
    out = simulate(live_server, "--device-id", "SIMPHONE1", "--protocol-version", "12.0")
    assert out.splitlines()[:3] == [
        "HTTP 403 Forbidden",
        "X-EAS-Access-State: Quarantined",
        "X-EAS-Access-Reason: Global",
    ]
    out = simulate(live_server, "--device-id", "SIMPHONE1", "--command", "provision")
    assert out.splitlines()[:2] == ["HTTP 200 OK", "X-EAS-Access-State: Quarantined"]


def test_provision_with_device_information(alice, live_server):
    out = simulate(
        live_server,
        *("--device-id", "SIMPHONE2", "--device-type", "Android", "--command", "Provision"),
        *("--model", "SM-S918B", "--os", "Android 14", "--imei", "351234567890123"),
        *("--friendly-name", "Galaxy S23", "--os-language", "en-GB"),
        *("--phone-number", "+441632960000", "--mobile-operator", "Vodafone UK"),
        *("--user-agent", "Android-Mail/2023.10"),
    )
    assert out.splitlines()[0] == "HTTP 200 OK"
    device = MobileDevice.objects.get()
    assert device.device_info_received
    assert (device.device_model, device.device_os, device.imei) == (
        "SM-S918B",
        "Android 14",
        "351234567890123",
    )
    assert (device.friendly_name, device.device_os_language) == ("Galaxy S23", "en-GB")
    assert (device.phone_number, device.mobile_operator) == ("+441632960000", "Vodafone UK")
    assert device.user_agent == "Android-Mail/2023.10"


def test_settings_with_device_information(alice, live_server):
    simulate(
        live_server,
        *("--device-id", "SIMPHONE3", "--command", "Settings", "--model", "iPad13,4"),
    )
    assert MobileDevice.objects.get().device_model == "iPad13,4"


def test_the_base64_query_form(alice, live_server):
    out = simulate(
        live_server,
        *("--device-id", "B64SIM", "--device-type", "WP8", "--base64"),
        *("--protocol-version", "14.0", "--command", "Provision", "--model", "Lumia 950"),
    )
    assert out.splitlines()[0] == "HTTP 200 OK"
    device = MobileDevice.objects.get()
    assert (device.device_id, device.device_type, device.eas_version) == ("B64SIM", "WP8", "14.0")
    assert device.device_model == "Lumia 950"


def test_wrong_password_shows_the_challenge(alice, live_server):
    out = simulate(live_server, "--device-id", "SIMPHONE1", password="wrong")
    lines = out.splitlines()
    assert lines[0] == "HTTP 401 Unauthorized"
    assert lines[1:3] == ["X-EAS-Access-State: -", "X-EAS-Access-Reason: -"]
    assert lines[3].startswith("WWW-Authenticate: Basic")
    assert not MobileDevice.objects.exists()


def test_no_password_sends_no_credentials(alice, live_server, monkeypatch):
    monkeypatch.delenv("EAS_PASSWORD", raising=False)
    out = simulate(live_server, "--device-id", "SIMPHONE1", password=None)
    assert out.splitlines()[0] == "HTTP 401 Unauthorized"


def test_password_from_the_environment(alice, live_server, monkeypatch):
    monkeypatch.setenv("EAS_PASSWORD", "alice-secret")
    out = simulate(live_server, "--device-id", "SIMPHONE1", password=None)
    assert out.splitlines()[0] == "HTTP 200 OK"


def test_another_users_mailbox(alice, live_server):
    out = simulate(live_server, "--device-id", "SIMPHONE1", "--mailbox", "bob")
    assert out.splitlines() == [
        "HTTP 403 Forbidden",
        "X-EAS-Access-State: Blocked",
        "X-EAS-Access-Reason: MailboxNotOwned",
    ]
    assert not MobileDevice.objects.exists()


def test_login_as_domain_alias(alice, live_server):
    out = io.StringIO()
    call_command(
        "eas",
        "simulate-device",
        *("--url", live_server.url, "--user", "CONTOSO\\alice", "--password", "alice-secret"),
        *("--device-id", "SIMPHONE1"),
        stdout=out,
    )
    assert out.getvalue().splitlines()[0] == "HTTP 200 OK"
    assert MobileDevice.objects.get().mailbox == alice


def test_json_output(alice, live_server):
    out = simulate(live_server, "--device-id", "SIMPHONE1", "--format", "json")
    assert json.loads(out) == [
        {
            "url": f"{live_server.url}/Microsoft-Server-ActiveSync",
            "command": "FolderSync",
            "device_id": "SIMPHONE1",
            "status": 200,
            "access_state": "Allowed",
            "access_reason": "Global",
            "reply": "<FolderHierarchy:FolderSync>\n"
            "  <FolderHierarchy:Status>6</FolderHierarchy:Status>\n"
            "</FolderHierarchy:FolderSync>",
        }
    ]


def test_url_may_name_the_activesync_path(alice, live_server):
    out = io.StringIO()
    call_command(
        "eas",
        "simulate-device",
        *("--url", f"{live_server.url}/Microsoft-Server-ActiveSync/", "--user", "alice"),
        *("--password", "alice-secret", "--device-id", "SIMPHONE1"),
        stdout=out,
    )
    assert out.getvalue().startswith("HTTP 200 OK")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--command", "Frobnicate"], "Unknown ActiveSync command"),
        (["--model", "X"], "needs --command Provision or Settings"),
        (["--command", "Find", "--base64"], "no code in the base64 query form"),
    ],
)
def test_bad_options_are_errors_and_send_nothing(alice, live_server, args, message):
    with pytest.raises(CommandError, match=message):
        simulate(live_server, "--device-id", "SIMPHONE1", *args)
    assert not MobileDevice.objects.exists()


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/", "file:///etc/passwd", "127.0.0.1:8000"])
def test_only_http_urls(db, url):
    with pytest.raises(CommandError, match="--url must be an http"):
        call_command("eas", "simulate-device", "--url", url, "--user", "a", "--device-id", "X1")


def test_a_connection_error_is_an_error(db):
    url = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(CommandError, match="cannot reach"):
        call_command("eas", "simulate-device", "--url", url, "--user", "a", "--device-id", "X1")


def run_eas(*args):
    return subprocess.run(
        [sys.executable, "manage.py", "eas", "simulate-device", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_exit_status_from_the_command_line(alice, live_server):
    common = ("--url", live_server.url, "--user", "alice", "--password", "alice-secret")
    actions.set_org_settings(ADMIN, default_access_level="Block")
    answered = run_eas(*common, "--device-id", "CLIPHONE", "--protocol-version", "12.1")
    assert answered.returncode == 0, answered.stderr
    assert answered.stdout.splitlines()[:2] == ["HTTP 403 Forbidden", "X-EAS-Access-State: Blocked"]

    failed = run_eas(
        "--url", f"http://127.0.0.1:{closed_port()}", "--user", "a", "--device-id", "X"
    )
    assert failed.returncode != 0
    assert failed.stdout == ""
    [line] = failed.stderr.strip().splitlines()
    assert line.startswith("eas: error: cannot reach http://127.0.0.1:")


def test_sync_shows_the_quarantine_notice_arriving(alice, live_server):
    actions.set_org_settings(
        ADMIN,
        default_access_level="Quarantine",
        discovery_window_minutes=0,
        user_mail_insert="Ring the helpdesk on 1234.",
    )
    out = simulate(live_server, "--device-id", "SIMPHONE9", "--command", "Sync")
    lines = out.splitlines()
    assert lines[:3] == [
        "HTTP 200 OK",
        "X-EAS-Access-State: Quarantined",
        "X-EAS-Access-Reason: Global",
    ]
    assert "<AirSync:Sync>" in lines
    assert any("<Email:Subject>" in line and "waiting for approval" in line for line in lines)
    assert "Ring the helpdesk on 1234." in out


def test_a_blocked_device_shows_status_129(alice, live_server):
    actions.set_org_settings(ADMIN, default_access_level="Block")
    out = simulate(live_server, "--device-id", "SIMPHONE8", "--command", "Sync")
    assert out.splitlines() == [
        "HTTP 200 OK",
        "X-EAS-Access-State: Blocked",
        "X-EAS-Access-Reason: Global",
        "X-MS-ASThrottle: Global",
        "<AirSync:Sync>",
        "  <AirSync:Status>129</AirSync:Status>",
        "</AirSync:Sync>",
    ]
