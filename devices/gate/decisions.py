"""The gate's decision cache: a known device's last answer, kept in the worker a few seconds.

A syncing device asks many times a minute, and for a device whose answer cannot
change with time (Allowed, Blocked, Quarantined; no held decision due) every
one of those requests read the same three rows. This process-local map from
(verified credentials, DeviceId) to what devices.gate.lookup read last spares
that query and the building of its model instances (docs/PERFORMANCE.md,
issue 19).

The bound: an entry is used at most ECP_DECISION_CACHE_SECONDS (default 5; 0
turns the cache off) after the database was read for it. Sooner, usually:

- every audited change (devices.audit.record, which every action calls) drops
  this process's map at once and increments a version number in the shared
  cache (Redis, CACHE_URL). Not a first contact's "device.create" from the
  gate: no cache can hold a device that did not exist;
- each process reads that version at most every VERSION_CHECK_SECONDS and drops
  its map when it moved;
- for QUIET_SECONDS after a process drops its map it keeps nothing new: the
  change was published before its transaction committed, and what is read
  meanwhile may be the state before it.

So a Block, an Allow, a rule or a default change reaches every worker within
VERSION_CHECK_SECONDS when Redis is there, and within ECP_DECISION_CACHE_SECONDS
in any case (Redis down, or none configured: each process's own cache then).
A login or a mailbox saved through the ORM (a password changed, a login
deactivated, in the panel or in Django's admin) counts as such a change too
(connect_saves). What neither audits nor saves a model (an UPDATE by hand, a
restored backup) takes effect within ECP_DECISION_CACHE_SECONDS: the entry
holds the login and the device as they were read.
The organisation's settings the gate decides first contacts with (org_settings())
are kept under the same bound, and dropped with the map (a saved OrgSettings too).
A request whose details differ from the cached device's (another user agent,
DeviceInformation) is not answered from here: devices.actions.record_contact
records it, and its answer is cached afresh.
"""

import logging
import threading
import time

from django.conf import settings
from django.core.cache import cache

from devices.models import AccessState, AuditSource, OrgSettings

log = logging.getLogger(__name__)

VERSION_KEY = "gate:decisions:version"
VERSION_CHECK_SECONDS = 0.25  # how often a process reads the shared version
QUIET_SECONDS = 1.0  # after a change is seen, what is read is not kept (it may not be committed)
MAX_ENTRIES = 10_000  # then the map starts again: a worker serves a few thousand devices
# Answers that cannot change by themselves with time (DeviceDiscovery ends with its
# window, Unknown is decided on the next request).
CACHEABLE_STATES = frozenset({AccessState.ALLOWED, AccessState.BLOCKED, AccessState.QUARANTINED})

NEW_PARTNERSHIP, GATE_SOURCE = "device.create", AuditSource.GATE
clock = time.monotonic  # tests replace it

_entries: dict[tuple[str, str], tuple[object, float]] = {}  # key -> (Found, expires at)
_lock = threading.Lock()  # gthread workers: one map, several threads
_version: object = None  # the shared version this process last read
_version_read_at = float("-inf")
_quiet_until = float("-inf")  # nothing is kept before: a change may not have committed yet
_org: tuple[object, float] | None = None  # the organisation's settings, expires at


def seconds() -> float:
    return settings.ECP_DECISION_CACHE_SECONDS


def cacheable(found) -> bool:
    device = found.device
    return (
        device is not None
        and device.access_state in CACHEABLE_STATES
        and device.redecide_due_at is None
        and found.user.is_active
    )


def recall(key: tuple[str, str]):
    """The Found cached for (credential key, device key), or None."""
    if seconds() <= 0:
        return None
    now = clock()
    _check_version(now)
    entry = _entries.get(key)
    if entry is None:
        return None
    if now >= entry[1]:
        _entries.pop(key, None)
        return None
    return entry[0]


def remember(key: tuple[str, str], found, read_at: float) -> None:
    """Keep `found`, read from the database at `read_at` (clock()), if its answer may be kept."""
    ttl = seconds()
    if ttl <= 0 or not cacheable(found) or read_at < _quiet_until:
        _entries.pop(key, None)
        return
    with _lock:
        if len(_entries) >= MAX_ENTRIES:
            _entries.clear()
        _entries[key] = (found, read_at + ttl)


def org_settings():
    """The organisation's settings as the gate decides with them (record_contact and
    the Provision answer), kept in this process with the same bound as a decision: a
    changed default reaches the gate as a Block does. Read-only: never saved."""
    global _org
    ttl = seconds()
    now = clock()
    if ttl > 0:
        _check_version(now)
        entry = _org
        if entry is not None and now < entry[1]:
            return entry[0]
    org = OrgSettings.load()
    if ttl > 0 and now >= _quiet_until:
        _org = (org, now + ttl)
    return org


def forget(key: tuple[str, str]) -> None:
    _entries.pop(key, None)


def clear() -> None:
    """Drop this process's map (tests; and a change made here)."""
    global _org
    with _lock:
        _entries.clear()
        _org = None


def _check_version(now: float) -> None:
    global _version, _version_read_at
    if now - _version_read_at < VERSION_CHECK_SECONDS:
        return
    _version_read_at = now
    try:
        version = cache.get(VERSION_KEY)
    except Exception:  # noqa: BLE001 - without Redis the TTL alone bounds an entry
        # A Redis that hangs costs its timeout: not again for a TTL (which bounds
        # every entry anyway), and one warning per TTL.
        _version_read_at = now + max(seconds(), VERSION_CHECK_SECONDS)
        log.warning("gate cache unavailable: decision cache bounded by its TTL alone")
        return
    if version != _version:
        _version = version
        _quiet(now)


def _quiet(now: float) -> None:
    global _quiet_until
    _quiet_until = now + QUIET_SECONDS
    clear()


def _publish(now: float) -> None:
    """Tell every process that decisions may have changed."""
    global _version, _version_read_at
    try:
        try:
            version = cache.incr(VERSION_KEY)  # one round trip, once the key exists
        except ValueError:  # not yet (or evicted): start it
            version = 1
            if cache.add(VERSION_KEY, version, timeout=None) is False:
                version = cache.incr(VERSION_KEY)
    except Exception:  # noqa: BLE001 - the others then wait for their TTL
        log.warning("gate cache unavailable: other workers keep decisions up to their TTL")
        return
    # This process has just dropped its map and is quiet: it need not drop it again
    # for its own change, nor for one published before it (its map is empty already).
    _version, _version_read_at = version, now


def changed() -> None:
    """An audited change (devices.audit.record): drop the maps of every process.

    Published at once, not after commit (the callbacks a transaction runs on commit
    are the notifications'): a process that reads the database before the change
    commits must not keep what it read, so for QUIET_SECONDS after a change is
    seen nothing is kept. A transaction longer than that is bounded by the TTL.
    """
    now = clock()
    _quiet(now)
    _publish(now)


def audited(action: str, source: str) -> None:
    """devices.audit.record's hook. A partnership the gate has just created was in no
    cache (only known devices are kept): first contacts leave the others' maps alone."""
    if action == NEW_PARTNERSHIP and source == GATE_SOURCE:
        return
    changed()


def reset() -> None:
    """Forget the map and the version last read (tests: a fresh process)."""
    global _version, _version_read_at, _quiet_until
    clear()
    _version, _version_read_at, _quiet_until = None, float("-inf"), float("-inf")


def _saved(sender, update_fields=None, **kwargs) -> None:
    if update_fields is not None and set(update_fields) <= {"last_login"}:
        return  # a sign-in to the panel changes no device's answer
    changed()


def connect_saves() -> None:
    """A saved or deleted login or mailbox ends the cached decisions, as an audit does."""
    from django.contrib.auth import get_user_model
    from django.db.models.signals import post_delete, post_save

    from devices.models import Mailbox, OrgSettings

    for model in (get_user_model(), Mailbox, OrgSettings):
        post_save.connect(_saved, sender=model, dispatch_uid=f"decisions-{model.__name__}")
        post_delete.connect(_saved, sender=model, dispatch_uid=f"decisions-del-{model.__name__}")
