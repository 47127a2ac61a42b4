"""Fuzz the gate's parsers: the request-line query and the WBXML body (issue 9),
and hostile strings through everything a device's text passes (issue 16).

    .venv/bin/python bench/soak/fuzz_parsers.py --runs 1000000 [--engine atheris|mutate]
        [--target query|wbxml|hostile|all]

Each target gets --runs inputs. The contract under test (devices/eas): on any
input, parse_query and extract_device_information return or raise
EASParseError; anything else (another exception, a hang) is a bug the gate
would turn into a 500. The `hostile` target builds strings from bidi
overrides, C0/C1 controls, NUL, CR/LF, overlong and invalid UTF-8, formula
prefixes and ordinary text, and sends each through the gate's User-Agent
reading, parse_basic, parse_query (User and an extra parameter), the WBXML
DeviceInformation reader, contact_changes (what record_contact would store),
clean_line (display names) and the CSV cell guard of every export
(devices.csv_export.safe_cell) with csv.writer: each must refuse the input the
gate's way or give text with no control or bidi character (and a CSV cell no
spreadsheet reads as a formula). atheris (coverage-guided, libFuzzer) is used when it
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
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ecp.settings")

import django  # noqa: E402

django.setup()  # the hostile target reads model metadata; it never opens the database

from devices.eas import (  # noqa: E402
    EASParseError,
    build_base64_query,
    build_device_information_body,
    extract_device_information,
    parse_query,
)

TARGETS = ("query", "wbxml", "hostile")
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
    if target == "hostile":
        return run_hostile(runs, seed)
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


# --- hostile strings through every reader of a device's text (issue 16) ----------------------

HOSTILE_PIECES = (
    # bidi overrides and isolates, and marks that are allowed
    *("\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069"),
    *("\u200e", "\u200f", "\u061c", "\ufeff", "\u200d"),
    # C0, DEL, C1, NUL, line breaks
    *("\x00", "\r", "\n", "\r\n", "\t", "\x1b[2J", "\x7f", "\x85", "\x9b", "\u2028", "\u2029"),
    # formula prefixes
    *("=", "+", "-", "@", "=cmd|' /C calc'!A0", '=HYPERLINK("http://x")', "@SUM(1)", "-2+3"),
    # ordinary text, some of it not ASCII
    *("iPhone", "Apple-iPhone14C2/2104.61", "Gerät", "Zürich", "עברית", "日本", "😀", " ", ":"),
    *("alice", "CONTOSO\\", "%", "%00", "&", "="),
)
HOSTILE_BYTES = (
    # overlong forms (NUL, "/", "."), a surrogate, bytes UTF-8 never uses, a lone continuation
    *(b"\xc0\x80", b"\xc0\xaf", b"\xe0\x80\xaf", b"\xf0\x80\x80\xaf", b"\xc1\xbf"),
    *(b"\xed\xa0\x80", b"\xff", b"\xfe", b"\x80", b"\xe2\x80"),
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def hostile_input(rng: random.Random) -> bytes:
    out = bytearray()
    for _ in range(rng.randint(1, 12)):
        if rng.random() < 0.2:
            out += rng.choice(HOSTILE_BYTES)
        elif rng.random() < 0.05:
            out += rng.randbytes(rng.randint(1, 4))
        else:
            out += rng.choice(HOSTILE_PIECES).encode("utf-8")
    return bytes(out[:600])


class _Request:
    def __init__(self, **meta):
        self.META = meta


def _assert_safe(text: str, where: str, raw: bytes) -> None:
    from devices import hostile

    if hostile.has_unsafe(text):
        raise AssertionError(f"hostile: unsafe character kept by {where}: {text!r} from {raw!r}")


def _pct(raw: bytes) -> str:
    from urllib.parse import quote

    return quote(raw, safe="")


def check_hostile(raw: bytes) -> int:
    """One hostile input through every reader. Returns how many values were accepted."""
    import base64
    import csv
    import io

    from devices import actions, csv_export, hostile
    from devices.eas import Element, encode
    from devices.gate import credentials, views
    from devices.models import MobileDevice

    accepted = 0
    text = (
        raw.decode("utf-8", "surrogateescape").encode("utf-8", "surrogateescape").decode("latin-1")
    )  # what WSGI hands over for these bytes
    # the User-Agent header, as the gate reads it
    user_agent = ""
    try:
        user_agent = views._user_agent(_Request(HTTP_USER_AGENT=text))
        _assert_safe(user_agent, "the User-Agent reader", raw)
        accepted += 1
    except EASParseError:
        pass
    # X-Request-ID
    _assert_safe(views._request_id(_Request(HTTP_X_REQUEST_ID=text)), "X-Request-ID", raw)
    # Basic credentials: login and password from the same bytes
    header = "Basic " + base64.b64encode(raw + b":" + raw[::-1]).decode()
    try:
        pair = credentials.parse_basic(header)
        if pair is not None:
            if hostile.has_control(pair[0]) or hostile.has_control(pair[1]):
                raise AssertionError(f"hostile: parse_basic kept a control from {raw!r}")
            accepted += 1
    except credentials.BadCredentials:
        pass
    # the query: as User and as an extra parameter, percent-encoded
    for query in (
        f"Cmd=Sync&DeviceId=D1&DeviceType=iPhone&User={_pct(raw)}",
        f"Cmd=Sync&DeviceId=D1&DeviceType=iPhone&ItemId={_pct(raw)}",
        f"Cmd=Sync&DeviceId={_pct(raw)}&DeviceType=iPhone",
    ):
        try:
            parsed = parse_query(query)
        except EASParseError:
            continue
        accepted += 1
        for value in (parsed.user or "", parsed.device_id, *(v for _, v in parsed.parameters)):
            _assert_safe(value, "parse_query", raw)
    # DeviceInformation: the bytes as OPAQUE Model and, without NUL, as inline FriendlyName
    children = [Element("Settings:Model", [raw])]
    if b"\x00" not in raw:
        with contextlib.suppress(UnicodeDecodeError):
            children.append(Element("Settings:FriendlyName", [raw.decode("utf-8")]))
    body = encode(
        Element(
            "Provision:Provision",
            [Element("Settings:DeviceInformation", [Element("Settings:Set", children)])],
        )
    )
    info = None
    try:
        info = extract_device_information(body)
        if any(hostile.has_control(v) for v in info.values()):
            info = None  # the gate answers 400 (devices.gate.views)
    except EASParseError:
        pass
    # what record_contact would store, for whatever the readers let through
    contact = actions.Contact(
        device_id="D1", device_type="iPhone", user_agent=user_agent, info=info or None
    )
    for name, value in actions.contact_changes(MobileDevice(device_id="D1"), contact).items():
        if isinstance(value, str):
            _assert_safe(value, f"contact_changes ({name})", raw)
            accepted += 1
    # people's input: a display name from the CLI, a form, an import
    for person in (raw.decode("utf-8", "replace"), text):
        _assert_safe(hostile.clean_line(person), "clean_line", raw)
    # the CSV writer's cell guard (every export's), through csv.writer and back
    out = io.StringIO()
    cells = [csv_export.safe_cell(raw.decode("utf-8", "replace")), csv_export.safe_cell(text)]
    csv.writer(out).writerow(cells)
    line = out.getvalue()
    if line.endswith("\r\n"):
        line = line[:-2]
    _assert_safe(line, "the CSV cell guard", raw)
    for cell in next(csv.reader(io.StringIO(out.getvalue()))):
        if cell.startswith(_FORMULA_START):
            raise AssertionError(f"hostile: CSV cell {cell!r} reads as a formula, from {raw!r}")
    return accepted


def run_hostile(runs: int, seed: int = 0) -> dict:
    rng = random.Random(seed)
    slowest, accepted, started = 0.0, 0, time.perf_counter()
    for _ in range(runs):
        data = hostile_input(rng)
        t = time.perf_counter()
        try:
            accepted += check_hostile(data)
        except AssertionError:
            raise
        except Exception as exc:  # noqa: BLE001 - a finding: report the input
            raise AssertionError(f"hostile: {type(exc).__name__}: {exc} on {data!r}") from exc
        took = time.perf_counter() - t
        slowest = max(slowest, took)
        if took > SLOW:
            raise AssertionError(f"hostile: {took:.2f}s on {data!r}")
    seconds = time.perf_counter() - started
    return {
        "engine": "generator",
        "target": "hostile",
        "runs": runs,
        "seconds": round(seconds, 1),
        "execs_per_second": round(runs / seconds),
        "slowest_ms": round(slowest * 1000, 2),
        "values_accepted": accepted,
        "unsafe_characters_kept": 0,
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
        atheris = engine == "atheris" and target != "hostile"
        result = run_atheris(target, args.runs) if atheris else None
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
