"""A real HTTP server that checks Basic credentials, for ECP_GATE_UPSTREAM_URL (issue 14).

    from tests.upstream_support import silent_upstream_fixture, upstream_nginx_fixture  # noqa: F401

    def test_something(upstream_nginx, silent_upstream, settings):
        settings.ECP_GATE_UPSTREAM_URL = upstream_nginx.url        # 200 / 401
        settings.ECP_GATE_UPSTREAM_URL = upstream_nginx.url_500    # 500 whatever the login
        settings.ECP_GATE_UPSTREAM_URL = silent_upstream.url       # connects, never answers
        assert [r["user"] for r in upstream_nginx.requests()] == ["alice"]

`BasicAuthNginx` is Debian's nginx on a free loopback port, in the foreground
(`daemon off`), everything under a temporary prefix (`-p`): its config, pid
file, logs and temp paths. `auth_basic` checks the credentials against an
htpasswd file (`openssl passwd -apr1`; nginx reads the file at every request,
so `set_user()` takes effect at once). The locations, all ending in
/Microsoft-Server-ActiveSync, as an EAS server's URL does:

    /Microsoft-Server-ActiveSync            auth_basic; right credentials: 200 to every
                                            method, with MS-ASProtocolVersions: 14.1,16.1 and
                                            MS-ASProtocolCommands (what OPTIONS answers)
    /forbidden/Microsoft-Server-ActiveSync  auth_basic; right credentials: 403
    /error/Microsoft-Server-ActiveSync      500 to everyone, no authentication

`requests()` reads the access log (one JSON object a line: method, uri,
status, user), to assert what the upstream was asked, or that it was not.
`stop()` then `start()` gives "upstream down" (connection refused) and back.

`SilentServer` accepts TCP connections on a free loopback port and never reads
or answers: the "upstream not answering" timeout.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.integration.test_faults_support import _die_with_this_process, free_port

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
WAIT = 20  # seconds: the bound on every wait
GATE = "/Microsoft-Server-ActiveSync"
PROTOCOL_VERSIONS = "14.1,16.1"
PROTOCOL_COMMANDS = (
    "Sync,SendMail,SmartForward,SmartReply,GetAttachment,GetHierarchy,CreateCollection,"
    "DeleteCollection,MoveCollection,FolderSync,FolderCreate,FolderDelete,FolderUpdate,"
    "MoveItems,GetItemEstimate,MeetingResponse,Search,Settings,Ping,ItemOperations,Provision,"
    "ResolveRecipients,ValidateCert"
)


def nginx_available() -> bool:
    return bool(shutil.which("nginx") or Path("/usr/sbin/nginx").exists())


def apr1(password: str) -> str:
    """An htpasswd hash (Apache MD5, what `htpasswd -m` writes); {PLAIN} without openssl."""
    if not Path(OPENSSL).exists():
        return "{PLAIN}" + password
    done = subprocess.run(
        [OPENSSL, "passwd", "-apr1", "-stdin"],
        input=password + "\n",
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return done.stdout.strip()


class BasicAuthNginx:
    """nginx on 127.0.0.1:<free port> answering EAS OPTIONS/POST behind auth_basic."""

    def __init__(self, tmp_path: Path, users: dict[str, str] | None = None, *, tls=False):
        self.dir = Path(tmp_path) / "upstream-nginx"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.users = dict({"alice": "alice-pw"} if users is None else users)
        self.tls = tls
        self.port = free_port()
        scheme = "https" if tls else "http"
        self.base = f"{scheme}://127.0.0.1:{self.port}"
        self.url = f"{self.base}{GATE}"
        self.url_403 = f"{self.base}/forbidden{GATE}"
        self.url_500 = f"{self.base}/error{GATE}"
        self.conf = self.dir / "nginx.conf"
        self.htpasswd = self.dir / "htpasswd"
        self.access_log = self.dir / "access.log"
        self.error_log = self.dir / "error.log"
        self.cert = self.dir / "cert.pem" if tls else None  # the CA to trust, when tls
        self.key = self.dir / "key.pem" if tls else None
        self.process: subprocess.Popen | None = None

    # -- files

    def write_users(self) -> None:
        lines = "".join(f"{user}:{apr1(password)}\n" for user, password in self.users.items())
        tmp = self.htpasswd.with_suffix(".new")
        tmp.write_text(lines)
        tmp.replace(self.htpasswd)  # atomic: a request never sees half a file

    def set_user(self, user: str, password: str | None) -> None:
        """Add, change (or with None remove) a login; nginx reads the file at each request."""
        if password is None:
            self.users.pop(user, None)
        else:
            self.users[user] = password
        self.write_users()

    def _certificate(self) -> None:
        subprocess.run(
            [
                *(OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
                *("-keyout", str(self.key), "-out", str(self.cert), "-subj", "/CN=127.0.0.1"),
                *("-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def config(self) -> str:
        temp_paths = "".join(
            f"    {kind}_temp_path {self.dir / kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        listen = f"listen 127.0.0.1:{self.port}"
        if self.tls:
            listen += (
                f" ssl;\n        ssl_certificate {self.cert};\n"
                f"        ssl_certificate_key {self.key};\n"
            )
        else:
            listen += ";\n"
        eas_headers = (
            f'            add_header MS-ASProtocolVersions "{PROTOCOL_VERSIONS}" always;\n'
            f'            add_header MS-ASProtocolCommands "{PROTOCOL_COMMANDS}" always;\n'
            '            add_header MS-Server-ActiveSync "16.1" always;\n'
        )
        auth = (
            '            auth_basic "Exchange ActiveSync";\n'
            f"            auth_basic_user_file {self.htpasswd};\n"
        )
        user = "user root root;\n" if os.geteuid() == 0 else ""
        return (
            f"{user}worker_processes 1;\n"
            f"error_log {self.error_log} info;\n"
            "events { worker_connections 128; }\n"
            "http {\n"
            '    log_format requests escape=json \'{"method":"$request_method",'
            '"uri":"$request_uri","status":$status,"user":"$remote_user",'
            '"authorization":"$http_authorization"}\';\n'
            f"    access_log {self.access_log} requests;\n"
            f"{temp_paths}"
            "    server {\n"
            f"        {listen}"
            "        server_name localhost;\n"
            # `return` runs in the rewrite phase, before auth_basic (access phase) would:
            # try_files (after the access phase) hands over to a named location instead.
            f"        location = {GATE} {{\n"
            f"{auth}"
            "            try_files /.none @eas;\n"
            "        }\n"
            "        location @eas {\n"
            f"{eas_headers}"
            "            default_type text/plain;\n"
            '            return 200 "";\n'
            "        }\n"
            f"        location = /forbidden{GATE} {{\n"
            f"{auth}"
            "            try_files /.none @forbidden;\n"
            "        }\n"
            "        location @forbidden { return 403; }\n"
            f"        location = /error{GATE} {{\n"
            "            return 500;\n"
            "        }\n"
            "        location / { return 404; }\n"
            "    }\n"
            "}\n"
        )

    # -- the process

    def start(self) -> "BasicAuthNginx":
        if self.alive():
            return self
        if not self.htpasswd.exists():
            self.write_users()
        if self.tls and not self.cert.exists():
            self._certificate()
        self.conf.write_text(self.config())
        args = [NGINX, "-p", str(self.dir), "-c", str(self.conf), "-e", str(self.error_log)]
        checked = subprocess.run([*args, "-t"], capture_output=True, text=True, timeout=30)
        assert checked.returncode == 0, f"nginx -t: {checked.stderr}"
        self.process = subprocess.Popen(
            [*args, "-g", f"daemon off; pid {self.dir / 'nginx.pid'};"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_this_process,
        )
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"nginx exited:\n{self.tail()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"nginx did not listen on {self.port} in {WAIT}s\n{self.tail()}")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 10) -> None:
        """SIGQUIT (graceful), then SIGKILL; the port then refuses connections."""
        if not self.alive():
            return
        self.process.send_signal(signal.SIGQUIT)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=timeout)

    def tail(self, lines: int = 40) -> str:
        text = self.error_log.read_text(errors="replace") if self.error_log.exists() else ""
        return "--- nginx error log ---\n" + "\n".join(text.splitlines()[-lines:])

    def requests(self) -> list[dict]:
        """Every request answered so far: {method, uri, status, user, authorization}."""
        if not self.access_log.exists():
            return []
        text = self.access_log.read_text(errors="replace")
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def __enter__(self) -> "BasicAuthNginx":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class SilentServer:
    """Accepts TCP connections on 127.0.0.1:<free port> and never reads or answers."""

    def __init__(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}{GATE}"
        self.accepted = 0  # connections accepted so far
        self._sock: socket.socket | None = None
        self._held: list[socket.socket] = []
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def start(self) -> "SilentServer":
        self._stopping.clear()
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(64)
        sock.settimeout(0.1)
        self._sock = sock
        self._thread = threading.Thread(target=self._accept, daemon=True, name="silent-server")
        self._thread.start()
        return self

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._held.append(conn)  # kept open, never read: the client waits
            self.accepted += 1

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=WAIT)
        for conn in self._held:
            conn.close()
        self._held.clear()
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> "SilentServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(name="upstream_nginx")
def upstream_nginx_fixture(tmp_path):
    """A started BasicAuthNginx with the logins alice/alice-pw and bob/bob-pw (the slapd
    fixture's passwords), stopped after the test."""
    from tests.conftest import need_service

    need_service("nginx", nginx_available(), "install Debian's nginx package")
    server = BasicAuthNginx(tmp_path, {"alice": "alice-pw", "bob": "bob-pw"})
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(name="silent_upstream")
def silent_upstream_fixture():
    """A started SilentServer, stopped after the test."""
    with SilentServer() as server:
        yield server
