"""API tokens: created and revoked through here so that both are audited.

The audit event names the token by its prefix and name, never by its key.
"""

from django.db import transaction

from ..audit import Actor, record
from .base import ActionError, Result


def _repr(token) -> str:
    return f"API token {token.prefix}… ({token.name}) of {token.user.get_username()}"


@transaction.atomic
def create_api_token(actor: Actor, user, name: str | None = None) -> Result:
    """A new token for user. Result.obj is (token, key): the only time the key exists."""
    from api import tokens

    try:
        token, key = tokens.create_token(user, name)
    except tokens.TokenError as exc:
        raise ActionError(str(exc)) from None
    event = record(
        actor,
        action="api_token.create",
        object_type="ApiToken",
        object_id=str(token.pk),
        object_repr=_repr(token),
        after={"user": user.get_username(), "name": token.name, "prefix": token.prefix},
        message=f"{_repr(token)} created",
    )
    return Result((token, key), event)


@transaction.atomic
def revoke_api_token(actor: Actor, token) -> Result:
    """Revoke a token; Result.count is 0 when it already was."""
    from api import tokens

    if not tokens.revoke_token(token):
        return Result(token, None, count=0)
    event = record(
        actor,
        action="api_token.revoke",
        object_type="ApiToken",
        object_id=str(token.pk),
        object_repr=_repr(token),
        before={"revoked": False},
        after={"revoked": True},
        message=f"{_repr(token)} revoked",
    )
    return Result(token, event, count=1)
