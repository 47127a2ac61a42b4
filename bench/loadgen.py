"""A stand-in for wrk when Debian's wrk is not installed: same options, same WRK_JSON line.

    .venv/bin/python bench/loadgen.py -t2 -c32 -d20s --timeout 5s -s bench/gate_post.lua \\
        http://127.0.0.1:8000 -- PATH AUTHORIZATION [USER-AGENT]

It understands the three scripts of bench/ by name (healthz.lua: GET the URL;
gate_post.lua: the same POST each time; gate_new.lua: a new DeviceId each
time), keeps its connections alive, and runs in one process (-t is ignored).
It costs more CPU than wrk, which the server under test then lacks: prefer wrk
(apt-get install wrk); the figures in docs/PERFORMANCE.md are wrk's.
"""

import argparse
import asyncio
import json
import time
from urllib.parse import urlsplit


def requests_for(script: str, host: str, args: list[str]):
    """A function n -> the bytes of the n-th request."""
    name = script.rsplit("/", 1)[-1]
    if name == "healthz.lua":
        path = "/healthz"
        raw = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
        return lambda n: raw

    def post(path: str, auth: str, agent: str) -> bytes:
        return (
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth}\r\n"
            f"User-Agent: {agent}\r\nMS-ASProtocolVersion: 16.1\r\n"
            "Content-Type: application/vnd.ms-sync.wbxml\r\nContent-Length: 0\r\n\r\n"
        ).encode()

    if name == "gate_post.lua":
        raw = post(args[0], args[1], args[2] if len(args) > 2 else "Apple-iPhone15C2/2106.90")
        return lambda n: raw
    if name == "gate_new.lua":
        path, auth, token = args[0], args[1], args[2]
        return lambda n: post(f"{path}&DeviceId={token}N{n}", auth, "Apple-iPhone16C1/2204.82")
    raise SystemExit(f"loadgen.py does not know the script {script}")


async def connection(host, port, make, deadline, timeout, stats, counter):
    reader = writer = None
    while time.monotonic() < deadline:
        try:
            if writer is None:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(host, port), timeout
                )
            counter[0] += 1
            start = time.monotonic()
            writer.write(make(counter[0]))
            await writer.drain()
            status, close = await asyncio.wait_for(read_response(reader), timeout)
            stats["latency"].append(time.monotonic() - start)
            stats["requests"] += 1
            if not 200 <= status < 400:
                stats["errors"]["status"] += 1
            if close:
                writer.close()
                writer = None
        except TimeoutError:
            stats["errors"]["timeout"] += 1
            writer = None
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            stats["errors"]["read"] += 1
            writer = None
    if writer is not None:
        writer.close()


async def read_response(reader) -> tuple[int, bool]:
    status_line = await reader.readline()
    status = int(status_line.split()[1])
    length, close = 0, False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value)
        elif name.lower() == "connection" and "close" in value.lower():
            close = True
    if length:
        await reader.readexactly(length)
    return status, close


def seconds(value: str) -> float:
    return float(value.rstrip("s"))


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-t", dest="threads", default="1")
    parser.add_argument("-c", dest="connections", type=int, default=32)
    parser.add_argument("-d", dest="duration", type=seconds, default=10)
    parser.add_argument("--timeout", type=seconds, default=5)
    parser.add_argument("-s", dest="script", required=True)
    parser.add_argument("url")
    parser.add_argument("args", nargs="*")
    options = parser.parse_args()
    url = urlsplit(options.url)
    make = requests_for(options.script, url.netloc, options.args)
    stats = {"requests": 0, "latency": [], "errors": dict.fromkeys(
        ("connect", "read", "write", "status", "timeout"), 0)}  # fmt: skip
    start = time.monotonic()
    deadline = start + options.duration
    counter = [0]
    await asyncio.gather(
        *(
            connection(url.hostname, url.port, make, deadline, options.timeout, stats, counter)
            for _ in range(options.connections)
        )
    )
    elapsed = time.monotonic() - start
    latency = sorted(stats["latency"]) or [0.0]

    def pct(p):
        return int(latency[min(len(latency) - 1, int(len(latency) * p / 100))] * 1e6)

    report = {
        "requests": stats["requests"],
        "duration_us": int(elapsed * 1e6),
        "bytes": 0,
        "errors": stats["errors"],
        "latency_us": {
            "p50": pct(50),
            "p90": pct(90),
            "p99": pct(99),
            "max": int(latency[-1] * 1e6),
            "mean": sum(latency) / len(latency) * 1e6,
        },
    }
    print("WRK_JSON " + json.dumps(report))


if __name__ == "__main__":
    asyncio.run(main())
