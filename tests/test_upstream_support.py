"""The upstream harness itself (tests/upstream_support.py), through urllib only."""

import base64
import socket
import ssl
import time
import urllib.error
import urllib.request

import pytest

from tests.conftest import need_service
from tests.upstream_support import (  # noqa: F401  (the fixtures upstream_nginx, silent_upstream)
    PROTOCOL_VERSIONS,
    BasicAuthNginx,
    nginx_available,
    silent_upstream_fixture,
    upstream_nginx_fixture,
)


def options(url, login=None, password=None, *, timeout=5, context=None):
    """(status, headers) of an OPTIONS, as the gate sends it in upstream mode."""
    request = urllib.request.Request(url, method="OPTIONS")
    if login is not None:
        token = base64.b64encode(f"{login}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            return response.status, response.headers
    except urllib.error.HTTPError as error:
        return error.code, error.headers


def test_basic_credentials(upstream_nginx):
    status, headers = options(upstream_nginx.url, "alice", "alice-pw")
    assert status == 200 and headers["MS-ASProtocolVersions"] == PROTOCOL_VERSIONS
    assert options(upstream_nginx.url, "alice", "wrong")[0] == 401
    assert options(upstream_nginx.url, "mallory", "alice-pw")[0] == 401
    status, headers = options(upstream_nginx.url)
    assert status == 401 and headers["WWW-Authenticate"].startswith("Basic")
    token = base64.b64encode(b"bob:bob-pw").decode()
    post = urllib.request.Request(
        upstream_nginx.url + "?Cmd=Sync&User=bob&DeviceId=X&DeviceType=iPhone",
        data=b"\x03\x01j\x00",
        method="POST",
        headers={"Authorization": f"Basic {token}"},
    )
    with urllib.request.urlopen(post, timeout=5) as response:
        assert response.status == 200
    assert options(upstream_nginx.url_403, "alice", "alice-pw")[0] == 403
    assert options(upstream_nginx.url_500, "alice", "alice-pw")[0] == 500
    seen = [(r["method"], r["status"], r["user"]) for r in upstream_nginx.requests()]
    assert seen[:3] == [("OPTIONS", 200, "alice"), ("OPTIONS", 401, "alice"),
                        ("OPTIONS", 401, "mallory")]  # fmt: skip
    assert seen[4] == ("POST", 200, "bob") and len(seen) == 7


def test_password_change_and_restart(upstream_nginx):
    upstream_nginx.set_user("alice", "new-pw")  # no reload: nginx reads the file per request
    assert options(upstream_nginx.url, "alice", "alice-pw")[0] == 401
    assert options(upstream_nginx.url, "alice", "new-pw")[0] == 200
    upstream_nginx.stop()
    with pytest.raises(urllib.error.URLError) as refused:
        options(upstream_nginx.url, "alice", "new-pw")
    assert isinstance(refused.value.reason, ConnectionRefusedError)
    upstream_nginx.start()
    assert options(upstream_nginx.url, "alice", "new-pw")[0] == 200


def test_tls(tmp_path):
    need_service("nginx", nginx_available(), "install Debian's nginx package")
    with BasicAuthNginx(tmp_path, tls=True) as server:
        assert server.url.startswith("https://127.0.0.1:")
        context = ssl.create_default_context(cafile=str(server.cert))
        assert options(server.url, "alice", "alice-pw", context=context)[0] == 200
        with pytest.raises(urllib.error.URLError):  # not trusted without the CA
            options(server.url, "alice", "alice-pw")


def test_silent_server_times_out(silent_upstream):
    started = time.monotonic()
    with pytest.raises((TimeoutError, socket.timeout, urllib.error.URLError)):
        options(silent_upstream.url, "alice", "alice-pw", timeout=0.5)
    assert time.monotonic() - started < 3
    assert silent_upstream.accepted == 1
