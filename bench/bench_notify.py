"""Notification burst (issue 8, benchmark 5).

10,000 devices are quarantined at once (the organisation default changes from
Allow to Quarantine), with user mail on and the admin digest on. Two Celery
worker processes deliver the outbox to a local SMTP sink (aiosmtpd, in this
process). Reported: the mails per second from the commit to the last user
mail; that every mail the outbox holds arrived exactly once (by Message-ID,
which names the outbox row); and that each admin got one digest listing the
10,000 devices, not 10,000 mails.

    .venv/bin/python bench/bench_notify.py --devices 10000 --runs 3

Each run has its own database (ecp_bench_mail, dropped afterwards), its own
Redis database for the broker (13, its keys deleted afterwards) and its own
workers, which stop with it.
"""

import argparse
import re
import sys
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

DATABASE = "ecp_bench_mail"
BROKER_DB = 13
BROKER = f"{common.REDIS}/{BROKER_DB}"
ADMINS = ("helpdesk@example.com", "it-security@example.com")
TARGET_RATE = 100
WORKERS = 2
_MESSAGE_ID = re.compile(rb"^Message-ID: *<([^>]+)>", re.I | re.M)
_SUBJECT = re.compile(rb"^Subject: *(.*)$", re.I | re.M)


class Sink:
    """An SMTP server that only counts: recipient, Message-ID, subject, arrival time."""

    def __init__(self):
        self.lock = threading.Lock()
        self.messages: list[tuple[str, str, str, float]] = []

    async def handle_DATA(self, server, session, envelope):
        content = envelope.content
        mid = _MESSAGE_ID.search(content)
        subject = _SUBJECT.search(content)
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.messages.append(
                    (
                        rcpt,
                        mid.group(1).decode() if mid else "",
                        subject.group(1).decode(errors="replace") if subject else "",
                        time.monotonic(),
                    )
                )
        return "250 OK"

    def count(self, predicate=lambda m: True) -> int:
        with self.lock:
            return sum(1 for m in self.messages if predicate(m))


def worker_env(smtp_port: int) -> dict:
    return common.server_env(
        DATABASE,
        CELERY_BROKER_URL=BROKER,
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(smtp_port),
        EMAIL_TIMEOUT="10",
        DEFAULT_FROM_EMAIL="ECP <ecp@example.com>",
        ECP_BASE_URL="https://ecp.example.com",
    )


def clear_broker() -> None:
    import redis

    client = redis.Redis.from_url(BROKER)
    keys = ["celery", "_kombu.binding.celery", "unacked", "unacked_index", "unacked_mutex"]
    keys += [k.decode() for k in client.scan_iter("_kombu.binding.*")]
    keys += [k.decode() for k in client.scan_iter("celery-task-meta-*")]
    client.delete(*keys)


def prepare(devices: int) -> None:
    """The database: mailboxes and devices Allowed under the default Allow; mail settings."""
    from django.utils import timezone

    from devices import actions
    from devices.cli import CLI
    from devices.models import AccessReason, AccessState, Mailbox, MobileDevice

    boxes = max(1, devices // 5)
    now = timezone.now()
    Mailbox.objects.bulk_create(
        [
            Mailbox(alias=f"user{i:05d}", primary_smtp_address=f"user{i:05d}@example.com",
                    display_name=f"User {i:05d}")
            for i in range(boxes)
        ],
        batch_size=2000,
    )  # fmt: skip
    ids = list(Mailbox.objects.order_by("pk").values_list("pk", flat=True))
    MobileDevice.objects.bulk_create(
        [
            MobileDevice(
                mailbox_id=ids[i % boxes], device_id=f"Appl{i:012d}", device_key=f"appl{i:012d}",
                device_type="iPhone", device_model="iPhone15C2", device_os="iOS 17.5.1 21F90",
                user_agent="Apple-iPhone15C2/2106.90", eas_version="16.1",
                device_info_received=True, first_seen=now, last_seen=now, state_changed_at=now,
                access_state=AccessState.ALLOWED, access_state_reason=AccessReason.GLOBAL,
            )
            for i in range(devices)
        ],
        batch_size=2000,
    )  # fmt: skip
    actions.set_org_settings(
        CLI,
        default_access_level="Allow",
        admin_mail_recipients=list(ADMINS),
        admin_mail_mode="digest",
        admin_digest_minutes=15,
        send_user_mail=True,
    )


def start_workers(smtp_port: int, run_dir: Path) -> list:
    workers = []
    for n in range(WORKERS):
        log = run_dir / f"worker{n + 1}.log"
        command = [
            str(common.BIN / "celery"),
            *("-A", "ecp", "worker", "--pool=solo", "-l", "info"),
            *("-n", f"bench{n + 1}@%h"),
            *("--without-gossip", "--without-mingle", "--without-heartbeat"),
        ]
        workers.append((common.start(command, env=worker_env(smtp_port), log=log), log))
    for process, log in workers:
        common.wait_for(
            lambda p=process, lg=log: p.poll() is not None or " ready." in lg.read_text(),
            "a Celery worker to start",
            timeout=60,
        )
        if process.poll() is not None:
            raise RuntimeError(f"a worker exited:\n{log.read_text()[-2000:]}")
    return workers


def one_run(devices: int, run_dir: Path, timeout: float) -> dict:
    from aiosmtpd.controller import Controller
    from django.db import connection

    from devices import actions
    from devices.cli import CLI
    from ecp.celery import app
    from notifications import tasks
    from notifications.models import Kind, Notification, Status

    common.create_database(DATABASE)
    common.manage(DATABASE, "migrate", "--noinput", "-v0")
    connection.close()
    prepare(devices)
    clear_broker()
    app.conf.update(broker_url=BROKER, task_always_eager=False)
    app._pool = None  # the broker URL changed: new connection pools
    app.amqp._producer_pool = None
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=common.free_port())
    controller.start()
    workers = start_workers(controller.port, run_dir)
    try:
        start = time.monotonic()
        result = actions.set_org_settings(CLI, default_access_level="Quarantine")
        committed = time.monotonic()

        def users():
            return sink.count(lambda m: m[0] not in ADMINS)

        common.wait_for(lambda: users() >= devices, f"{devices} user mails", timeout=timeout,
                        interval=0.2)  # fmt: skip
        last = max(m[3] for m in sink.messages if m[0] not in ADMINS)
        held = Notification.objects.filter(status=Status.HELD).count()
        tasks.send_digests.delay(True)  # the digest is due in 15 minutes: send it now
        common.wait_for(lambda: sink.count(lambda m: m[0] in ADMINS) >= len(ADMINS),
                        "the admin digests", timeout=120, interval=0.2)  # fmt: skip
        time.sleep(2)  # anything doubled would arrive now
    finally:
        for process, _ in workers:
            common.stop(process)
        controller.stop()
        clear_broker()
    transitions = len(result.transitions)
    rows = Notification.objects.exclude(status=Status.DIGESTED)
    expected = {
        f"{pk}.": (recipient, status) for pk, recipient, status in
        rows.values_list("pk", "recipient", "status")
    }  # fmt: skip
    received = Counter(m[1].split(".", 1)[0] + "." for m in sink.messages)
    lost = [key for key in expected if received[key] == 0]
    doubled = [key for key, n in received.items() if n > 1]
    unknown = [key for key in received if key not in expected]
    not_sent = rows.exclude(status=Status.SENT).count()
    digests = list(
        Notification.objects.filter(kind=Kind.ADMIN_DIGEST).values_list("recipient", "context")
    )
    admin_mails = Counter(m[0] for m in sink.messages if m[0] in ADMINS)
    seconds = last - committed
    out = {
        "devices": devices,
        "transitions": transitions,
        "action_s": committed - start,
        "user_mails": users(),
        "mail_s": seconds,
        "rate": devices / seconds if seconds > 0 else float("inf"),
        "held_for_digest": held,
        "digests": {r: c["count"] for r, c in digests},
        "admin_mails": dict(admin_mails),
        "sink_messages": len(sink.messages),
        "outbox_rows": len(expected),
        "lost": len(lost),
        "doubled": len(doubled),
        "unknown": len(unknown),
        "not_sent": not_sent,
        "load": common.load(),
    }
    common.drop_database(DATABASE)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=900, help="seconds per run, at most")
    parser.add_argument("--json", help="append the result to this JSON-lines file")
    args = parser.parse_args()
    print(common.machine())
    common.create_database(DATABASE)  # setup_django needs the database to exist
    common.setup_django(DATABASE, CELERY_BROKER_URL=BROKER)
    runs = []
    for n in range(args.runs):
        r = one_run(args.devices, common.VAR / f"notify-run{n + 1}", args.timeout)
        runs.append(r)
        print(
            f"run {n + 1}/{args.runs}: {r['transitions']:,} devices quarantined in "
            f"{r['action_s']:.1f} s; {r['user_mails']:,} user mails in {r['mail_s']:.1f} s = "
            f"{r['rate']:.0f} mails/s by {WORKERS} workers; outbox {r['outbox_rows']:,} rows, "
            f"sink {r['sink_messages']:,} messages, lost {r['lost']}, doubled {r['doubled']}, "
            f"unknown {r['unknown']}, not sent {r['not_sent']}; {r['held_for_digest']:,} admin "
            f"mails held, digests {r['digests']}, admin mails received {r['admin_mails']}; "
            f"{r['load']}"
        )
    rate = common.median([r["rate"] for r in runs])
    ok = all(r["lost"] == r["doubled"] == r["unknown"] == r["not_sent"] == 0 for r in runs)
    digest_ok = all(
        r["admin_mails"] == dict.fromkeys(ADMINS, 1)
        and r["digests"] == dict.fromkeys(ADMINS, args.devices)
        for r in runs
    )
    print(f"notification summary (median of {len(runs)} runs): {rate:.0f} mails/s "
          f"(target >= {TARGET_RATE}); none lost or doubled: {ok}; "
          f"one digest per admin listing {args.devices:,} devices: {digest_ok}")  # fmt: skip
    common.record(args.json, "notify", {"rate": rate, "exactly_once": ok,
                                        "one_digest_each": digest_ok, "runs": runs})  # fmt: skip


if __name__ == "__main__":
    main()
