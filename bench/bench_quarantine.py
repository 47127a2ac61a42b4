"""The quarantine list at scale (issue 8, benchmark 3).

Signed in as the demo's helpdesk login, through Django's test client against a
seeded bench database (1,000,000 partnerships, about 20,000 quarantined):
the first page, filtered pages and a page deep in the list, each requested
--requests times after a warm-up; p50/p95 of the whole request (view, queries,
template), the number of queries per request, and EXPLAIN ANALYZE of every
query that reads the devices table. The all-devices list is measured too (no
target): its deep pages show what even an index-only OFFSET costs over a
million rows.

    .venv/bin/python bench/bench_quarantine.py --database ecp_bench_full
"""

import argparse
import re
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

TARGET_P95_MS = 150
PER_PAGE = 50


def pages(quarantined: int, devices: int) -> list[tuple[str, str, bool]]:
    """(name, URL, has a target)."""
    deep = max(1, int(quarantined / PER_PAGE * 0.9))
    deep_all = max(1, int(devices / PER_PAGE * 0.9))
    q = "/devices/quarantine/"
    return [
        ("quarantine: first page", q, True),
        ("quarantine: filtered by type", f"{q}?device_type=iPhone", True),
        ("quarantine: waiting > 7 days", f"{q}?age=7d", True),
        ("quarantine: search 'galaxy'", f"{q}?q=galaxy", True),
        (f"quarantine: deep page {deep}", f"{q}?page={deep}", True),
        ("all devices: first page", "/devices/", False),
        (f"all devices: deep page {deep_all}", f"/devices/?page={deep_all}", False),
    ]


def query_counts(results: dict) -> dict:
    """The queries of the quarantine pages (those with a target): the same on a first and a
    deep page, and the same for every filter. A filtered page counts the whole quarantine
    once more ("3 of 11 waiting match the filters"); unfiltered, its own count is that."""

    def filtered(url: str) -> bool:
        query = parse_qs(urlsplit(url).query)
        return bool(set(query) - {"page"})

    kinds = {"unfiltered": set(), "filtered": set()}
    for r in results.values():
        if r["target"]:
            kinds["filtered" if filtered(r["url"]) else "unfiltered"].add(r["queries"])
    return {
        **{kind: sorted(counts) for kind, counts in kinds.items()},
        "constant": all(len(counts) <= 1 for counts in kinds.values()),
    }


def explain(connection, queries) -> list[dict]:
    plans = []
    with connection.cursor() as cursor:
        for q in queries:
            sql = q["sql"]
            if not sql.startswith("SELECT") or "devices_mobiledevice" not in sql:
                continue
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
            text = "\n".join(row[0] for row in cursor.fetchall())
            plans.append(
                {
                    "sql": sql,
                    "plan": text,
                    "seq_scan": bool(re.search(r"Seq Scan on devices_mobiledevice", text)),
                    "ms": float(re.search(r"Execution Time: ([\d.]+)", text).group(1)),
                }
            )
    return plans


def deep_page_alternatives(quarantined: int) -> dict[str, str]:
    """EXPLAIN ANALYZE of two ways to serve the deep page without OFFSET over full rows.

    keyset: the page after the previous page's last (state_changed_at, id), as
    a "next page" link would carry it; ids first: OFFSET over the index only,
    then the 50 rows, which is what the view does (devices.paging) in two
    queries. Keyset would need "next"/"previous" links instead of page numbers.
    """
    from django.db.models import Subquery

    from devices.models import AccessState, MobileDevice

    deep = max(1, int(quarantined / PER_PAGE * 0.9))
    waiting = MobileDevice.objects.filter(access_state=AccessState.QUARANTINED).order_by(
        "state_changed_at", "id"
    )
    offset = (deep - 1) * PER_PAGE
    after = waiting.values_list("state_changed_at", "id")[offset - 1 : offset].get()
    keyset = waiting.select_related("mailbox", "access_rule").extra(  # noqa: S610 - a bench
        where=['("devices_mobiledevice"."state_changed_at", "devices_mobiledevice"."id")'
               " > (%s, %s)"],
        params=list(after),
    )[:PER_PAGE]  # fmt: skip
    ids = waiting.values("id")[offset : offset + PER_PAGE]
    ids_first = (
        MobileDevice.objects.filter(pk__in=Subquery(ids))
        .select_related("mailbox", "access_rule")
        .order_by("state_changed_at", "id")
    )
    return {
        "by keyset": keyset.explain(analyze=True, buffers=True),
        "ids first (OFFSET over the index)": ids_first.explain(analyze=True, buffers=True),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", required=True, help="a seeded bench database")
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--runs", type=int, default=3, help="rounds over all pages")
    parser.add_argument("--plans", action="store_true", help="print every EXPLAIN in full")
    parser.add_argument("--json", help="append the result to this JSON-lines file")
    args = parser.parse_args()
    print(common.machine())
    common.setup_django(args.database)
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from devices.models import AccessState, MobileDevice

    quarantined = MobileDevice.objects.filter(access_state=AccessState.QUARANTINED).count()
    devices = MobileDevice.objects.count()
    print(f"{devices:,} partnerships, {quarantined:,} quarantined")
    client = Client(SERVER_NAME="127.0.0.1")
    client.force_login(get_user_model().objects.get(username="helpdesk"))
    results = {}
    for name, url, target in pages(quarantined, devices):
        client.get(url)  # warm-up: caches, connections, compiled templates
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
        if response.status_code != 200:
            raise SystemExit(f"{url}: {response.status_code}")
        results[name] = {
            "url": url,
            "target": target,
            "queries": len(captured),
            "times_ms": [],
            "plans": explain(connection, captured.captured_queries),
        }
    for run in range(args.runs):
        for r in results.values():
            for _ in range(args.requests):
                start = time.perf_counter()
                client.get(r["url"])
                r["times_ms"].append((time.perf_counter() - start) * 1000)
        print(f"round {run + 1}/{args.runs} done, {common.load()}")
    print(f"{'page':<34} {'p50':>8} {'p95':>8} {'max':>8}  queries  devices-table plans")
    for name, r in results.items():
        t = r["times_ms"]
        r.update(p50_ms=common.percentile(t, 50), p95_ms=common.percentile(t, 95), max_ms=max(t))
        scans = [f"{p['ms']:.1f} ms{' SEQ SCAN' if p['seq_scan'] else ''}" for p in r["plans"]]
        goal = f"(target < {TARGET_P95_MS} ms)" if r["target"] else "(no target)"
        print(f"{name:<34} {r['p50_ms']:6.1f}ms {r['p95_ms']:6.1f}ms {r['max_ms']:6.1f}ms"
              f"  {r['queries']:>5}    {', '.join(scans)}  {goal}")  # fmt: skip
    counts = query_counts(results)
    print(
        f"queries per quarantine page: {counts['unfiltered']} unfiltered (first and deep page), "
        f"{counts['filtered']} filtered "
        f"({'constant' if counts['constant'] else 'NOT constant'} in the page's depth and filter)"
    )
    alternatives = deep_page_alternatives(quarantined)
    for name, plan in alternatives.items():
        ms = float(re.search(r"Execution Time: ([\d.]+)", plan).group(1))
        print(f"deep page {name}: {ms:.1f} ms")
    for name, r in results.items():
        for p in r["plans"]:
            if args.plans or p["seq_scan"] or p["ms"] > 20:
                print(f"\n--- {name}: {p['sql'][:200]}...\n{p['plan']}")
    for r in results.values():
        r.pop("times_ms")
    if args.plans:
        for name, plan in alternatives.items():
            print(f"\n--- deep page {name}:\n{plan}")
    figures = {"devices": devices, "quarantined": quarantined, "pages": results,
               "query_counts": counts}  # fmt: skip
    common.record(args.json, "quarantine", {**figures, "deep_page": alternatives})


if __name__ == "__main__":
    main()
