"""HTTP Basic for the gate, without the slow password hasher on every request.

Where a password is checked is ECP_GATE_CREDENTIALS: `local` (ECP's own
logins), `ldap` (a bind as the user: devices.directory.backend) or `upstream`
(the real EAS server: devices.directory.upstream). In the last two a verified
login that has no mailbox yet gets one. A directory or upstream that cannot
answer raises DirectoryUnavailable (503 at the gate, never 401).

A verified (login, password) pair is cached under an HMAC of the pair keyed
with SECRET_KEY, so the cache never holds a password or a reversible digest.
The cached value carries a fingerprint of the user's stored password hash: a
changed password no longer matches it, and the entry is dropped. Failures are
counted per (login, client address), so a flood from one address cannot lock
the real user out from another.
"""

import base64
import binascii
import hashlib
import hmac
import ipaddress
import logging
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.cache import cache

from devices import hostile
from devices.directory import DirectoryUnavailable, upstream
from devices.models import Mailbox, without_domain

from . import lookup

__all__ = ["BadCredentials", "DirectoryUnavailable", "Throttled", "check"]

log = logging.getLogger(__name__)

CACHE_TTL = 300  # seconds a verified credential is trusted
MEMO_TTL = 60  # seconds a process keeps what it read from the cache
MEMO_SIZE = 10_000
FAILURE_WINDOW = 900  # seconds failures are counted over
MAX_FAILURES = 10  # per login and client address within the window
MAX_LOGIN = 256
MAX_PASSWORD = 1024


class BadCredentials(Exception):
    pass


class Throttled(Exception):
    pass


def _mac(*parts: str) -> str:
    message = "\x00".join(parts).encode("utf-8", "surrogatepass")
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()


def client_ip(request) -> str:
    """The device's address: X-Real-IP when the request comes from a trusted proxy."""
    remote = request.META.get("REMOTE_ADDR", "")
    if remote in settings.ECP_TRUSTED_PROXIES:
        forwarded = request.META.get("HTTP_X_REAL_IP", "").strip()
        try:
            return str(ipaddress.ip_address(forwarded))
        except ValueError:
            pass  # absent or junk: never let it reach the audit trail
    return remote


def parse_basic(header: str) -> tuple[str, str] | None:
    """(login, password) from an Authorization header, None when absent or not Basic."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value.strip():
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise BadCredentials("malformed Basic credentials") from None
    login, sep, password = decoded.partition(":")
    if not sep or not login or len(login) > MAX_LOGIN or len(password) > MAX_PASSWORD:
        raise BadCredentials("malformed Basic credentials")
    # Before any query: PostgreSQL refuses a NUL, and no real login holds a control.
    if hostile.has_control(login) or hostile.has_control(password):
        raise BadCredentials("malformed Basic credentials")
    return login, password


def account_key(login: str) -> str:
    """One name per account, whatever the spelling: the throttle's counter.

    alias, ALIAS, CONTOSO\\alias and alias@any.domain are one account; an address
    that is a mailbox's primary SMTP address is that mailbox's alias.
    """
    name = without_domain(login).lower()
    if "@" in name:
        alias = (
            Mailbox.objects.filter(primary_smtp_address__iexact=name)
            .values_list("alias", flat=True)
            .first()
        )
        return alias.lower() if alias else name.split("@", 1)[0]
    return name


def _username_for(login: str) -> str:
    """Devices log in as alias, DOMAIN\\alias or alias@domain; the user is named by alias."""
    login = without_domain(login)
    if "@" in login:
        mailbox = Mailbox.objects.filter(primary_smtp_address__iexact=login).first()
        if mailbox is not None and mailbox.user_id:
            return mailbox.user.get_username()
        return login
    # Windows logins are case-insensitive: ALICE and CONTOSO\Alice are alice.
    User = get_user_model()
    match = User.objects.filter(**{f"{User.USERNAME_FIELD}__iexact": login}).first()
    return match.get_username() if match is not None else login


_fingerprints: dict[str, str] = {}  # stored password hash -> its fingerprint


def _fingerprint(user) -> str:
    """An HMAC of the stored hash (not a secret by itself), remembered per hash."""
    found = _fingerprints.get(user.password)
    if found is None:
        if len(_fingerprints) >= MEMO_SIZE:
            _fingerprints.clear()
        found = _fingerprints[user.password] = _mac("password", user.password)[:32]
    return found


def _safe_cache(method: str, *args, **kwargs):
    """The cache speeds the gate up; it is never needed for a correct answer."""
    try:
        return getattr(cache, method)(*args, **kwargs)
    except Exception:  # noqa: BLE001 - any cache outage degrades to a fresh check
        log.warning("gate cache unavailable for %s", method)
        return None


def _failures_key(account: str, client: str) -> str:
    return "gate:fail:" + _mac("fail", account.lower(), client)


def check_throttle(account: str, client: str) -> None:
    """Raise Throttled after MAX_FAILURES failures of this account from this address."""
    if (_safe_cache("get", _failures_key(account, client)) or 0) >= MAX_FAILURES:
        raise Throttled("too many failed sign-ins for this login from this address")


def count_failure(account: str, client: str) -> None:
    key = _failures_key(account, client)
    if _safe_cache("add", key, 1, FAILURE_WINDOW) is False:
        _safe_cache("incr", key)


# pair key -> (what the shared cache held, when this process read it). Saves the
# cache round trip on every request of a syncing device. Safe to keep a while: the
# database is asked on every request whether the login is active and its password
# hash is the one verified (the fingerprint), so a change is seen at once.
_memo: dict[str, tuple[dict, float]] = {}


def _recall(pair_key: str) -> dict | None:
    now = time.monotonic()
    memo = _memo.get(pair_key)
    if memo is not None and now - memo[1] < MEMO_TTL:
        return memo[0]
    cached = _safe_cache("get", pair_key)
    if cached:  # only what the shared cache confirmed: an outage keeps nothing here
        if len(_memo) >= MEMO_SIZE:
            _memo.clear()
        _memo[pair_key] = (cached, now)
    else:
        _memo.pop(pair_key, None)
    return cached


def credential_key(login: str, password: str) -> str:
    """The cache key of a (login, password) pair: an HMAC, never the password."""
    return "gate:cred:" + _mac("cred", login, password)


def check(request, login: str, password: str, device_key: str = "") -> lookup.Found:
    """The active user these credentials belong to, with its mailbox and that
    mailbox's partnership `device_key` (lower-cased DeviceId; lookup.load).

    Raises BadCredentials, Throttled or DirectoryUnavailable. Asks the password
    hasher, the directory or the upstream server only when the pair is not in
    the cache; with it cached this is one query and no network call.
    """
    client = client_ip(request)
    pair_key = credential_key(login, password)
    cached = _recall(pair_key)
    if cached:
        found = lookup.load(cached["uid"], device_key)
        if found is not None and found.user.is_active and cached["fp"] == _fingerprint(found.user):
            return found
        _memo.pop(pair_key, None)
        _safe_cache("delete", pair_key)

    account = account_key(login)
    check_throttle(account, client)
    user = verify(request, login, password)
    if user is None or not user.is_active:
        count_failure(account, client)
        raise BadCredentials("wrong login or password")
    _safe_cache("set", pair_key, {"uid": user.pk, "fp": _fingerprint(user)}, CACHE_TTL)
    found = lookup.load(user.pk, device_key)
    if found is None:  # deleted between the two reads
        raise BadCredentials("wrong login or password")
    return found


def verify(request, login: str, password: str):
    """The active user these credentials belong to, by ECP_GATE_CREDENTIALS; None if wrong."""
    mode = settings.ECP_GATE_CREDENTIALS
    if mode == "ldap":
        from devices.directory.backend import DirectoryBackend

        return DirectoryBackend().verify(request, login, password)
    if mode == "upstream":
        if not upstream.verify(request.META.get("HTTP_AUTHORIZATION", "")):
            return None
        from devices.actions.directory import upstream_signed_in

        return upstream_signed_in(login)
    # ECP's own passwords only, even where the panel also signs in directory users.
    return ModelBackend().authenticate(request, username=_username_for(login), password=password)
