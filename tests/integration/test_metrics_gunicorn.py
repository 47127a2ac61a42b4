"""/metrics under a real gunicorn with two workers: the counters of both, summed.

    this test --HTTP--> gunicorn ecp.wsgi -w 2 (./gunicorn.conf.py) --> PostgreSQL test DB
                        each worker's counters: files in PROMETHEUS_MULTIPROC_DIR

To know that both workers answered gate requests (not left to the kernel's
choice), the test opens two connections and sends only half a request on
each: a sync worker serves one connection at a time, so each worker holds
one (checked in /proc) before the rest is sent. More requests follow; then
one scrape, in whichever worker, must count every request, and each worker's
own file must hold a part of that count. A worker killed and replaced by
gunicorn keeps its counts (child_exit marks it dead, its counters stay).
"""

import base64
import os
import signal
import socket
from pathlib import Path

import pytest
from django.db import connection
from prometheus_client import multiprocess
from prometheus_client.parser import text_string_to_metric_families

from devices import actions
from devices.audit import SYSTEM
from tests.conftest import need_service

from .test_faults_support import (
    Gunicorn,
    child_pids,
    database_url,
    eventually,
    gate_request,
    project_env,
)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

TOKEN = "scrape-token-" + "t" * 40
ALLOWED = ("ecp_gate_requests_total", (("decision", "Allowed"), ("endpoint", "activesync")))


@pytest.fixture
def server(django_db_setup, tmp_path):
    need_service(
        "PostgreSQL",
        connection.vendor == "postgresql",
        "gunicorn must share the test database (set DATABASE_URL)",
    )
    metrics_dir = tmp_path / "prometheus"
    (tmp_path / "prometheus").mkdir()
    (metrics_dir / "counter_1.db").write_bytes(b"left over from an earlier run")
    env = project_env(
        DATABASE_URL=database_url(connection.settings_dict),
        PROMETHEUS_MULTIPROC_DIR=metrics_dir,
        ECP_METRICS_TOKEN=TOKEN,
    )
    gunicorn = Gunicorn(tmp_path, env, workers=2)
    gunicorn.metrics_dir = metrics_dir
    try:
        gunicorn.start()
        eventually(
            lambda: len(child_pids(gunicorn.pid)) == 2, "two workers", on_timeout=gunicorn.tail
        )
        yield gunicorn
    finally:
        gunicorn.stop()


@pytest.fixture
def alice():
    actions.create_mailbox(SYSTEM, alias="alice", email="alice@contoso.com", password="alice-pw")


def scrape(server) -> dict:
    status, headers, body = server.get("/metrics")
    assert status == 200, body
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def per_worker(server) -> dict[int, float]:
    """Allowed gate requests in each worker's own file (pid -> count)."""
    counts = {}
    for path in server.metrics_dir.glob("counter_*.db"):
        pid = int(path.stem.split("_")[1])
        for metric in multiprocess.MultiProcessCollector.merge([str(path)]):
            for sample in metric.samples:
                if (sample.name, tuple(sorted(sample.labels.items()))) == ALLOWED:
                    counts[pid] = counts.get(pid, 0) + sample.value
    return counts


def connection_holders(port: int, pids: list[int]) -> set[int]:
    """The processes among `pids` that hold an accepted connection on `port`."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "01" and int(local.rsplit(":", 1)[1], 16) == port:  # ESTABLISHED
                inodes.add(inode)
    holders = set()
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                holders.add(pid)
    return holders


def raw_gate_request() -> bytes:
    method, path, _body, headers = gate_request("alice", "alice-pw", "ALICEPHONE1")
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Length: 0"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def one_request_per_worker(server) -> list[int]:
    """A gate request answered by each of the two workers, for certain; their statuses."""
    request = raw_gate_request()
    half = len(request) // 2
    socks = [socket.create_connection(("127.0.0.1", server.port), timeout=30) for _ in range(2)]
    try:
        for sock in socks:
            sock.sendall(request[:half])
        workers = child_pids(server.pid)
        eventually(
            lambda: len(connection_holders(server.port, workers)) == 2,
            "each worker to hold one half-sent request",
            on_timeout=server.tail,
        )
        statuses = []
        for sock in socks:
            sock.sendall(request[half:])
            answer = b""
            while b"\r\n" not in answer:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                answer += chunk
            statuses.append(int(answer.split(b" ", 2)[1]))
        return statuses
    finally:
        for sock in socks:
            sock.close()


def test_a_scrape_sums_the_counters_of_both_workers(server, alice):
    assert server.sync("alice", "alice-pw", "ALICEPHONE1")[0] == 200  # first contact
    assert one_request_per_worker(server) == [200, 200]
    for _ in range(10):
        assert server.sync("alice", "alice-pw", "ALICEPHONE1")[0] == 200
    sent = 1 + 2 + 10

    counts = per_worker(server)
    assert len(counts) == 2 and all(n >= 1 for n in counts.values()), counts
    assert set(counts) == set(child_pids(server.pid))
    samples = scrape(server)
    assert samples[ALLOWED] == sent == sum(counts.values())
    histogram = ("ecp_gate_request_duration_seconds_count", (("endpoint", "activesync"),))
    assert samples[histogram] == sent
    assert samples[("ecp_devices", (("state", "Allowed"),))] == 1
    assert samples[("ecp_outbox_pending", (("channel", "mail"),))] == 0
    # The file left in the directory before the start was cleared (gunicorn.conf.py).
    assert not (server.metrics_dir / "counter_1.db").exists()


def test_a_replaced_worker_keeps_its_counts(server, alice):
    assert server.sync("alice", "alice-pw", "ALICEPHONE1")[0] == 200  # first contact
    assert one_request_per_worker(server) == [200, 200]
    victim = child_pids(server.pid)[0]
    os.kill(victim, signal.SIGKILL)
    eventually(
        lambda: victim not in child_pids(server.pid) and len(child_pids(server.pid)) == 2,
        "gunicorn to replace the killed worker",
        on_timeout=server.tail,
    )
    eventually(lambda: server.get("/healthz")[0] == 200, "gunicorn to answer again")
    assert server.sync("alice", "alice-pw", "ALICEPHONE1")[0] == 200
    assert scrape(server)[ALLOWED] == 4


def test_the_address_and_token_rules_hold_under_gunicorn(server):
    assert server.get("/metrics")[0] == 200  # loopback
    # Through a proxy on this host, for a client elsewhere: refused without the token.
    elsewhere = {"X-Real-IP": "192.0.2.7"}
    assert server.get("/metrics", headers=elsewhere)[0] == 403
    assert server.get("/metrics", headers={"X-Forwarded-For": "192.0.2.7"})[0] == 403
    basic = "Basic " + base64.b64encode(f"x:{TOKEN}".encode()).decode()
    assert server.get("/metrics", headers={**elsewhere, "Authorization": basic})[0] == 403
    wrong = {**elsewhere, "Authorization": f"Bearer {TOKEN[:-1]}"}
    assert server.get("/metrics", headers=wrong)[0] == 403
    status, _, body = server.get(
        "/metrics", headers={**elsewhere, "Authorization": f"Bearer {TOKEN}"}
    )
    assert status == 200
    assert "ecp_devices" in {f.name for f in text_string_to_metric_families(body.decode())}
