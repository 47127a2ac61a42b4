"""Fuzz the gate's parsers: the request-line query and the WBXML body (issue 9).

    .venv/bin/python bench/soak/fuzz_parsers.py --runs 1000000 [--engine atheris|mutate]

Each target gets --runs inputs. The contract under test (devices/eas): on any
input, parse_query and extract_device_information return or raise
EASParseError; anything else (another exception, a hang) is a bug the gate
would turn into a 500. atheris (coverage-guided, libFuzzer) is used when it
is installed (bench/soak/requirements.txt); otherwise a mutational loop over
valid seeds. tests/test_security_fuzz.py runs the loop, bounded, in CI.
Prints one JSON object with the figures; docs/RELIABILITY.md keeps the latest.
"""

import argparse
import contextlib
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from devices.eas import (  # noqa: E402
    EASParseError,
    build_base64_query,
    build_device_information_body,
    extract_device_information,
    parse_query,
)

TARGETS = ("query", "wbxml")
MAX_LEN = 4096
SLOW = 1.0  # seconds: one input taking longer is a finding


def seeds(target: str) -> list[bytes]:
    if target == "query":
        return [
            b"Cmd=Sync&User=rmjones&DeviceId=v140Device&DeviceType=SmartPhone",
            b"Cmd=Provision&User=CONTOSO%5Calice&DeviceId=ABC-123_x&DeviceType=iPhone",
            b"Cmd=SendMail&User=john%2Btag@contoso.com&DeviceId=d1&DeviceType=Android"
            b"&SaveInSent=T&AttachmentName=x",
            b"jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l",
            build_base64_query("Sync", "Device1", "iPhone").encode(),
            build_base64_query("Provision", bytes(range(16)), "Android").encode(),
            build_base64_query("SendMail", "Dev2", "iPad", protocol_version="16.1").encode(),
        ]
    info = {"model": "iPhone15C2", "os": "iOS 17.4", "imei": "356789101234567"}
    full = {
        **info,
        "friendly_name": "Alice's phone",
        "os_language": "en-GB",
        "phone_number": "+44 20 7946 0000",
        "mobile_operator": "Operator",
        "user_agent": "Apple-iPhone15C2/2104.61",
    }
    return [
        build_device_information_body("Provision", info),
        build_device_information_body("Settings", info),
        build_device_information_body("Settings", full),
        b"\x03\x01\x6a\x00",
        b"",
    ]


def check_query(data: bytes) -> None:
    with contextlib.suppress(EASParseError):
        parse_query(data.decode("latin-1"))


def check_wbxml(data: bytes) -> None:
    with contextlib.suppress(EASParseError):
        extract_device_information(data)


CHECKS = {"query": check_query, "wbxml": check_wbxml}


# --- the mutational loop (no dependency; also what CI runs) ----------------------------------


def mutate(rng: random.Random, data: bytes, pool: list[bytes]) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        op = rng.randrange(8)
        pos = rng.randint(0, len(buf))
        if op == 0 and buf:  # flip a bit
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
        elif op == 1:  # insert random bytes
            buf[pos:pos] = rng.randbytes(rng.randint(1, 8))
        elif op == 2 and buf:  # delete a run
            del buf[pos : pos + rng.randint(1, 16)]
        elif op == 3 and buf:  # an interesting byte
            buf[rng.randrange(len(buf))] = rng.choice([0, 1, 3, 0x7F, 0x80, 0xFF, 0x40, 0xC3])
        elif op == 4 and buf:  # duplicate a slice (long strings, deep nesting)
            start = rng.randrange(len(buf))
            chunk = buf[start : start + rng.randint(1, 64)]
            buf[pos:pos] = chunk * rng.randint(1, 32)
        elif op == 5:  # splice another seed
            other = rng.choice(pool)
            buf[pos:] = other[rng.randint(0, len(other)) :]
        elif op == 6:  # query syntax
            buf[pos:pos] = rng.choice([b"&", b"=", b"%", b"%00", b"%ZZ", b"+", b"==", b"\\"])
        elif op == 7 and buf:  # truncate
            del buf[pos:]
    return bytes(buf[:MAX_LEN])


def run_mutate(target: str, runs: int, seed: int = 0) -> dict:
    rng, check = random.Random(seed), CHECKS[target]
    pool = seeds(target)
    corpus = list(pool)
    slowest, started = 0.0, time.perf_counter()
    for n in range(runs):
        data = mutate(rng, rng.choice(corpus), pool) if n >= len(pool) else pool[n]
        t = time.perf_counter()
        try:
            check(data)
        except Exception as exc:  # noqa: BLE001 - a finding: report the input
            raise AssertionError(f"{target}: {type(exc).__name__}: {exc} on {data!r}") from exc
        took = time.perf_counter() - t
        slowest = max(slowest, took)
        if took > SLOW:
            raise AssertionError(f"{target}: {took:.2f}s on {data!r}")
        if n % 97 == 0 and len(corpus) < 5000:
            corpus.append(data)  # keep some mutants: deeper mutations over time
    seconds = time.perf_counter() - started
    return {
        "engine": "mutate",
        "target": target,
        "runs": runs,
        "seconds": round(seconds, 1),
        "execs_per_second": round(runs / seconds),
        "slowest_ms": round(slowest * 1000, 2),
        "findings": 0,
    }


# --- atheris (coverage-guided) ---------------------------------------------------------------


def atheris_child(target: str, corpus: str, runs: int) -> None:
    import atheris

    atheris.instrument_all()  # devices.eas is imported already (above)
    check = CHECKS[target]
    argv = [sys.argv[0], f"-runs={runs}", f"-max_len={MAX_LEN}", "-timeout=10", corpus]
    atheris.Setup(argv, check)
    atheris.Fuzz()


def run_atheris(target: str, runs: int) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"ecp-fuzz-{target}-") as corpus:
        for i, data in enumerate(seeds(target)):
            Path(corpus, f"seed{i}").write_bytes(data)
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, __file__, "--atheris-child", target, corpus, str(runs)],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        seconds = time.perf_counter() - started
    log = done.stderr
    final = re.findall(r"#(\d+)\s+DONE\s+cov: (\d+) ft: (\d+) corp: (\d+)", log)
    if done.returncode != 0 or not final:
        tail = "\n".join(log.splitlines()[-30:])
        raise AssertionError(f"{target}: atheris found something (exit {done.returncode}):\n{tail}")
    executed, cov, features, corp = (int(x) for x in final[-1])
    return {
        "engine": "atheris",
        "target": target,
        "runs": executed,
        "seconds": round(seconds, 1),
        "execs_per_second": round(executed / seconds),
        "coverage_edges": cov,
        "features": features,
        "corpus": corp,
        "findings": 0,
    }


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--atheris-child":
        atheris_child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1_000_000, help="inputs per target")
    parser.add_argument("--engine", choices=("auto", "atheris", "mutate"), default="auto")
    parser.add_argument("--target", choices=(*TARGETS, "all"), default="all")
    parser.add_argument("--report", help="also write the JSON figures to this file")
    args = parser.parse_args()
    engine = args.engine
    if engine == "auto":
        try:
            import atheris  # noqa: F401

            engine = "atheris"
        except ImportError:
            engine = "mutate"
    targets = TARGETS if args.target == "all" else (args.target,)
    results = []
    for target in targets:
        result = run_atheris(target, args.runs) if engine == "atheris" else None
        results.append(result or run_mutate(target, args.runs))
        print(json.dumps(results[-1]), file=sys.stderr)
    summary = {
        "python": sys.version.split()[0],
        "total_inputs": sum(r["runs"] for r in results),
        "targets": results,
    }
    text = json.dumps(summary, indent=2)
    print(text)
    if args.report:
        Path(args.report).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
