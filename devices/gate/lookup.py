"""The gate's hot path in one query: a login, its mailbox and one of its partnerships.

Every ActiveSync request of every device reads these three rows. Through the
ORM that was two queries whose SQL Django compiled afresh on every request
(about 1.5 ms of CPU each here, far more than the database's work), sent with
client-side binding (parsed and planned by PostgreSQL every time) after a
SELECT 1 health check. This module writes the statement once, from the models'
metadata; PostgreSQL prepares it once per connection; the row comes back in
binary and becomes model instances through Model.from_db and each column's
converters, as the ORM itself does. A dropped connection is found by using it
and replaced once. bench/bench_gate.py measures what it buys (docs/PERFORMANCE.md).
"""

import select
from dataclasses import dataclass
from functools import cache

import psycopg
from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connection, connections

from devices.actions import DEVICE_INFORMATION_FIELDS
from devices.models import Mailbox, MobileDevice

# What the gate reads of a partnership (the rest is deferred: read on access).
DEVICE_FIELDS = (
    *("id", "mailbox_id", "device_id", "device_type", "access_state", "access_state_reason"),
    *("last_seen", "first_seen", "device_info_received", "user_agent", "eas_version"),
    "redecide_due_at",
    *DEVICE_INFORMATION_FIELDS.values(),
)


@dataclass
class Found:
    user: object  # the active login, its mailbox cached on it (None when it has none)
    device: MobileDevice | None  # the mailbox's partnership with the asked DeviceId


@dataclass(frozen=True)
class _Part:
    model: type
    attnames: tuple[str, ...]
    converters: tuple  # (column index within the part, [converter, ...], Col)
    start: int
    stop: int


@dataclass(frozen=True)
class _Plan:
    sql: str
    user: _Part
    mailbox: _Part
    device: _Part


def _part(model, alias: str, names, start: int) -> tuple[_Part, list[str]]:
    qn = connection.ops.quote_name
    # Model.from_db takes a subset of the columns in the model's own order.
    wanted = {model._meta.get_field(name) for name in names}
    fields = [f for f in model._meta.concrete_fields if f in wanted]
    converters = []
    for index, field in enumerate(fields):
        col = field.get_col(alias)
        found = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
        if found:
            converters.append((index, found, col))
    part = _Part(
        model, tuple(f.attname for f in fields), tuple(converters), start, start + len(fields)
    )
    return part, [f"{alias}.{qn(f.column)}" for f in fields]


def _stored(model) -> list[str]:
    """Every column but those the database generates (a search text is not read here)."""
    return [f.name for f in model._meta.concrete_fields if not getattr(f, "generated", False)]


@cache
def _plan() -> _Plan:
    qn = connection.ops.quote_name
    User = get_user_model()
    user, user_cols = _part(User, "u", _stored(User), 0)
    mailbox, mailbox_cols = _part(Mailbox, "m", _stored(Mailbox), user.stop)
    device, device_cols = _part(MobileDevice, "d", DEVICE_FIELDS, mailbox.stop)
    mailbox_user = Mailbox._meta.get_field("user").column
    device_mailbox = MobileDevice._meta.get_field("mailbox").column
    device_key = MobileDevice._meta.get_field("device_key").column
    # Only names from the models' metadata, quoted; the values are parameters.
    sql = (
        f"SELECT {', '.join(user_cols + mailbox_cols + device_cols)}"  # noqa: S608
        f" FROM {qn(User._meta.db_table)} u"
        f" LEFT JOIN {qn(Mailbox._meta.db_table)} m"
        f" ON m.{qn(mailbox_user)} = u.{qn(User._meta.pk.column)}"
        f" LEFT JOIN {qn(MobileDevice._meta.db_table)} d"
        f" ON d.{qn(device_mailbox)} = m.{qn(Mailbox._meta.pk.column)}"
        f" AND d.{qn(device_key)} = %s"
        f" WHERE u.{qn(User._meta.pk.column)} = %s"
    )
    return _Plan(sql, user, mailbox, device)


def _build(db, part: _Part, row: tuple):
    values = list(row[part.start : part.stop])
    if values[0] is None:  # the primary key: a LEFT JOIN found nothing
        return None
    for index, converters, col in part.converters:
        for converter in converters:
            values[index] = converter(values[index], col, db)
    return part.model.from_db(db.alias, part.attnames, values)


PREPARE_THRESHOLD = 5  # psycopg's default; _PreparedCursor prepares at once anyway


class _PreparedCursor(psycopg.Cursor):
    """Binds parameters on the server and prepares every statement it runs: parsed
    and planned once per connection, not once per request. Django's own cursors
    bind on the client and never prepare (it turns psycopg's prepare_threshold
    off for connection poolers; PgBouncer 1.21+ with max_prepared_statements
    set handles prepared statements: README, "Production")."""

    def execute(self, query, params=None, *, prepare=None, binary=None):
        return super().execute(query, params, prepare=True, binary=True)


def _fetch(db, sql: str, params: list) -> tuple | None:
    if db.vendor != "postgresql":
        with db.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()
    # Django's CONN_HEALTH_CHECKS would send SELECT 1 first: one more round trip on
    # every request. The gate checks a reused connection by using it instead: if the
    # database dropped it (a restart, an idle timeout), it reconnects and asks once more.
    # (A read outside any transaction: asking again is always safe.)
    reused = db.connection is not None
    try:
        return _fetch_prepared(db, sql, params)
    except (OperationalError, InterfaceError):
        if not reused or db.in_atomic_block:
            raise
        db.close()
        return _fetch_prepared(db, sql, params)


def _fetch_prepared(db, sql: str, params: list) -> tuple | None:
    db.ensure_connection()
    raw = db.connection
    if raw.prepare_threshold is None:  # Django's default: off for every cursor
        raw.prepare_threshold = PREPARE_THRESHOLD  # client-binding cursors ignore it
    logged = db.queries_logged  # DEBUG, or a test counting queries
    with db.wrap_database_errors:
        cursor = _PreparedCursor(raw)
        if logged:
            cursor = db.make_debug_cursor(cursor)
        with cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        if logged and db.queries_log[-1]["sql"] is None:
            # Django cannot render a server-bound statement: log it with its values.
            db.queries_log[-1]["sql"] = f"{sql} -- {params!r}"
    db.health_check_done = True  # it answered: later queries of this request skip it
    return row


def load(user_id: int, device_key: str) -> Found | None:
    """The login `user_id` with its mailbox and that mailbox's partnership `device_key`
    (lower-cased DeviceId), in one query; None when the login does not exist."""
    plan = _plan()
    # The connection of this thread, once: each attribute read through
    # django.db.connection is a lookup in a context-local (asgiref), which the
    # profile of the gate counted 20 times a request.
    db = connections[DEFAULT_DB_ALIAS]
    row = _fetch(db, plan.sql, [device_key, user_id])
    if row is None:
        return None
    user = _build(db, plan.user, row)
    mailbox = _build(db, plan.mailbox, row)
    related = type(user).mailbox.related
    related.set_cached_value(user, mailbox)  # None: "no mailbox", without a query
    device = None
    if mailbox is not None:
        related.field.set_cached_value(mailbox, user)
        device = _build(db, plan.device, row)
        if device is not None:
            MobileDevice.mailbox.field.set_cached_value(device, mailbox)
    return Found(user, device)


def connection_looks_alive() -> bool:
    """Whether this thread's database connection is open and has nothing unasked to say.

    No round trip: an idle connection we never LISTEN on receives nothing unless
    the server is going away (a restart or a stop sends a FATAL and closes it; a
    crashed server's socket reads as closed). The decision cache (decisions.py)
    answers only while this holds, so that a database outage is still a 503 at
    once (docs/RELIABILITY.md); a partition that sends nothing is bounded by the
    cache's TTL. Without a connection (none yet, or closed after an error) it is
    False: the request asks the database, as an uncached one does.
    """
    db = connections[DEFAULT_DB_ALIAS]
    raw = db.connection
    if raw is None:
        return False
    if db.vendor != "postgresql":
        return True  # the embedded SQLite is a file, not a server that can go away
    if raw.closed or raw.broken:
        return False
    try:
        readable, _, _ = select.select([raw.fileno()], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable
