"""Real nginx, configured from deploy/nginx/, in front of a stand-in EAS server and ECP.

    device (this test) --TLS--> nginx --auth_request--> ECP /eas/auth      (live_server)
                                      --mirror-------> ECP /eas/observe
                                      --proxy_pass---> stand-in EAS server (a thread here)
                                      --error_page 403-> ECP /eas/answer (a denied phone's answer)

The nginx configuration is deploy/nginx/ecp-gate.conf itself, with only its
addresses, ports and certificate paths replaced, and it includes the same
deploy/nginx/ecp-gate-locations.conf as a real installation.
"""

import base64
import contextlib
import http.client
import io
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from unittest import mock
from urllib.parse import urlsplit

import pytest
from django.core.cache import cache
from django.core.management import call_command

from devices import actions, evaluation
from devices.audit import Actor
from devices.eas import build_base64_query, build_device_information_body, decode, status
from devices.eas.client import find_text, folder_sync_request, ping_request, sync_request
from devices.gate import notice
from devices.gate import views as gate_views
from devices.models import AuditSource, MobileDevice
from tests.conftest import need_service
from tests.wbxml_reference import ours_as_reference, reference_tree

pytestmark = pytest.mark.integration

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "nginx"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
ADMIN = Actor(source=AuditSource.CLI)
GATE = "/Microsoft-Server-ActiveSync"
UPSTREAM_BODY = b"stand-in EAS server says hello"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited: {log.read_text() if log.exists() else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nginx did not start listening")


# --- the stand-in EAS server ----------------------------------------------------------


class StandIn(BaseHTTPRequestHandler):
    seen: list  # (method, path, headers, body), set per server

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.seen.append((self.command, self.path, dict(self.headers), body))
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.ms-sync.wbxml")
        self.send_header("Content-Length", str(len(UPSTREAM_BODY)))
        self.send_header("MS-Server-ActiveSync", "14.1")
        self.end_headers()
        self.wfile.write(UPSTREAM_BODY)

    do_POST = do_OPTIONS = do_GET = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def eas_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


# --- nginx -----------------------------------------------------------------------------


def substitute(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"deploy/nginx/ecp-gate.conf no longer has {old!r} once"
    return text.replace(old, new)


def nginx_config(tmp: Path, *, ecp_port, eas_port, https_port, http_port, cert, key) -> str:
    """deploy/nginx/ecp-gate.conf with test addresses, ports and certificate."""
    text = (DEPLOY / "ecp-gate.conf").read_text()
    for old, new in [
        ("server 127.0.0.1:8000;", f"server 127.0.0.1:{ecp_port};"),
        ("server eas-backend.example.org:443;", f"server 127.0.0.1:{eas_port};"),
        ("set $ecp_eas_upstream https://eas_server;", "set $ecp_eas_upstream http://eas_server;"),
        ("listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;"),
        ("listen [::]:443 ssl;", ""),
        ("listen 80;", f"listen 127.0.0.1:{http_port};"),
        ("listen [::]:80;", ""),
        ("/etc/ssl/certs/mail.example.org.fullchain.pem", str(cert)),
        ("/etc/ssl/private/mail.example.org.key", str(key)),
        ("/etc/ssl/certs/ca-certificates.crt", str(cert)),
        (
            "include /etc/nginx/snippets/ecp-gate-locations.conf;",
            f"include {DEPLOY / 'ecp-gate-locations.conf'};",
        ),
    ]:
        text = substitute(text, old, new)
    temp_paths = (
        "\n".join(
            f"    {kind}_temp_path {tmp / kind};" for kind in ("client_body", "proxy", "fastcgi")
        )
        + "\n"
        + "\n".join(f"    {kind}_temp_path {tmp / kind};" for kind in ("uwsgi", "scgi"))
    )
    user = "user root root;\n" if os.geteuid() == 0 else ""
    return (
        f"{user}worker_processes 1;\n"
        f"error_log {tmp / 'error.log'} info;\n"
        "events { worker_connections 128; }\n"
        "http {\n"
        f"    access_log {tmp / 'access.log'};\n"
        f"{temp_paths}\n"
        f"{text}\n"
        "}\n"
    )


@pytest.fixture
def self_signed(tmp_path):
    need_service("openssl", bool(shutil.which("openssl")), "needed for the test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=mail.example.org"),
            *("-addext", "subjectAltName=IP:127.0.0.1,DNS:mail.example.org"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@contextlib.contextmanager
def running_nginx(tmp_path, *, ecp_port, eas_port, cert, key):
    need_service(
        "nginx",
        bool(shutil.which("nginx") or os.path.exists("/usr/sbin/nginx")),
        "install Debian's nginx package",
    )
    https_port, http_port = free_port(), free_port()
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        nginx_config(
            tmp_path,
            ecp_port=ecp_port,
            eas_port=eas_port,
            https_port=https_port,
            http_port=http_port,
            cert=cert,
            key=key,
        )
    )
    args = [NGINX, "-p", str(tmp_path), "-c", str(conf), "-e", str(tmp_path / "error.log")]
    checked = subprocess.run([*args, "-t"], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    process = subprocess.Popen(
        [*args, "-g", f"daemon off; pid {tmp_path / 'nginx.pid'};"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(https_port, process, tmp_path / "error.log")
        context = ssl.create_default_context(cafile=str(cert))
        yield Nginx(https_port, http_port, context)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def nginx(tmp_path, live_server, eas_server, self_signed):
    cert, key = self_signed
    ecp_port = urlsplit(live_server.url).port
    eas_port = eas_server.server_address[1]
    with running_nginx(tmp_path, ecp_port=ecp_port, eas_port=eas_port, cert=cert, key=key) as n:
        yield n


class Nginx:
    def __init__(self, port, http_port, context):
        self.port, self.http_port, self.context = port, http_port, context

    def request(
        self,
        method,
        query="",
        body=b"",
        *,
        login="alice",
        password="alice-secret",
        user_agent="Apple-iPhone14C2/2104.61",
        path=GATE,
        version="14.1",
    ):
        connection = http.client.HTTPSConnection(
            "127.0.0.1", self.port, context=self.context, timeout=30
        )
        headers = {
            "User-Agent": user_agent,
            "MS-ASProtocolVersion": version,
            "Content-Type": "application/vnd.ms-sync.wbxml",
        }
        if login is not None:
            token = base64.b64encode(f"{login}:{password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        try:
            connection.request(method, f"{path}?{query}" if query else path, body, headers)
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()


# --- the tests -----------------------------------------------------------------------------


@pytest.fixture
def alice(transactional_db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()
    evaluation._compiled = None
    mailbox = actions.create_mailbox(
        ADMIN, alias="alice", email="alice@contoso.com", password="alice-secret"
    ).obj
    yield mailbox
    cache.clear()


def plain(cmd, device_id="NGINXPHONE1", device_type="iPhone"):
    return f"Cmd={cmd}&User=alice&DeviceId={device_id}&DeviceType={device_type}"


def reached_upstream(eas_server, device_id):
    return [seen for seen in eas_server.seen if device_id in seen[1]]


def poll(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def no_decision_headers(headers):
    """ECP's X-EAS-Access-* headers are for nginx, never for the device."""
    return not [name for name in headers if name.lower().startswith("x-eas-access")]


def wbxml(status_code, headers, body):
    """A WBXML answer from ECP, read by devices.eas and, the same, by libwbxml."""
    assert status_code == 200, body
    assert headers["Content-Type"] == "application/vnd.ms-sync.wbxml"
    assert no_decision_headers(headers)
    root = decode(body)
    assert ours_as_reference(root) == reference_tree(body)
    return root


def test_an_allowed_device_reaches_the_eas_server(alice, nginx, eas_server):
    status, headers, body = nginx.request("POST", plain("FolderSync"), b"\x03\x01\x6a\x00")
    assert (status, body) == (200, UPSTREAM_BODY)
    assert no_decision_headers(headers)
    [(method, path, upstream_headers, upstream_body)] = reached_upstream(eas_server, "NGINXPHONE1")
    assert (method, upstream_body) == ("POST", b"\x03\x01\x6a\x00")
    assert path == f"{GATE}?{plain('FolderSync')}"
    assert upstream_headers["Authorization"].startswith("Basic ")
    assert MobileDevice.objects.get().access_state == "Allowed"


def test_a_quarantined_phone_gets_the_notice_mailbox_from_ecp(alice, nginx, eas_server):
    actions.set_org_settings(
        ADMIN,
        default_access_level="Quarantine",
        discovery_window_minutes=0,
        user_mail_insert="Ring 1234.",
    )
    root = wbxml(*nginx.request("POST", plain("FolderSync"), folder_sync_request("0")))
    add = root.find("FolderHierarchy:Changes").find("FolderHierarchy:Add")
    assert find_text(add, "FolderHierarchy:Type") == "2"
    folder = find_text(add, "FolderHierarchy:ServerId")
    root = wbxml(*nginx.request("POST", plain("Sync"), sync_request(folder, "0")))
    key = find_text(root, "AirSync:Collections", "AirSync:Collection", "AirSync:SyncKey")
    root = wbxml(*nginx.request("POST", plain("Sync"), sync_request(folder, key)))
    data = root.find("AirSync:Collections").find("AirSync:Collection").find("AirSync:Commands")
    data = data.find("AirSync:Add").find("AirSync:ApplicationData")
    assert "waiting for approval" in find_text(data, "Email:Subject")
    assert "Ring 1234." in find_text(data, "AirSyncBase:Body", "AirSyncBase:Data")
    assert MobileDevice.objects.get().access_state == "Quarantined"
    assert reached_upstream(eas_server, "NGINXPHONE1") == []
    # It may still report itself.
    status, headers, body = nginx.request("POST", plain("Provision"))
    assert (status, body) == (200, UPSTREAM_BODY)
    assert [seen[1] for seen in reached_upstream(eas_server, "NGINXPHONE1")] == [
        f"{GATE}?{plain('Provision')}"
    ]


def test_a_quarantined_phones_ping_is_held_by_ecp_not_spun(alice, nginx, eas_server, settings):
    settings.ECP_NOTICE_HOLD_SECONDS = 1
    settings.ECP_NOTICE_POLL_SECONDS = 0.2
    actions.set_org_settings(ADMIN, default_access_level="Quarantine", discovery_window_minutes=0)
    started = time.monotonic()
    root = wbxml(*nginx.request("POST", plain("Ping"), ping_request([notice.INBOX_ID])))
    assert time.monotonic() - started >= 1
    assert find_text(root, "Ping:Status") == str(status.Ping.HEARTBEAT_EXPIRED)
    assert reached_upstream(eas_server, "NGINXPHONE1") == []


@pytest.mark.parametrize("path", [GATE, GATE.lower(), GATE.upper()])
def test_a_blocked_phone_gets_status_129_through_nginx(alice, nginx, eas_server, path):
    actions.set_org_settings(ADMIN, default_access_level="Block")
    code, headers, body = nginx.request("POST", plain("Sync"), sync_request("1", "0"), path=path)
    root = wbxml(code, headers, body)
    assert find_text(root, "AirSync:Status") == "129"
    assert headers["X-MS-ASThrottle"] == "Global"
    # EAS 12.1: a plain 403.
    code, headers, _ = nginx.request("POST", plain("Sync"), path=path, version="12.1")
    assert code == 403
    assert no_decision_headers(headers)
    assert eas_server.seen == []


def test_an_allowed_phone_on_the_lower_case_path_reaches_the_eas_server(alice, nginx, eas_server):
    status_code, _, body = nginx.request("POST", plain("Sync"), path=GATE.lower())
    assert (status_code, body) == (200, UPSTREAM_BODY)
    assert len(reached_upstream(eas_server, "NGINXPHONE1")) == 1


def test_a_host_ecp_rejects_is_a_server_configuration_error(alice, nginx, eas_server, settings):
    settings.ALLOWED_HOSTS = ["only.example.org"]
    status_code, headers, body = nginx.request("POST", plain("Sync"))
    assert (status_code, body) == (500, b"server configuration error\n")
    assert "Retry-After" not in headers
    assert eas_server.seen == []


def test_mirrored_provision_body_fills_device_information(alice, nginx, eas_server):
    body = build_device_information_body(
        "Provision", {"model": "iPhone14C2", "os": "iOS 17.1.2", "imei": "356789101234567"}
    )
    status, _, answer = nginx.request("POST", plain("Provision"), body)
    assert (status, answer) == (200, UPSTREAM_BODY)
    assert reached_upstream(eas_server, "NGINXPHONE1")[0][3] == body  # untouched

    def informed():
        return MobileDevice.objects.filter(
            device_id="NGINXPHONE1", device_model="iPhone14C2", device_os="iOS 17.1.2"
        ).exists()

    assert poll(informed), "the mirrored Provision body never reached ECP"
    assert MobileDevice.objects.get().imei == "356789101234567"


def test_base64_queries_are_decided_and_mirrored_too(alice, nginx, eas_server):
    body = build_device_information_body("Provision", {"model": "SM-S918B", "os": "Android 14"})
    query = build_base64_query("Provision", "B64PHONE", "Android")
    status, headers, _ = nginx.request("POST", query, body)
    assert status == 200
    assert no_decision_headers(headers)
    assert poll(lambda: MobileDevice.objects.filter(device_model="SM-S918B").exists())


def test_only_provision_and_settings_are_mirrored(alice, nginx, eas_server):
    observed = []
    real = gate_views.decide_request

    def spy(request, raw_query, **kwargs):
        if kwargs.get("read_body"):
            observed.append(raw_query)
        return real(request, raw_query, **kwargs)

    with mock.patch.object(gate_views, "decide_request", side_effect=spy):
        for cmd in ("FolderSync", "Sync", "SendMail", "Ping", "Settings", "Provision"):
            assert nginx.request("POST", plain(cmd), b"\x03\x01\x6a\x00")[0] == 200
        assert poll(lambda: len(observed) >= 2)
        time.sleep(0.3)  # a stray mirror of another command would arrive by now
    assert sorted(q.split("&")[0] for q in observed) == ["Cmd=Provision", "Cmd=Settings"]


def test_bad_credentials_get_a_basic_challenge_from_nginx(alice, nginx, eas_server):
    status, headers, _ = nginx.request("POST", plain("FolderSync"), password="wrong")
    assert status == 401
    assert headers["WWW-Authenticate"].startswith("Basic")
    status, headers, _ = nginx.request("POST", plain("FolderSync"), login=None)
    assert status == 401
    assert eas_server.seen == []
    assert not MobileDevice.objects.exists()


def test_a_request_that_is_not_activesync_is_400(alice, nginx, eas_server):
    status, headers, _ = nginx.request("POST", plain("Frobnicate"))
    assert status == 400
    assert "Retry-After" not in headers
    assert eas_server.seen == []
    assert not MobileDevice.objects.exists()


def test_options_reaches_the_eas_server_without_credentials(alice, nginx, eas_server):
    status, _, body = nginx.request("OPTIONS", login=None)
    assert (status, body) == (200, UPSTREAM_BODY)
    assert [seen[0] for seen in eas_server.seen] == ["OPTIONS"]


def test_the_eas_endpoints_are_internal(alice, nginx, eas_server):
    for path in ("/eas/auth", "/eas/observe", "/eas/answer"):
        connection = http.client.HTTPSConnection(
            "127.0.0.1", nginx.port, context=nginx.context, timeout=10
        )
        connection.request("GET", path, headers={"X-Original-URI": f"{GATE}?{plain('Sync')}"})
        assert connection.getresponse().status == 404
        connection.close()


def test_plain_http_is_redirected_to_https(alice, nginx):
    connection = http.client.HTTPConnection("127.0.0.1", nginx.http_port, timeout=10)
    connection.request("POST", f"{GATE}?{plain('Sync')}")
    response = connection.getresponse()
    assert response.status == 301
    assert response.getheader("Location").startswith("https://")
    connection.close()


def test_without_ecp_nobody_gets_through(tmp_path, eas_server, self_signed):
    cert, key = self_signed
    closed = free_port()  # nothing listens here: ECP is down
    eas_port = eas_server.server_address[1]
    with running_nginx(tmp_path, ecp_port=closed, eas_port=eas_port, cert=cert, key=key) as gate:
        status, headers, _ = gate.request("POST", plain("Sync"))
    assert status == 503
    assert headers["Retry-After"] == "60"
    assert eas_server.seen == []


def test_simulate_device_through_nginx(alice, nginx, eas_server):
    out = io.StringIO()
    call_command(
        "eas",
        "simulate-device",
        *("--url", f"https://127.0.0.1:{nginx.port}", "--insecure"),
        *("--user", "alice", "--password", "alice-secret", "--device-id", "CLIVIANGINX"),
        *("--command", "Provision", "--model", "Pixel 8", "--os", "Android 15"),
        stdout=out,
    )
    # nginx keeps ECP's decision headers from devices, simulated ones included.
    assert out.getvalue().splitlines() == [
        "HTTP 200 OK",
        "X-EAS-Access-State: -",
        "X-EAS-Access-Reason: -",
    ]
    assert len(reached_upstream(eas_server, "CLIVIANGINX")) == 1
    assert poll(lambda: MobileDevice.objects.filter(device_model="Pixel 8").exists())
