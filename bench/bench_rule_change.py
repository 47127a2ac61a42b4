"""Rule changes at scale (issue 8, benchmark 4).

On a fresh copy of the seeded database (1,000,000 partnerships, 10% of them
Outlook, allowed by the demo's DeviceType rule "Outlook"):

1. quarantine: the Outlook rule changes from Allow to Quarantine; 100,000
   devices move to Quarantined, and their user and admin mails are queued.
2. release (the target): a new Allow rule on UserAgent "Outlook-iOS-Android/*"
   (UserAgent is tried before DeviceType) releases those 100,000 devices.

Each step runs through devices.actions as the ECP would, in one transaction,
with the state changes recorded (DeviceStateChange rows tied to the audit
event) and the mails written to the outbox and published to a broker queue
that no worker reads (Redis database 12, dropped afterwards). The time of
each statement kind is summed (an execute_wrapper) to show where it goes.
Each step starts right after a CHECKPOINT, so that it does not pay for the
writes of the one before.

    .venv/bin/python bench/bench_rule_change.py --template ecp_bench_full --runs 3
"""

import argparse
import json
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

TARGET_S = 30
RELEASE_RULE = ("UserAgent", "Outlook-iOS-Android/*", "Allow")

# Statement kinds, by what the SQL starts with or holds (first match wins).
KINDS = (
    ("plan: distinct profiles", lambda s: s.startswith("SELECT") and "GROUP BY" in s),
    ("moving devices (FOR UPDATE)", lambda s: "FOR UPDATE" in s),
    ("UPDATE devices", lambda s: s.startswith('UPDATE "devices_mobiledevice"')),
    ("INSERT history", lambda s: s.startswith('INSERT INTO "devices_devicestatechange"')),
    ("INSERT outbox", lambda s: s.startswith('INSERT INTO "notifications_notification"')),
    ("SELECT outbox keys", lambda s: 'FROM "notifications_notification"' in s),
    ("SELECT devices for mails", lambda s: 'FROM "devices_mobiledevice"' in s),
    ("other", lambda s: True),
)


class Timer:
    """Sums the time of each statement kind (connection.execute_wrapper)."""

    def __init__(self):
        self.seconds = defaultdict(float)
        self.count = defaultdict(int)

    def __call__(self, execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            kind = next(name for name, test in KINDS if test(sql))
            self.seconds[kind] += time.perf_counter() - start
            self.count[kind] += 1


def child(database: str, queue: str) -> dict:
    """One run, in its own process on its own copy of the database."""
    common.setup_django(database, CELERY_BROKER_URL=f"{common.REDIS}/{common.BROKER_DB}")
    from django.db import connection

    from devices import actions, tasks
    from devices.cli import CLI
    from devices.models import AccessState, DeviceAccessRule, DeviceStateChange, MobileDevice
    from ecp.celery import app
    from notifications import outbox
    from notifications.models import Notification

    app.conf.task_default_queue = queue  # a queue no worker reads

    published = {"seconds": 0.0}
    queue_mails = outbox.queue

    def timed_queue(ids):
        start = time.perf_counter()
        try:
            queue_mails(ids)
        finally:
            published["seconds"] += time.perf_counter() - start

    outbox.queue = timed_queue
    ended = tasks.end_discovery_windows()  # the seed's discovery devices are long past
    outlook = DeviceAccessRule.objects.get(characteristic="DeviceType", query_key="outlook")
    devices = MobileDevice.objects.filter(device_type="Outlook").count()

    def step(name, action) -> dict:
        mails_before = Notification.objects.count()
        # Each step starts from a checkpoint: the previous step's dirty pages and WAL
        # (the quarantine step writes 300,000 outbox rows) are written out before the
        # clock starts, instead of being charged to the next step by the checkpoints
        # PostgreSQL forces every 1 GB of WAL (max_wal_size, Debian's default).
        with connection.cursor() as cursor:
            cursor.execute("CHECKPOINT")
        published["seconds"] = 0.0
        timer = Timer()
        start = time.perf_counter()
        with connection.execute_wrapper(timer):
            result = action()
        seconds = time.perf_counter() - start
        history = DeviceStateChange.objects.filter(event=result.event).count()
        summary = {f"{a} -> {b}": n for (a, b), n in result.summary().items()}
        out = {
            "seconds": seconds,
            "transitions": len(result.transitions),
            "summary": summary,
            "history_rows": history,
            "mails_queued": Notification.objects.count() - mails_before,
            "publish_seconds": published["seconds"],
            "sql_seconds": dict(timer.seconds),
            "sql_count": dict(timer.count),
            "message": result.event.message,
        }
        print(f"  {name}: {seconds:.1f} s, {out['transitions']:,} transitions {summary}, "
              f"{history:,} history rows, {out['mails_queued']:,} mails queued "
              f"(published in {published['seconds']:.1f} s after commit)")  # fmt: skip
        for kind, secs in sorted(timer.seconds.items(), key=lambda kv: -kv[1]):
            print(f"      {secs:6.1f} s  {timer.count[kind]:>5} x  {kind}")
        rest = seconds - sum(timer.seconds.values()) - published["seconds"]
        print(f"      {rest:6.1f} s           Python, commit and the rest")
        return out

    quarantine = step(
        "quarantine (rule Outlook: Allow -> Quarantine)",
        lambda: actions.update_rule(CLI, outlook, access_level="Quarantine"),
    )
    characteristic, query_string, level = RELEASE_RULE
    release = step(
        f"release (new rule {query_string} ({characteristic}): {level})",
        lambda: actions.create_rule(
            CLI, characteristic=characteristic, query_string=query_string, access_level=level
        ),
    )
    left = MobileDevice.objects.filter(
        device_type="Outlook", access_state=AccessState.QUARANTINED
    ).count()
    # A fresh seed's devices in discovery may leave it during the steps (its window
    # ends): re-evaluation moves them too, as it would in production.
    released = release["summary"].get("Quarantined -> Allowed", 0)
    if left or released != devices:
        raise SystemExit(f"release incomplete: {released} released, {left} still quarantined")
    return {
        "outlook_devices": devices,
        "discovery_ended": ended,
        "quarantine": quarantine,
        "release": release,
    }


def drop_queue(queue: str) -> None:
    import redis

    client = redis.Redis.from_url(f"{common.REDIS}/{common.BROKER_DB}")
    client.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--template", help="the seeded bench database (required)")
    parser.add_argument("--work", default="ecp_bench_rules", help="its copy, made per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", help="append the result to this JSON-lines file")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--queue", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(child(args.work, args.queue)))
        return
    if not args.template:
        parser.error("--template is required")
    print(common.machine())
    runs = []
    for n in range(args.runs):
        copy = common.create_database(args.work, args.template)
        queue = f"ecp-bench-parked-{uuid.uuid4().hex[:8]}"
        print(f"run {n + 1}/{args.runs}: fresh copy of {args.template} in {copy:.1f} s; "
              f"{common.load()}")  # fmt: skip
        try:
            done = subprocess.run(
                [common.PY, __file__, "--child", "--work", args.work, "--queue", queue],
                cwd=common.REPO,
                capture_output=True,
                text=True,
                timeout=3600,
            )
        finally:
            drop_queue(queue)
        print("\n".join(line for line in done.stdout.splitlines() if line.startswith("  ")))
        if done.returncode:
            raise SystemExit(f"run failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        result = json.loads(done.stdout.rsplit("RESULT ", 1)[1])
        result["load"] = common.load()
        runs.append(result)
    common.drop_database(args.work)
    release = common.median([r["release"]["seconds"] for r in runs])
    quarantine = common.median([r["quarantine"]["seconds"] for r in runs])
    moved = runs[-1]["release"]["summary"]["Quarantined -> Allowed"]
    print(f"rule change summary (median of {len(runs)} runs, {runs[-1]['outlook_devices']:,} "
          f"Outlook devices of the seeded database):")  # fmt: skip
    print(f"  release {moved:,} quarantined devices: {release:.1f} s (target < {TARGET_S} s)")
    print(f"  quarantine them, {runs[-1]['quarantine']['mails_queued']:,} mails queued: "
          f"{quarantine:.1f} s (no target)")  # fmt: skip
    common.record(
        args.json,
        "rule_change",
        {"release_s": release, "quarantine_s": quarantine, "moved": moved, "runs": runs},
    )


if __name__ == "__main__":
    main()
