"""Create, revoke and check API tokens.

A key is `ecp_` and 43 URL-safe characters (256 random bits). With that much
entropy an unsalted SHA-256 is enough to store it: the database never holds a
key that could be replayed, and looking one up is one indexed query.
"""

import hashlib
import logging
import secrets
from datetime import timedelta

from django.utils import timezone

from .models import ApiToken

log = logging.getLogger(__name__)

KEY_PREFIX = "ecp_"
PREFIX_LENGTH = len(KEY_PREFIX) + 8
MAX_NAME = 100
DEFAULT_NAME = "API token"
LAST_USED_EVERY = timedelta(minutes=1)


class TokenError(ValueError):
    """A bad token name: nothing was created. The message is for people."""


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def clean_name(name: str | None) -> str:
    name = " ".join((name or "").split())
    if not name:
        return DEFAULT_NAME
    if len(name) > MAX_NAME or not name.isprintable():
        raise TokenError(f"A token name is at most {MAX_NAME} printable characters.")
    return name


def create_token(user, name: str | None = None) -> tuple[ApiToken, str]:
    """A new token for user, and its key: the only time the key exists in clear."""
    name = clean_name(name)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name, prefix=key[:PREFIX_LENGTH], key_hash=hash_key(key)
    )
    log.info("API token %s (%s) created for %s", token.pk, token.prefix, user.get_username())
    return token, key


def revoke_token(token: ApiToken) -> bool:
    """Revoke the token; False when it already was."""
    revoked = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    if revoked:
        log.info("API token %s (%s) revoked", token.pk, token.prefix)
    token.refresh_from_db(fields=["revoked_at"])
    return bool(revoked)


def find_token(key: str) -> ApiToken | None:
    """The token with this key (revoked or not), with its user."""
    if not key.startswith(KEY_PREFIX) or len(key) > 200:
        return None
    return ApiToken.objects.select_related("user").filter(key_hash=hash_key(key)).first()


def touch_last_used(token: ApiToken) -> None:
    """Record use coarsely: one UPDATE a minute at most, whatever the request rate."""
    now = timezone.now()
    if token.last_used_at is not None and now - token.last_used_at < LAST_USED_EVERY:
        return
    stale = ApiToken.objects.filter(pk=token.pk).exclude(last_used_at__gt=now - LAST_USED_EVERY)
    stale.update(last_used_at=now)
    token.last_used_at = now
