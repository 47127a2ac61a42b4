"""`eas sync-directory` from a real slapd (issue 14): 20,000 users and 500 groups.

Debian's slapd (tests/ldap_support.py: a throwaway config and MDB database in a
temporary directory, a free loopback port), seeded with slapadd before it
starts: --users users user00001... (mail, displayName, a {SSHA} password each)
and --groups groups, every user in one to three of them. Then, on a fresh bench
database (ecp_bench_directory on BENCH_PG, migrated, dropped afterwards):

1. the directory read alone: a paged search of every user and every group, as
   the sync's bind DN (what part of the sync is LDAP);
2. `manage.py eas sync-directory --format json`, first run: every user becomes
   a mailbox (target < 60 s);
3. the same again, nothing changed in the directory (target < 15 s).

Each sync is timed as the operator sees it: the whole manage.py process.

    .venv/bin/python bench/bench_directory.py
    .venv/bin/python bench/bench_directory.py --users 2000 --groups 50 --report var/bench/d.json
    .venv/bin/python bench/bench_directory.py --slapd-only     # seeding and the read, no ECP
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from tests.ldap_support import Slapd, available, paged_search, seed_ldif  # noqa: E402

FIRST_TARGET_S = 60
NO_CHANGE_TARGET_S = 15
COUNTS = ("created", "updated", "disabled", "unchanged")


def seed(tmp: Path, users: int, groups: int, *, reader: bool) -> tuple[Slapd, dict]:
    started = time.monotonic()
    ldif = seed_ldif(users, groups)
    ldif_s = time.monotonic() - started
    server = Slapd(tmp, seed=ldif)
    slapadd_s = server.load()
    started = time.monotonic()
    server.start()
    start_s = time.monotonic() - started
    print(f"slapd {server.uri}: LDIF of {users:,} users / {groups:,} groups "
          f"({len(ldif) / 2**20:.1f} MiB) in {ldif_s:.2f} s, slapadd {slapadd_s:.2f} s, "
          f"started in {start_s:.2f} s")  # fmt: skip
    figures = {"ldif_s": ldif_s, "slapadd_s": slapadd_s, "start_s": start_s}
    figures.update(read(server, users, groups, reader=reader))
    return server, figures


def read(server: Slapd, users: int, groups: int, *, reader: bool) -> dict:
    """Every user and group, page by page (500), as the sync's bind DN would read them."""
    conn = server.connect(timeout=30)
    if reader:
        conn.simple_bind_s(server.reader_dn, server.reader_password)
    else:
        conn.simple_bind_s(server.bind_dn, server.bind_password)
    started = time.monotonic()
    attrs = ["uid", "mail", "displayName", "employeeType", "preferredLanguage"]
    found_users = sum(
        1 for _ in paged_search(conn, server.users_base, "(objectClass=inetOrgPerson)", attrs)
    )
    users_s = time.monotonic() - started
    started = time.monotonic()
    found_groups = members = 0
    for _, entry in paged_search(conn, server.groups_base, "(objectClass=groupOfNames)"):
        found_groups += 1
        members += len(entry.get("member", []))
    groups_s = time.monotonic() - started
    conn.unbind_s()
    if (found_users, found_groups) != (users, groups):
        raise SystemExit(f"the directory holds {found_users} users, {found_groups} groups")
    print(f"paged read as {'the reader' if reader else 'the rootdn'}: {found_users:,} users "
          f"in {users_s:.2f} s, {found_groups:,} groups ({members:,} member values) in "
          f"{groups_s:.2f} s")  # fmt: skip
    return {"read_users_s": users_s, "read_groups_s": groups_s, "members": members}


def sync(database: str, env: dict) -> tuple[float, dict]:
    started = time.monotonic()
    out = common.manage(database, "eas", "sync-directory", "--format", "json", **env)
    seconds = time.monotonic() - started
    lines = [line for line in out.splitlines() if line.strip().startswith("{")]
    if not lines:
        raise SystemExit(f"sync-directory printed no JSON object:\n{out[-2000:]}")
    return seconds, json.loads(lines[-1])


def check(name: str, counts: dict, expected: dict) -> list[str]:
    wrong = [
        f"{k} {counts.get(k)} (expected {v})" for k, v in expected.items() if counts.get(k) != v
    ]
    return [f"{name}: {', '.join(wrong)}"] if wrong else []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--groups", type=int, default=500)
    parser.add_argument("--database", default="ecp_bench_directory", help="made afresh, dropped")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--reader",
        action="store_true",
        help="bind as cn=reader (500 entries per unpaged search, as AD) instead of the rootdn",
    )
    parser.add_argument("--slapd-only", action="store_true", help="seed and read; no ECP")
    parser.add_argument("--report", "--json", dest="report", help="append the result (JSON line)")
    args = parser.parse_args()
    if not available():
        raise SystemExit("slapd is missing: apt-get install slapd ldap-utils")
    print(common.machine())
    result = {
        "users": args.users,
        "groups": args.groups,
        "bind": "reader" if args.reader else "rootdn",
    }
    with tempfile.TemporaryDirectory(prefix="ecp-bench-slapd-") as tmp:
        server, figures = seed(Path(tmp), args.users, args.groups, reader=args.reader)
        result.update(figures)
        try:
            if not args.slapd_only:
                result.update(bench_sync(server, args))
        finally:
            server.stop()
    common.record(args.report, "directory", result)
    if result.get("problems"):
        raise SystemExit("\n".join(result["problems"]))


def bench_sync(server: Slapd, args) -> dict:
    env = server.env(reader=args.reader)
    common.create_database(args.database)
    try:
        common.manage(args.database, "migrate", "--noinput", "-v0")
        print(f"fresh database {args.database}, migrated; {common.load()}", flush=True)
        first_s, first = sync(args.database, env)
        print(f"sync-directory, first run: {first_s:.1f} s (target < {FIRST_TARGET_S} s) "
              f"{first}; {common.load()}", flush=True)  # fmt: skip
        again_s, again = sync(args.database, env)
        print(f"sync-directory, no change: {again_s:.1f} s (target < {NO_CHANGE_TARGET_S} s) "
              f"{again}; {common.load()}", flush=True)  # fmt: skip
    finally:
        if not args.keep:
            common.drop_database(args.database)
    problems = check("first run", first, {"created": args.users, "disabled": 0})
    problems += check(
        "no-change run", again, {"created": 0, "updated": 0, "disabled": 0, "unchanged": args.users}
    )
    for problem in problems:
        print(f"  unexpected counts: {problem}")
    return {
        "first_s": first_s,
        "first": first,
        "first_met": first_s < FIRST_TARGET_S,
        "no_change_s": again_s,
        "no_change": again,
        "no_change_met": again_s < NO_CHANGE_TARGET_S,
        "problems": problems,
    }


if __name__ == "__main__":
    main()
