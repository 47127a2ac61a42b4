"""grandfather-devices, purge-quarantined, seed-demo: bulk chores."""

import sys

from django.conf import settings

from devices import actions, demo

from . import CLI, add_verb, rule_name
from .output import add_format_option, render

PURGE_FIELDS = (
    "mailbox",
    "device_id",
    "device_type",
    "device_model",
    "access_rule",
    "first_seen",
    "last_seen",
    "state_changed_at",
)


def register(verbs) -> None:
    p = add_verb(
        verbs,
        "grandfather-devices",
        grandfather_devices,
        "Put every device allowed by the organisation default on its mailbox's allowed list,"
        " so that switching the default to Quarantine leaves them syncing.",
    )
    p.add_argument("--dry-run", action="store_true", help="only count them")

    p = add_verb(
        verbs,
        "purge-quarantined",
        purge_quarantined,
        "Remove the partnerships that have been quarantined for N days or more.",
    )
    p.add_argument("--older-than-days", type=int, required=True, metavar="N", help="0: every one")
    p.add_argument("--dry-run", action="store_true", help="only list them")
    add_format_option(p)

    p = add_verb(
        verbs,
        "seed-demo",
        seed_demo,
        "Fill an empty database with demo mailboxes, devices in every access state,"
        " rules and logins.",
        epilog=f"The first {demo.LOGIN_MAILBOXES} mailboxes get a login each; the logins are"
        " printed and written to var/demo-logins.txt.",
    )
    p.add_argument("--mailboxes", type=int, default=12, metavar="N")
    p.add_argument(
        "--devices",
        type=int,
        default=40,
        metavar="M",
        help=f"partnerships; beyond the first {demo.STORY_DEVICES} they are loaded in bulk"
        " (COPY on PostgreSQL), e.g. --mailboxes 100000 --devices 1000000",
    )
    p.add_argument(
        "--if-empty", action="store_true", help="do nothing when any mailbox exists already"
    )
    p.add_argument(
        "--progress", action="store_true", help="print each step and its duration to stderr"
    )


def grandfather_devices(out, args) -> None:
    result = actions.grandfather_devices(CLI, dry_run=args.dry_run)
    if args.dry_run:
        out.write(f"Dry run: would add {_devices(result.count)} to their mailbox's allowed list.")
    else:
        out.write(result.event.message)


def purge_quarantined(out, args) -> None:
    days = args.older_than_days
    result = actions.purge_quarantined(CLI, older_than_days=days, dry_run=args.dry_run)
    what = _devices(result.count, "quarantined")
    if days:
        what = f"{_devices(result.count)} quarantined for {days} days or more"
    if not args.dry_run:
        out.write(f"Removed {what}.")
        return
    if args.format == "table":  # json and csv stay machine-readable: the rows only
        out.write(f"Dry run: would remove {what}.")
        if result.count:
            out.write("")
    render(out, (_purge_row(d) for d in result.obj), args.format, fields=PURGE_FIELDS, empty="")


def _devices(n: int, adjective: str = "") -> str:
    return f"{n} {adjective + ' ' if adjective else ''}device{'s' if n != 1 else ''}"


def _purge_row(device) -> dict:
    rule = device.access_rule
    return {
        "mailbox": device.mailbox.alias,
        "device_id": device.device_id,
        "device_type": device.device_type,
        "device_model": device.device_model,
        "access_rule": rule_name(rule.query_string, rule.characteristic) if rule else None,
        "first_seen": device.first_seen,
        "last_seen": device.last_seen,
        "state_changed_at": device.state_changed_at,
    }


def seed_demo(out, args) -> None:
    created = demo.seed_demo(
        mailboxes=args.mailboxes,
        devices=args.devices,
        if_empty=args.if_empty,
        actor=CLI,
        progress=_to_stderr if args.progress else None,
    )
    logins_file = demo.logins_path()
    if not created:
        if logins_file.exists():
            out.write(f"Demo data already present; logins are in {_shown(logins_file)}")
        else:
            out.write("Demo data already present")
        return
    states = ", ".join(f"{state} {n}" for state, n in sorted(created["states"].items()))
    out.write(
        f"Demo data: {created['mailboxes']} mailboxes, {created['devices']} devices ({states})"
    )
    out.write(f"Logins (also in {_shown(logins_file)}):")
    width = max(len(username) for username in created["logins"])
    for username, password in created["logins"].items():
        out.write(f"  {username.ljust(width)}  {password}")


def _to_stderr(line: str) -> None:
    print(f"seed-demo: {line}", file=sys.stderr, flush=True)


def _shown(path) -> str:
    """var/demo-logins.txt when it lives under the project, else the full path."""
    try:
        return str(path.relative_to(settings.BASE_DIR))
    except ValueError:
        return str(path)
