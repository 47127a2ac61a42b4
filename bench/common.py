"""Shared by the benchmarks: the bench databases, the machine line, figures and results.

Benchmarks never touch the test databases or the development database: they
work in their own PostgreSQL databases (ecp_bench_*), which they create from
the seeded template and drop again. Servers listen on loopback only, every
loop and wait is bounded, and every process a benchmark starts is stopped by
it (and dies with it: PR_SET_PDEATHSIG).
"""

import ctypes
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PY = str(BIN / "python")
# The PostgreSQL server, without a database name; the benchmarks add theirs.
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432").rstrip("/")
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379")
CACHE_DB = int(
    os.environ.get("BENCH_CACHE_DB", "11")
)  # Redis database of the gate's credential cache under benchmark
BROKER_DB = 12  # Redis database of the benchmarks' Celery broker
VAR = REPO / "var" / "bench"
SECRET_KEY = "bench-only-secret-key-not-for-production-0123456789abcdefghijklmnop"


def database_url(name: str) -> str:
    return f"{PG}/{name}"


def server_env(database: str, **extra: str) -> dict:
    """The environment of a process that works on the bench database `database`."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "ecp.settings",
        "DATABASE_URL": database_url(database),
        "CACHE_URL": f"{REDIS}/{CACHE_DB}",
        "SECRET_KEY": SECRET_KEY,
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "ECP_VAR_DIR": str(VAR / "var"),
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }
    for key in ("CELERY_BROKER_URL", "EMAIL_HOST", "EMAIL_PORT", "EMAIL_BACKEND"):
        env.pop(key, None)
    env.update(extra)
    return env


def setup_django(database: str, **extra: str) -> None:
    """Configure this process for the bench database and start Django."""
    os.environ.update(server_env(database, **extra))
    sys.path.insert(0, str(REPO))
    import django

    django.setup()


# --- the machine -------------------------------------------------------------------------


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return (
        f"machine: {platform.node()}, {os.cpu_count()} cores ({cpu}){memory}, "
        f"Linux {platform.release()}, Python {platform.python_version()}, "
        f"{postgres_version()}; {load()}"
    )


def postgres_version() -> str:
    try:
        with admin() as cursor:
            cursor.execute("SHOW server_version")
            return f"PostgreSQL {cursor.fetchone()[0].split()[0]}"
    except Exception as exc:  # noqa: BLE001 - only for the machine line
        return f"PostgreSQL unreachable ({type(exc).__name__})"


# --- databases ---------------------------------------------------------------------------


@contextmanager
def admin():
    """An autocommit cursor on the server's maintenance database."""
    import psycopg

    with psycopg.connect(database_url("postgres"), autocommit=True) as conn:
        yield conn.cursor()


def _checked(name: str) -> str:
    if not name.startswith("ecp_bench") or not name.replace("_", "").isalnum():
        raise ValueError(f"{name!r} is not a bench database name")
    return name


def database_exists(name: str) -> bool:
    with admin() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [_checked(name)])
        return cursor.fetchone() is not None


def drop_database(name: str) -> None:
    with admin() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{_checked(name)}" WITH (FORCE)')


def create_database(name: str, template: str | None = None) -> float:
    """A fresh bench database, empty or a copy of `template`; returns the seconds it took."""
    drop_database(name)
    start = time.monotonic()
    with admin() as cursor:
        if template:
            cursor.execute(f'CREATE DATABASE "{_checked(name)}" TEMPLATE "{_checked(template)}"')
        else:
            cursor.execute(f'CREATE DATABASE "{_checked(name)}"')
    return time.monotonic() - start


def vacuum(name: str) -> float:
    """VACUUM ANALYZE a bench database; returns the seconds it took."""
    import psycopg

    start = time.monotonic()
    with psycopg.connect(database_url(_checked(name)), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return time.monotonic() - start


def manage(database: str, *args: str, timeout: float = 1800, **extra: str) -> str:
    """Run manage.py against a bench database; its stdout, or an error with its stderr."""
    result = subprocess.run(
        [PY, "manage.py", *args],
        cwd=REPO,
        env=server_env(database, **extra),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    if result.stderr:
        sys.stderr.write(result.stderr)
    return result.stdout


def seed(database: str, mailboxes: int, devices: int) -> float:
    """A new database with the demo data at this scale; returns the seed-demo seconds."""
    create_database(database)
    manage(database, "migrate", "--noinput", "-v0")
    start = time.monotonic()
    out = manage(
        database,
        "eas",
        "seed-demo",
        "--mailboxes",
        str(mailboxes),
        "--devices",
        str(devices),
        "--progress",
    )
    took = time.monotonic() - start
    print(out.splitlines()[0])
    return took


# --- processes -----------------------------------------------------------------------------

_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


def die_with_parent() -> None:
    """In a child before exec: SIGTERM when the benchmark dies, so nothing is left running."""
    if _prctl is not None:
        _prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def start(command: list[str], *, env: dict, log: Path) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        return subprocess.Popen(
            command,
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )


def stop(process: subprocess.Popen, timeout: float = 15) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(check, what: str, timeout: float = 30, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
            return response.status == 200
    except OSError:
        return False


# --- figures -----------------------------------------------------------------------------


def percentile(values, p: float) -> float:
    """The p-th percentile (0-100), nearest rank: a value that was measured."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, -(-len(ordered) * p // 100))  # ceil
    return ordered[int(rank) - 1]


def median(values) -> float:
    return statistics.median(values) if values else float("nan")


def record(path: str | None, bench: str, figures: dict) -> None:
    """Append one result (a JSON line) for bench/run.py to gather."""
    if not path:
        return
    line = {"bench": bench, "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "load": load(), **figures}
    with open(path, "a") as f:
        f.write(json.dumps(line, default=str) + "\n")
