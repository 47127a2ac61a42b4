"""What the gate answers while its database is down (docs/RELIABILITY.md).

Fail closed by default: without the database the gate cannot tell who may
sync, so every decision is a 503 and nginx lets nothing through.

ECP_GATE_OUTAGE_CACHE_SECONDS > 0 opts in to a short memory of "these
credentials, for this mailbox, on this DeviceId were Allowed at time T".
During an outage such a request is answered 200 (Allowed) until T plus that
many seconds; everything else still gets 503. The memory is an entry in
Django's cache under an HMAC of login, password, named mailbox and DeviceId:
it holds no password, and only the exact credentials that were verified
match. A device blocked shortly before an outage, that has not synced since,
may still sync until its entry expires: keep the time short.
"""

import logging
import time

from django.conf import settings

from devices.eas import EASParseError, parse_query
from devices.models import AccessState

from . import credentials

log = logging.getLogger(__name__)

HEADER = "X-EAS-Degraded"
REFRESH_EVERY = 60  # seconds: a syncing device rewrites its entry at most this often
LOG_EVERY = 10  # seconds between two warnings of one process during an outage
_MAX_WRITTEN = 100_000

_written: dict[str, float] = {}  # entry key -> when this process last wrote it
_last_warning = 0.0
_served = 0


def seconds() -> int:
    return settings.ECP_GATE_OUTAGE_CACHE_SECONDS


def _key(login: str, password: str, mailbox_named: str | None, device_id: str) -> str:
    parts = (login.lower(), password, (mailbox_named or "").lower(), device_id.lower())
    return "gate:outage:" + credentials._mac("outage", *parts)


def note(login: str, password: str, parsed, state: str, reason: str) -> None:
    """After a decision with the database up: remember an Allowed device, forget any other."""
    ttl = seconds()
    if ttl <= 0:
        return
    key = _key(login, password, parsed.user, parsed.device_id)
    if state != AccessState.ALLOWED:
        # Another process may have remembered it: forget everywhere.
        _written.pop(key, None)
        credentials._safe_cache("delete", key)
        return
    now = time.monotonic()
    if now - _written.get(key, -REFRESH_EVERY) < min(REFRESH_EVERY, ttl / 4):
        return
    credentials._safe_cache("set", key, {"t": time.time(), "reason": str(reason)}, ttl)
    if len(_written) >= _MAX_WRITTEN:
        _written.clear()
    _written[key] = now


def remembered(request, raw_query: str) -> tuple[str, str] | None:
    """During an outage: (state, reason) when this request may pass from memory, else None."""
    ttl = seconds()
    if ttl <= 0:
        return None
    try:
        parsed = parse_query(raw_query)
        header = credentials.parse_basic(request.META.get("HTTP_AUTHORIZATION", ""))
    except (EASParseError, credentials.BadCredentials):
        return None
    if header is None:
        return None
    login, password = header
    client = credentials.client_ip(request)
    try:
        credentials.check_throttle(login, client)
    except credentials.Throttled:
        return None
    entry = credentials._safe_cache("get", _key(login, password, parsed.user, parsed.device_id))
    if not entry or time.time() - entry["t"] > ttl:
        # Unverifiable now: counts as a failure, so an outage is no password oracle.
        credentials.count_failure(login, client)
        return None
    _warn()
    return str(AccessState.ALLOWED), entry["reason"]


def _warn() -> None:
    global _last_warning, _served
    _served += 1
    now = time.monotonic()
    if now - _last_warning >= LOG_EVERY:
        log.warning(
            "gate: database unavailable; %d request(s) of allowed devices answered from the "
            "outage cache (ECP_GATE_OUTAGE_CACHE_SECONDS=%d)",
            _served,
            seconds(),
        )
        _last_warning, _served = now, 0
