"""cProfile of the gate in-process, through ecp.wsgi's WSGI application (issue 19).

    .venv/bin/python bench/profile_gate.py --database ecp_bench_work --kind gate
    .venv/bin/python bench/profile_gate.py --database ecp_bench_work --kind auth --top 30

Requests the same way bench_gate.py's wrk scripts do (a known allowed device's
Sync, its /eas/auth, /healthz, or first contacts), N times after a warm-up,
without a server or a socket: what is left is ECP's own Python per request
(middleware, view, lookup, response). Prints microseconds per request and the
functions by cumulative time. Not a benchmark: the figures that count come
from bench_gate.py.
"""

import argparse
import cProfile
import io
import pstats
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_gate  # noqa: E402
import common  # noqa: E402


def environ(method: str, path: str, headers: dict) -> dict:
    path, _, query = path.partition("?")
    env = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "REMOTE_ADDR": "127.0.0.1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "CONTENT_LENGTH": "0",
    }
    for name, value in headers.items():
        key = name.upper().replace("-", "_")
        env[key if key == "CONTENT_TYPE" else f"HTTP_{key}"] = value
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", required=True)
    parser.add_argument("--kind", choices=("gate", "auth", "healthz", "new"), default="gate")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--no-profile", action="store_true", help="time only")
    parser.add_argument("--sql", action="store_true", help="print one request's statements")
    args = parser.parse_args()
    auth = bench_gate.prepare(args.database)
    from ecp.wsgi import application

    headers = {
        "Authorization": auth,
        "User-Agent": bench_gate.USER_AGENT,
        "MS-ASProtocolVersion": "16.1",
        "Content-Type": "application/vnd.ms-sync.wbxml",
    }
    token = "P" + uuid.uuid4().hex[:7]
    counter = iter(range(10**9))

    def one():
        if args.kind == "healthz":
            env = environ("GET", "/healthz", {})
        elif args.kind == "gate":
            env = environ("POST", bench_gate.KNOWN_PATH, headers)
        elif args.kind == "auth":
            env = environ("GET", "/eas/auth", {**headers, **bench_gate.auth_headers()})
        else:
            path = f"{bench_gate.NEW_PATH}&DeviceId={token}N{next(counter)}"
            env = environ("POST", path, headers)
        statuses = []
        body = application(env, lambda status, hdrs, exc=None: statuses.append(status))
        for _ in body:
            pass
        body.close()
        return statuses[0]

    for _ in range(50 if args.kind != "new" else 5):
        status = one()
    print(f"{args.kind}: {status}")
    if args.sql:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as captured:
            one()
        print(f"{len(captured)} statements:")
        for query in captured.captured_queries:
            print(f"  {query['time']:>6} s  {query['sql'][:300]}")
    profile = None if args.no_profile else cProfile.Profile()
    started = time.perf_counter()
    if profile:
        profile.enable()
    for _ in range(args.requests):
        one()
    if profile:
        profile.disable()
    took = time.perf_counter() - started
    print(f"{args.requests} requests: {took / args.requests * 1e6:.0f} µs each"
          f"{' (under cProfile)' if profile else ''}; {common.load()}")  # fmt: skip
    if profile:
        stats = pstats.Stats(profile).sort_stats("cumulative")
        stats.print_stats(args.top)
        stats.sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
