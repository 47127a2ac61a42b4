"""Run every benchmark of issue 8 at one scale and print the figures beside their targets.

    .venv/bin/python bench/run.py --scale small     # make bench: under 5 minutes
    .venv/bin/python bench/run.py --scale full      # make bench-full: 1,000,000 partnerships

Needs PostgreSQL (BENCH_PG, default postgres://postgres@127.0.0.1:5432) and
Redis (BENCH_REDIS, default redis://127.0.0.1:6379), as `make test` does, and
wrk (apt-get install wrk; without it bench/loadgen.py stands in).

The seeded database is a template, ecp_bench_<scale>: every benchmark works on
a copy of it. The full scale keeps its template for the next run (seeding a
million partnerships takes minutes); --reseed makes a new one. Results go to
var/bench/results-<scale>-<time>.jsonl.
"""

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_gate  # noqa: E402
import bench_quarantine  # noqa: E402
import common  # noqa: E402

SCALES = {
    "small": {
        "mailboxes": 2_000,
        "devices": 20_000,
        "engine": ["--decisions", "100000", "--repeats", "3"],
        "gate": ["--duration", "10", "--runs", "1"],
        "quarantine": ["--requests", "20", "--runs", "1"],
        "rule_change": ["--runs", "1"],
        "notify": ["--devices", "2000", "--runs", "1"],
        "directory": ["--users", "20000", "--groups", "500"],
        "keep_template": False,
    },
    "full": {
        "mailboxes": 100_000,
        "devices": 1_000_000,
        "engine": ["--decisions", "200000", "--repeats", "3"],
        "gate": ["--duration", "20", "--runs", "3", "--sweep"],
        "quarantine": ["--requests", "30", "--runs", "3"],
        "rule_change": ["--runs", "3"],
        "notify": ["--devices", "10000", "--runs", "3"],
        "directory": ["--users", "20000", "--groups", "500"],
        "keep_template": True,
    },
}
SEED_TARGET_S = 300
BENCHMARKS = ("engine", "gate", "quarantine", "rule_change", "notify", "directory")


def bench(script: str, *args: str, results: Path, timeout: float) -> None:
    command = [common.PY, f"bench/{script}", *args, "--json", str(results)]
    print(f"\n$ {' '.join(command[1:])}", flush=True)
    subprocess.run(command, cwd=common.REPO, check=True, timeout=timeout)


def prepare_template(scale: str, config: dict, reseed: bool, results: Path) -> str:
    template = f"ecp_bench_{scale}"
    if reseed or not config["keep_template"] or not common.database_exists(template):
        print(f"seeding {template}: {config['mailboxes']:,} mailboxes, "
              f"{config['devices']:,} partnerships ({common.load()})", flush=True)  # fmt: skip
        seconds = common.seed(template, config["mailboxes"], config["devices"])
        print(f"seed-demo: {seconds:.1f} s (target < {SEED_TARGET_S} s), {common.load()}")
        common.record(str(results), "seed", {"seconds": seconds, **_scale(config)})
    else:
        print(f"reusing {template} (--reseed for a new one); applying any new migration")
        common.manage(template, "migrate", "--noinput", "-v0")
    # What autovacuum does to a steady database: statistics, and the visibility map
    # that lets counts read the index alone. A fresh bulk load has neither.
    common.vacuum(template)
    return template


def _scale(config: dict) -> dict:
    return {"mailboxes": config["mailboxes"], "devices": config["devices"]}


def summary(results: Path) -> None:
    by_bench = {}
    for line in results.read_text().splitlines():
        record = json.loads(line)
        by_bench[record["bench"]] = record
    rows = []

    def row(what, measured, target, met):
        rows.append((what, measured, target, "yes" if met else "NO" if met is False else "-"))

    if "seed" in by_bench:
        s = by_bench["seed"]
        what = f"seed-demo {s['mailboxes']:,} mailboxes / {s['devices']:,} partnerships"
        row(what, f"{s['seconds']:.0f} s", f"< {SEED_TARGET_S} s", s["seconds"] < SEED_TARGET_S)
    if "engine" in by_bench:
        for rules, figures in by_bench["engine"]["rules"].items():
            target = int(rules) == 1000
            row(f"1. engine, {int(rules):,} rules, one core", f"{figures['median']:,.0f}/s",
                ">= 100,000/s" if target else "(report)",
                figures["median"] >= 100_000 if target else None)  # fmt: skip
        for rules, figures in by_bench["engine"].get("with_version_rules", {}).items():
            cold = figures.get("version_memo") == 0  # --no-version-memo: the worst case
            target = int(rules) == 1000 and not cold
            what = f"1. engine, {int(rules):,} rules ({figures['version_rules']} version rules"
            what += ", no memo)" if cold else ")"
            row(f"{what}, one core", f"{figures['median']:,.0f}/s",
                ">= 100,000/s" if target else "(report)",
                figures["median"] >= 100_000 if target else None)  # fmt: skip
    if "gate" in by_bench:
        g = by_bench["gate"]["summary"]
        server = by_bench["gate"]["server"]
        h, k, n = g["healthz"], g["gate"], g["new_devices"]
        row(f"2. /healthz (gunicorn {server})", f"{h['rps']:,.0f} req/s, p50 {h['p50_ms']:.1f} ms,"
            f" p99 {h['p99_ms']:.1f} ms, {h['errors']} errors", "(baseline)", None)  # fmt: skip
        row("2. gate, known device", f"{k['rps']:,.0f} req/s, p50 {k['p50_ms']:.1f} ms,"
            f" p99 {k['p99_ms']:.1f} ms", "", None)  # fmt: skip
        if "auth" in g:
            a = g["auth"]
            row("2. /eas/auth, known device", f"{a['rps']:,.0f} req/s, p50 {a['p50_ms']:.1f} ms,"
                f" p99 {a['p99_ms']:.1f} ms", "", None)  # fmt: skip
        row("2. gate, new devices", f"{n['rps']:,.0f} req/s, p50 {n['p50_ms']:.1f} ms, "
            f"p99 {n['p99_ms']:.1f} ms, {n['errors']} errors", "", None)  # fmt: skip
        if "auth" in g:  # issue 19's goals
            for what, measured, target, met in bench_gate.goals(g):
                row(f"19. {what}", measured, target, met)
        else:  # a results file from before issue 19
            row("2. gate / healthz throughput", f"{g['ratio']:.2f}", ">= 0.5", g["ratio"] >= 0.5)
            row("2. gate p99", f"{k['p99_ms']:.1f} ms", "< 50 ms", k["p99_ms"] < 50)
            row("2. gate errors", f"{k['errors']}", "0", k["errors"] == 0)
    if "quarantine" in by_bench:
        q = by_bench["quarantine"]
        counts = q.get("query_counts") or bench_quarantine.query_counts(q["pages"])
        for name, p in q["pages"].items():
            row(f"3. {name}", f"p95 {p['p95_ms']:.0f} ms",
                "< 150 ms" if p["target"] else "(report)",
                p["p95_ms"] < 150 if p["target"] else None)  # fmt: skip
        row("3. queries per quarantine page", f"{counts['unfiltered']} unfiltered, "
            f"{counts['filtered']} filtered", "constant", counts["constant"])  # fmt: skip
    if "rule_change" in by_bench:
        r = by_bench["rule_change"]
        row(f"4. Allow rule releasing {r['moved']:,} quarantined", f"{r['release_s']:.1f} s",
            "< 30 s", r["release_s"] < 30)  # fmt: skip
        row("4. rule quarantining them (mails queued)", f"{r['quarantine_s']:.1f} s", "(report)",
            None)  # fmt: skip
    if "notify" in by_bench:
        m = by_bench["notify"]
        row("5. mails per second, 2 workers", f"{m['rate']:.0f}/s", ">= 100", m["rate"] >= 100)
        row("5. none lost or doubled", str(m["exactly_once"]), "True", m["exactly_once"])
        row("5. one digest per admin", str(m["one_digest_each"]), "True", m["one_digest_each"])
    if "directory" in by_bench:
        d = by_bench["directory"]
        what = f"7. sync-directory, {d['users']:,} users / {d['groups']:,} groups"
        row(f"{what}, first run", f"{d['first_s']:.1f} s", "< 60 s", d["first_met"])
        row(f"{what}, no change", f"{d['no_change_s']:.1f} s", "< 15 s", d["no_change_s"] < 15)
    width = max(len(r[0]) for r in rows)
    measured = max(len(r[1]) for r in rows)
    target_width = max(12, *(len(r[2]) for r in rows))
    print(f"\n{'figure':<{width}}  {'measured':<{measured}}  {'target':<{target_width}}  met")
    for what, value, target, met in rows:
        print(f"{what:<{width}}  {value:<{measured}}  {target:<{target_width}}  {met}")
    print(f"\nresults: {results.relative_to(common.REPO)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=SCALES, default="small")
    parser.add_argument("--reseed", action="store_true", help="seed the template again")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=BENCHMARKS,
        help="run only these benchmarks",
    )
    parser.add_argument("--summary", type=Path, help="only print the summary of a results file")
    args = parser.parse_args()
    if args.summary:
        summary(args.summary.resolve())
        return
    config = SCALES[args.scale]
    only = set(args.only or BENCHMARKS)
    common.VAR.mkdir(parents=True, exist_ok=True)
    results = common.VAR / f"results-{args.scale}-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"
    started = time.monotonic()
    print(common.machine())
    loader = "wrk" if shutil.which("wrk") else "bench/loadgen.py"
    print(f"scale {args.scale}: {config['mailboxes']:,} mailboxes, {config['devices']:,} "
          f"partnerships; load generator: {loader}")  # fmt: skip
    if "engine" in only:
        bench("bench_engine.py", *config["engine"], results=results, timeout=600)
    needs_template = only & {"gate", "quarantine", "rule_change"}
    template = prepare_template(args.scale, config, args.reseed, results) if needs_template else ""
    work = f"ecp_bench_{args.scale}_work"
    try:
        if only & {"gate", "quarantine"}:
            common.create_database(work, template)
            common.manage(work, "collectstatic", "--noinput", "-v0")
        if "quarantine" in only:
            bench("bench_quarantine.py", "--database", work, *config["quarantine"],
                  results=results, timeout=1800)  # fmt: skip
        if "gate" in only:
            bench("bench_gate.py", "--database", work, *config["gate"], results=results,
                  timeout=3600)  # fmt: skip
        if "rule_change" in only:
            bench("bench_rule_change.py", "--template", template, *config["rule_change"],
                  results=results, timeout=7200)  # fmt: skip
        if "notify" in only:
            bench("bench_notify.py", *config["notify"], results=results, timeout=3600)
        if "directory" in only:  # slapd with 20,000 users: eas sync-directory (issue 14)
            bench("bench_directory.py", *config["directory"], results=results, timeout=1800)
    finally:
        common.drop_database(work)
        if template and not config["keep_template"]:
            common.drop_database(template)
    summary(results)
    print(f"all benchmarks: {time.monotonic() - started:.0f} s; {common.load()}")


if __name__ == "__main__":
    main()
