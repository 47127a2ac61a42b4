"""Decision engine throughput, in-process, one core (issue 8, benchmark 1).

Builds N rules (exact and glob mixed, over all four characteristics) and a
realistic set of devices, then times decide() over many iterations; then the
same with V of the N rules version comparisons ("iOS < 17", issue 20), most of
them on the families the devices report, so that they are read and compared.

    .venv/bin/python bench/bench_engine.py --rules 1000 10000 --version-rules 100 \
        --decisions 200000

The process is pinned to one core (os.sched_setaffinity) where it can be.
"""

import argparse
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ecp.settings")

import django  # noqa: E402

django.setup()

import common  # noqa: E402

from devices import access  # noqa: E402
from devices.choices import AccessLevel, Characteristic  # noqa: E402

DEVICES = [
    ("iPhone", "iPhone15C2", "iOS 17.4 21E219", "Apple-iPhone15C2/2104.136"),
    ("iPad", "iPad7C3", "iOS 16.4 20E247", "Apple-iPad7C3/2005.247"),
    ("Outlook", "Outlook for iOS and Android", "", "Outlook-iOS-Android/1.0"),
    ("SAMSUNGSGHI317M", "SGH-I317M", "Android 4.1.2", "SAMSUNG-SGH-I317M/101.403"),
    ("Android", "Pixel 7", "Android 14", "Android-Pixel7/14.0"),
    ("WindowsMail", "WindowsMail", "Windows 10", "MSFT-WIN-3/10.0.19045"),
]


# (characteristic, family, how many rules compare it): 80 of 100 on families the
# devices above report, the rest on families no device has.
VERSION_FAMILIES = (
    (Characteristic.DEVICE_OS, "iOS", 20),
    (Characteristic.DEVICE_OS, "Android", 20),
    (Characteristic.DEVICE_OS, "iPadOS", 5),
    (Characteristic.DEVICE_OS, "Windows", 5),
    (Characteristic.DEVICE_OS, "Windows Phone", 5),
    (Characteristic.USER_AGENT, "Apple-iPhone15C2", 10),
    (Characteristic.USER_AGENT, "Outlook-iOS-Android", 5),
    (Characteristic.USER_AGENT, "Android-Pixel7", 5),
    (Characteristic.USER_AGENT, "MSFT-WIN-3", 5),
)

REAL_BOUNDS = {"iOS": "17", "Android": "13", "Apple-iPhone15C2": "2104.100"}


def version_queries(count: int, rng: random.Random) -> list[tuple[str, str]]:
    """`count` distinct (characteristic, 'FAMILY OP VERSION') pairs."""
    ops = ("<", "<=", ">", ">=")
    out = []
    for characteristic, family, k in VERSION_FAMILIES:
        for j in range(k):
            # The first of a family a real admin's ("iOS < 17": the iPad above is below);
            # the others below every device's version, so that they are read and compared
            # but do not decide and the later characteristics are still tried.
            bound = REAL_BOUNDS.get(family) if j == 0 else None
            bound = bound or f"{j // 2}.{rng.randrange(100)}"
            out.append((characteristic, f"{family} {ops[j % 2]} {bound}"))
    i = 0
    while len(out) < count:
        characteristic = (Characteristic.DEVICE_OS, Characteristic.USER_AGENT)[i % 2]
        out.append((characteristic, f"Vendor{i}OS {ops[i % 4]} {rng.randrange(1, 30)}"))
        i += 1
    return out[:count]


def make_rules(n: int, rng: random.Random, versions: int = 0) -> list[access.Rule]:
    characteristics = list(Characteristic)
    levels = list(AccessLevel)
    rules = []
    spread = iter(version_queries(versions, rng))
    every = n // versions if versions else 0
    for i in range(n):
        if every and i % every == 0:
            pair = next(spread, None)
            if pair is not None:
                rules.append(access.Rule(i + 1, pair[0], pair[1], levels[i % 3]))
                continue
        characteristic = characteristics[i % 4]
        stem = f"vendor{i}-model{rng.randrange(10**6)}"
        query = f"{stem}*" if i % 3 == 0 else stem  # a third are globs
        rules.append(access.Rule(i + 1, characteristic, query, levels[i % 3]))
    # A few rules that real devices hit.
    rules.append(access.Rule(n + 1, Characteristic.DEVICE_TYPE, "iPhone", AccessLevel.ALLOW))
    rules.append(access.Rule(n + 2, Characteristic.DEVICE_MODEL, "SGH-*", AccessLevel.BLOCK))
    return rules


def make_devices(count: int, rng: random.Random) -> list[access.DeviceFacts]:
    now = datetime.now(UTC)
    out = []
    for i in range(count):
        dtype, model, os_name, ua = DEVICES[i % len(DEVICES)]
        out.append(
            access.DeviceFacts(
                device_id=f"DEV{i:08d}",
                device_type=dtype,
                device_model=model,
                device_os=os_name,
                user_agent=ua if i % 5 else f"{ua}.{rng.randrange(1000)}",
                info_received=bool(i % 4),
                first_seen=now - timedelta(minutes=rng.randrange(60)),
            )
        )
    return out


def run(rule_count: int, decisions: int, repeats: int, versions: int = 0) -> list[float]:
    rng = random.Random(42)
    rules = access.RuleSet(make_rules(rule_count, rng, versions))
    devices = make_devices(1000, rng)
    mailbox = access.MailboxFacts(allowed_ids=frozenset({"dev00000007"}))
    org = access.OrgFacts(default_access_level=AccessLevel.QUARANTINE)
    now = datetime.now(UTC)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(decisions):
            access.decide(mailbox, devices[i % 1000], rules, org, now)
        rates.append(decisions / (time.perf_counter() - start))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rules", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument(
        "--version-rules",
        type=int,
        default=100,
        metavar="V",
        help="then again with V of the rules version comparisons (0: skip)",
    )
    parser.add_argument(
        "--no-version-memo",
        action="store_true",
        help="read every value's version afresh (devices.access.VERSION_MEMO_SIZE = 0)",
    )
    parser.add_argument("--decisions", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="append the result to this JSON-lines file")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    if args.no_version_memo:
        access.VERSION_MEMO_SIZE = 0
    print(common.machine())
    figures, with_versions = {}, {}
    cases = [(n, 0) for n in args.rules]
    if args.version_rules:
        cases += [(n, args.version_rules) for n in args.rules]
    for n, versions in cases:
        rates = run(n, args.decisions, args.repeats, versions)
        figure = {"median": statistics.median(rates), "runs": rates}
        if versions:
            with_versions[n] = {
                **figure,
                "version_rules": versions,
                "version_memo": access.VERSION_MEMO_SIZE,
            }
        else:
            figures[n] = figure
        print(
            f"engine rules={n:>6} version_rules={versions:>4} decisions={args.decisions} "
            f"median={statistics.median(rates):,.0f}/s "
            f"runs={', '.join(f'{r:,.0f}' for r in rates)} (target >= 100,000/s at 1,000 rules)"
        )
    record = {"decisions": args.decisions, "rules": figures}
    if with_versions:
        record["with_version_rules"] = with_versions
    common.record(args.json, "engine", record)


if __name__ == "__main__":
    main()
