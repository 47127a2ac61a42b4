"""The figures of one bench/run.py results file as Markdown, for docs/PERFORMANCE.md.

    .venv/bin/python bench/report.py var/bench/results-full-<time>.jsonl > /tmp/figures.md

Prints one section per benchmark (a heading line "<!-- name -->" before each),
every run and the median, so the page quotes the file and nothing else.
"""

import json
import statistics
import sys
from pathlib import Path


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def engine(r: dict) -> str:
    cases = [(n, f, 0) for n, f in r["rules"].items()]
    cases += [(n, f, f["version_rules"]) for n, f in r.get("with_version_rules", {}).items()]
    rows = [
        [f"{int(n):,}", f"{v:,}", ", ".join(f"{x:,.0f}" for x in f["runs"]),
         f"**{f['median']:,.0f}/s**"]
        for n, f, v in cases
    ]  # fmt: skip
    return _table(["rules", "of them version rules", "decisions/s, each run", "median"], rows)


def gate(r: dict) -> str:
    rows = []
    for i, run in enumerate(r["runs"], 1):
        for kind, name in (("healthz", "/healthz"), ("gate", "gate, known device"),
                           ("new_devices", "gate, new devices")):  # fmt: skip
            k = run[kind]
            rows.append([i, name, f"{k['rps']:,.0f}", f"{k['p50_ms']:.1f}", f"{k['p90_ms']:.1f}",
                         f"{k['p99_ms']:.1f}", k["errors"]])  # fmt: skip
        rows.append([i, "ratio gate / healthz", f"{run['ratio']:.2f}", "", "", "", ""])
    s = r["summary"]
    for kind, name in (("healthz", "/healthz"), ("gate", "gate, known device"),
                       ("new_devices", "gate, new devices")):  # fmt: skip
        k = s[kind]
        rows.append(["median", name, f"**{k['rps']:,.0f}**", f"{k['p50_ms']:.1f}",
                     f"{k['p90_ms']:.1f}", f"**{k['p99_ms']:.1f}**", k["errors"]])  # fmt: skip
    rows.append(["median", "ratio gate / healthz", f"**{s['ratio']:.2f}**", "", "", "", ""])
    head = f"gunicorn `{r['server']}`, {r['duration']} s per endpoint and run:\n\n"
    return head + _table(["run", "endpoint", "req/s", "p50 ms", "p90 ms", "p99 ms", "errors"],
                         rows)  # fmt: skip


def sweep(r: dict) -> str:
    rows = [
        [
            f"`{name}`",
            f"{s['gate_rps']:,.0f}",
            f"{s['healthz_rps']:,.0f}",
            f"{s['ratio']:.2f}",
            f"{s['gate_p99_ms']:.1f}",
        ]  # fmt: skip
        for name, s in r["sweep"].items()
    ]
    return _table(["gunicorn", "gate req/s", "/healthz req/s", "ratio", "gate p99 ms"], rows)


def quarantine(r: dict) -> str:
    rows = []
    for name, p in r["pages"].items():
        scans = ", ".join(f"{x['ms']:.1f}{' (seq scan)' if x['seq_scan'] else ''}"
                          for x in p["plans"])  # fmt: skip
        target = "< 150 ms" if p["target"] else "(report)"
        rows.append([name, f"`{p['url']}`", f"{p['p50_ms']:.0f}", f"**{p['p95_ms']:.0f}**",
                     target, p["queries"], scans])  # fmt: skip
    deep = {}
    for name, plan in r.get("deep_page", {}).items():
        for line in plan.splitlines():
            if line.startswith("Execution Time"):
                deep[name] = line.split(":")[1].strip()
    tail = "".join(f"\n\nDeep page {k}: {v}." for k, v in deep.items())
    return _table(["page", "URL", "p50 ms", "p95 ms", "target", "queries",
                   "EXPLAIN ANALYZE of its device queries, ms"], rows) + tail  # fmt: skip


def rules(r: dict) -> str:
    rows = []
    for i, run in enumerate(r["runs"], 1):
        for step in ("release", "quarantine"):
            s = run[step]
            sql = sorted(s["sql_seconds"].items(), key=lambda kv: -kv[1])
            where = ", ".join(f"{k} {v:.1f}" for k, v in sql if v >= 0.5)
            rest = s["seconds"] - sum(s["sql_seconds"].values()) - s["publish_seconds"]
            rows.append([i, step, f"{s['transitions']:,}", f"{s['mails_queued']:,}",
                         f"**{s['seconds']:.1f}**" if step == "release" else f"{s['seconds']:.1f}",
                         f"{where}; Python, commit and the rest {rest:.1f}"])  # fmt: skip
    table = _table(["run", "step", "devices moved", "mails queued", "seconds",
                    "where the time went, s"], rows)  # fmt: skip
    return (f"{table}\n\nMedian: the release of {r['moved']:,} devices **{r['release_s']:.1f} s** "
            f"(target < 30 s); the quarantine step {r['quarantine_s']:.1f} s.")  # fmt: skip


def notify(r: dict) -> str:
    rows = [
        [
            i,
            f"{x['devices']:,}",
            f"{x['action_s']:.1f}",
            f"{x['mail_s']:.1f}",
            f"{x['rate']:.0f}",
            f"{x['outbox_rows']:,} / {x['sink_messages']:,}",
            x["lost"],
            x["doubled"],
            ", ".join(f"{k}: {v}" for k, v in x["admin_mails"].items()),
        ]  # fmt: skip
        for i, x in enumerate(r["runs"], 1)
    ]
    median = statistics.median(x["rate"] for x in r["runs"])
    table = _table(["run", "devices quarantined", "action s", "mail s", "mails/s",
                    "outbox rows / received", "lost", "doubled", "admin mails received"],
                   rows)  # fmt: skip
    return f"{table}\n\nMedian: **{median:.0f} mails/s** (target at least 100)."


def seed(r: dict) -> str:
    return (f"**{r['seconds']:.0f} s** for {r['mailboxes']:,} mailboxes and "
            f"{r['devices']:,} partnerships (target under 300 s)")  # fmt: skip


SECTIONS = {"engine": engine, "gate": gate, "sweep": sweep, "quarantine": quarantine,
            "rule_change": rules, "notify": notify, "seed": seed}  # fmt: skip


def main() -> None:
    records = {}
    for line in Path(sys.argv[1]).read_text().splitlines():
        record = json.loads(line)
        records[record["bench"]] = record
    if "gate" in records:
        records["sweep"] = records["gate"]
    for name, section in SECTIONS.items():
        if name in records and (name != "sweep" or records[name].get("sweep")):
            print(f"<!-- {name} -->\n{section(records[name])}\n")


if __name__ == "__main__":
    main()
