"""Private services for the fault and load tests (imported by name; no tests here).

Every fault is done to an instance of our own, never to the machine's shared
services (other test runs use them at the same time):

- PrivateRedis: redis-server on a free loopback port, nothing kept on disk;
- PrivatePostgres: a cluster initdb'd into a temporary directory, on a free port;
- Gunicorn: `gunicorn ecp.wsgi`, the project's own server, with the environment given;
- Worker: `celery -A ecp worker` on a queue of its own;
- Inbox / Smtp: an aiosmtpd server in this process that can be stopped, restarted
  on the same port, and told to hold a message at DATA.

Every wait is bounded (WAIT), every process is stopped at teardown, and every
child gets SIGTERM if pytest itself dies (PR_SET_PDEATHSIG).
"""

import asyncio
import base64
import contextlib
import ctypes
import email
import http.client
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from email import policy
from pathlib import Path
from urllib.parse import quote

import psycopg
import redis
from aiosmtpd.controller import Controller

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PG_BIN = Path(os.environ.get("ECP_PG_BIN", "/usr/lib/postgresql/15/bin"))
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
WAIT = 20  # seconds: the bound on every wait
GATE = "/Microsoft-Server-ActiveSync"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def eventually(check, what: str, timeout: float = WAIT, on_timeout=lambda: "", every=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{on_timeout()}")


_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


def _die_with_this_process():
    if _prctl is not None:
        _prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Process:
    """A child process with its output in a file."""

    def __init__(self, name: str, command: list[str], log: Path, *, env=None, user=None):
        self.name, self.command, self.log, self.env, self.user = name, command, log, env, user
        self.process: subprocess.Popen | None = None
        self.new_session = False  # its own process group, to kill it with its children

    def start(self) -> "Process":
        command = self.command
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                command,
                cwd=REPO,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_this_process,
                start_new_session=self.new_session,
            )
        return self

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"--- {self.name} log ---\n" + "\n".join(text.splitlines()[-lines:])

    def stop(self, sig=signal.SIGTERM, timeout: float = 10):
        if not self.alive():
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=timeout)

    def kill(self):
        self.stop(signal.SIGKILL)

    def kill_group(self):
        """SIGKILL to the process and its children at once (a new_session process)."""
        assert self.new_session
        if self.alive():
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def child_pids(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


# --- Redis -------------------------------------------------------------------------------


class PrivateRedis:
    def __init__(self, tmp: Path):
        self.tmp, self.port = tmp, free_port()
        self.server: Process | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def ping(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def start(self) -> "PrivateRedis":
        command = [
            REDIS_SERVER,
            *("--port", str(self.port), "--bind", "127.0.0.1", "--save", ""),
            *("--appendonly", "no", "--daemonize", "no", "--dir", str(self.tmp)),
        ]
        self.server = Process("redis", command, self.tmp / "redis.log").start()
        eventually(self.ping, "the private redis-server", on_timeout=self.server.tail)
        return self

    def stop(self):
        """Gone at once, as in a crash: nothing is kept (--save '' --appendonly no)."""
        if self.server is not None:
            self.server.kill()


# --- PostgreSQL ------------------------------------------------------------------------------


class PrivatePostgres:
    """A throw-away cluster; as root, run as the postgres user (initdb refuses root)."""

    def __init__(self):
        self.user = "postgres" if os.geteuid() == 0 else None
        self.dir = Path(tempfile.mkdtemp(prefix="ecp-faults-pg-"))
        if self.user:
            os.chown(self.dir, pwd.getpwnam(self.user).pw_uid, -1)
        self.data, self.port = self.dir / "data", free_port()

    @staticmethod
    def available() -> bool:
        return (PG_BIN / "initdb").exists() and (PG_BIN / "pg_ctl").exists()

    def _run(self, *args: str, timeout: float = 60):
        command = [str(PG_BIN / args[0]), *args[1:]]
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, f"{args[0]} failed: {done.stdout}\n{done.stderr}"

    def init(self) -> "PrivatePostgres":
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        return self

    def start(self):
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        log = str(self.dir / "postgres.log")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def stop(self):
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def destroy(self):
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(AssertionError):
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, name: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def create_database(self, name: str):
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

    def query(self, name: str, sql: str, *params):
        with psycopg.connect(self.url(name), connect_timeout=5) as conn:
            return conn.execute(sql, params).fetchall()


def database_url(settings_dict) -> str:
    """The URL of the test database pytest-django made, for the processes we start."""
    user = quote(settings_dict["USER"] or "", safe="")
    password = quote(settings_dict["PASSWORD"] or "", safe="")
    auth = f"{user}:{password}@" if password else f"{user}@" if user else ""
    port = f":{settings_dict['PORT']}" if settings_dict["PORT"] else ""
    return f"postgres://{auth}{settings_dict['HOST']}{port}/{quote(settings_dict['NAME'])}"


# --- the project's processes -------------------------------------------------------------------


def project_env(**overrides) -> dict:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "ecp.settings",
        "SECRET_KEY": "faults-test-secret-key-" + "x" * 40,
        "EMAIL_TIMEOUT": "5",
        "DEFAULT_FROM_EMAIL": "ECP <ecp@ecp.test>",
        "ECP_BASE_URL": "http://ecp.test",
        "ECP_MAIL_BACKOFF_BASE": "1",
        "LOG_LEVEL": "INFO",
    }
    for name in ("EMAIL_BACKEND", "CACHE_URL", "CELERY_BROKER_URL"):
        env.pop(name, None)
    env.update({k: str(v) for k, v in overrides.items() if v is not None})
    return env


def manage(env: dict, *args: str, timeout: float = 120) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"manage.py {' '.join(args)}: {done.stdout}\n{done.stderr}"
    return done.stdout


class Gunicorn(Process):
    def __init__(self, tmp: Path, env: dict, *, workers: int = 2, name: str = "gunicorn"):
        self.port = free_port()
        command = [
            str(BIN / "gunicorn"),
            "ecp.wsgi",
            *("--bind", f"127.0.0.1:{self.port}", "--workers", str(workers)),
            *("--timeout", "60", "--graceful-timeout", "3", "--no-control-socket"),
        ]
        super().__init__(name, command, tmp / f"{name}.log", env=env)

    def start(self) -> "Gunicorn":
        super().start()
        eventually(self._ready, "gunicorn to answer /healthz", on_timeout=self.tail)
        return self

    def _ready(self) -> bool:
        assert self.alive(), f"gunicorn exited\n{self.tail()}"
        try:
            return self.get("/healthz")[0] == 200
        except OSError:
            return False

    def request(self, method, path, body=b"", headers=None, timeout=30):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body, headers or {})
            response = connection.getresponse()
            return (
                response.status,
                {k.lower(): v for k, v in response.getheaders()},
                response.read(),
            )
        finally:
            connection.close()

    def get(self, path, headers=None):
        return self.request("GET", path, headers=headers)

    def sync(self, login, password, device_id, *, cmd="FolderSync", user=None, body=b""):
        return self.request(
            *gate_request(login, password, device_id, cmd=cmd, user=user, body=body)
        )


def gate_request(login, password, device_id, *, cmd="FolderSync", user=None, body=b""):
    token = base64.b64encode(f"{login}:{password}".encode()).decode()
    query = f"Cmd={cmd}&User={user or login}&DeviceId={device_id}&DeviceType=iPhone"
    headers = {
        "Authorization": f"Basic {token}",
        # 12.0: the decision as a plain HTTP status (on 12.1+ a denied phone gets
        # WBXML answers instead: tests/test_gate_answers.py).
        "MS-ASProtocolVersion": "12.0",
        "User-Agent": "Apple-iPhone15C2/2104.61",
        "Content-Type": "application/vnd.ms-sync.wbxml",
    }
    return "POST", f"{GATE}?{query}", body, headers


class Worker(Process):
    def __init__(self, tmp: Path, env: dict, queue: str, *, pool="solo", name="worker"):
        self.queue = queue
        command = [
            str(BIN / "celery"),
            *("-A", "ecp", "worker", "-l", "info", f"--pool={pool}", "--concurrency=1"),
            *("-Q", queue, "-n", f"{queue}-{name}@%h"),
            *("--without-gossip", "--without-mingle", "--without-heartbeat"),
        ]
        super().__init__(name, command, tmp / f"{name}.log", env=env)
        self.new_session = True

    def stop(self, sig=signal.SIGTERM, timeout: float = 10):
        super().stop(sig, timeout)
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)  # pool children left behind

    def start(self) -> "Worker":
        super().start()
        eventually(
            lambda: not self.alive() or " ready." in self.log.read_text(errors="replace"),
            "the Celery worker to start",
            on_timeout=self.tail,
        )
        assert self.alive(), f"the worker exited\n{self.tail()}"
        return self


# --- the SMTP server ---------------------------------------------------------------------------


class Inbox:
    """An aiosmtpd handler that keeps what it accepts (a 250), and can hold one message at DATA.

    It can also run a callback just before it answers 250 (`before_250`), and
    hold the client's QUIT (`hold_quit`): after the 250, before the session ends.
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.messages = []  # (envelope recipients, parsed message)
        self.hold_for = None  # a recipient whose first message is held at DATA
        self.holding = threading.Event()  # a message is being held
        self.release = threading.Event()  # let it go: answered with a 421, never a 250
        self.before_250 = None  # called with the parsed message, once, before the 250
        self.hold_quit = False  # hold the next QUIT until release_quit
        self.quitting = threading.Event()  # a QUIT is being held
        self.release_quit = threading.Event()

    async def handle_QUIT(self, server, session, envelope):
        if self.hold_quit:
            self.hold_quit = False
            self.quitting.set()
            while not self.release_quit.is_set():
                await asyncio.sleep(0.02)
        return "221 Bye"

    async def handle_DATA(self, server, session, envelope):
        if self.hold_for in envelope.rcpt_tos:
            self.hold_for = None
            self.holding.set()
            while not self.release.is_set():
                await asyncio.sleep(0.02)
            return "421 4.3.0 held by the test and dropped"
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        with self.lock:
            self.messages.append((list(envelope.rcpt_tos), message))
        callback, self.before_250 = self.before_250, None
        if callback is not None:
            callback(message)
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list:
        with self.lock:
            return [m for rcpt, m in self.messages if address in rcpt]

    def count(self) -> int:
        with self.lock:
            return len(self.messages)

    def message_ids(self) -> list[str]:
        with self.lock:
            return [m["Message-ID"] for _, m in self.messages]


class Smtp:
    """The SMTP server, stoppable and restartable on the same port."""

    def __init__(self):
        self.inbox, self.port = Inbox(), free_port()
        self.controller: Controller | None = None

    def start(self) -> "Smtp":
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self):
        if self.controller is not None:
            self.inbox.release.set()
            self.inbox.release_quit.set()
            self.controller.stop()
            self.controller = None


def barrier(send_task, inbox: Inbox, make_row, on_timeout=lambda: ""):
    """Queue one more mail and wait for it: every task queued before it has run (solo pool)."""
    row = make_row()
    send_task.delay(row.pk)
    eventually(lambda: inbox.to(row.recipient), "the barrier mail", on_timeout=on_timeout)


# --- this process's Celery client -------------------------------------------------------------


class Publishing:
    """Send this process's tasks (after-commit deliveries, the sweep) to a private broker."""

    KEYS = ("broker_url", "task_always_eager", "broker_connection_retry_on_startup")

    def __init__(self, app, url: str):
        self.app, self.url = app, url
        self.saved = {key: app.conf[key] for key in self.KEYS}

    def __enter__(self):
        self.app.conf.update(broker_url=self.url, task_always_eager=False)
        self._drop_pools()
        return self

    def __exit__(self, *exc):
        self.app.conf.update(self.saved)
        self._drop_pools()

    def _drop_pools(self):
        # Connections are pooled per broker URL: a new URL needs new pools.
        self.app._pool = None
        self.app.amqp._producer_pool = None

    def idle(self) -> bool:
        """The worker has nothing running, reserved or waiting for its countdown."""
        inspect = self.app.control.inspect(
            timeout=2.0, limit=1
        )  # one worker: its reply ends the wait
        replies = [inspect.active(), inspect.reserved(), inspect.scheduled()]
        if any(reply is None for reply in replies):
            return False  # no answer yet
        return not any(tasks for reply in replies for tasks in reply.values())


class MailStack:
    """A private Redis (broker and cache), an SMTP server, a worker, and optionally the gate.

    They share the test database pytest-django made (transactional tests: the
    processes only see committed rows).
    """

    def __init__(self, tmp: Path, database: str, *, pool="solo", gate=False, **env):
        self.tmp = tmp
        self.redis = PrivateRedis(tmp).start()
        self.smtp = Smtp()
        self.env = project_env(
            DATABASE_URL=database,
            CELERY_BROKER_URL=self.redis.url(0),
            CACHE_URL=self.redis.url(1),
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=self.smtp.port,
            **env,
        )
        self.pool = pool
        self.worker = self.new_worker()
        self.gunicorn = Gunicorn(tmp, self.env, workers=2).start() if gate else None

    def new_worker(self, name="worker") -> Worker:
        return Worker(self.tmp, self.env, "celery", pool=self.pool, name=name).start()

    def tails(self) -> str:
        parts = [self.worker.tail()]
        if self.gunicorn is not None:
            parts.append(self.gunicorn.tail())
        return "\n".join(parts)

    def stop(self):
        for process in (self.gunicorn, self.worker):
            if process is not None:
                process.stop()
        self.smtp.stop()
        self.redis.stop()
