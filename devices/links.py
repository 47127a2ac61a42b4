"""Signed, expiring, single-use action links (issue 18).

A link names a device, an action and the state it was issued for (the
device's access state and when it entered it), signed with Django's signing
(SECRET_KEY; the signature is checked in constant time) and valid for
ECP_LINK_MAX_AGE_HOURS from its issue time. Nothing is stored when a link is
made; when one is used, devices.actions records an ActionLinkUse row, and
from then on every copy of it (mail, digest, chat post, phone notice) is
"used". A link whose device has changed state since is "stale".

Admin links (Allow, Block) still need a signed-in Help Desk or Organization
Management login and a confirmation; the owner's links ("Yes, this is my new
phone", "No, this was not me") need no sign-in: the signed link is the proof.
Opening a link (GET) only shows what it would do; a POST with CSRF does it.
"""

import hashlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from .models import AccessState, ActionLinkUse, MobileDevice

SALT = "ecp.action-link"

ALLOW, BLOCK, MINE, NOT_MINE = "allow", "block", "mine", "not-mine"
ADMIN_ACTIONS = frozenset({ALLOW, BLOCK})
OWNER_ACTIONS = frozenset({MINE, NOT_MINE})


class LinkState:
    FRESH = "fresh"
    USED = "used"
    EXPIRED = "expired"
    TAMPERED = "tampered"
    STALE = "stale"
    GONE = "gone"  # the partnership was removed


PROBLEMS = {
    LinkState.USED: _("This link has been used already. Nothing was changed."),
    LinkState.EXPIRED: _("This link has expired. Nothing was changed."),
    LinkState.TAMPERED: _(
        "This link is not valid: it is incomplete or was altered. Nothing was changed."
    ),
    LinkState.STALE: _(
        "The device's state has changed since this link was sent. Nothing was changed."
    ),
    LinkState.GONE: _("This device no longer exists. Nothing was changed."),
}
# The answer a refused link gets: gone for good, a conflict, or simply bad.
HTTP_STATUS = {
    LinkState.USED: 410,
    LinkState.EXPIRED: 410,
    LinkState.TAMPERED: 400,
    LinkState.STALE: 409,
    LinkState.GONE: 410,
}


class _IssuedAt(signing.TimestampSigner):
    """A TimestampSigner with a given issue time instead of now (see notice_issue_time)."""

    def __init__(self, at: float, **kwargs):
        super().__init__(**kwargs)
        self._at = int(at)

    def timestamp(self):
        return signing.b62_encode(self._at)


def max_age() -> int:
    return settings.ECP_LINK_MAX_AGE_HOURS * 3600


def state_stamp(device: MobileDevice) -> str:
    """The state a link is issued for: the access state and when the device entered it."""
    micros = int(device.state_changed_at.timestamp() * 1_000_000)
    return f"{device.access_state}@{micros:x}"


@dataclass(frozen=True)
class ActionLink:
    device_pk: int
    action: str
    issued_for: str
    issued_at: datetime

    @property
    def for_admins(self) -> bool:
        return self.action in ADMIN_ACTIONS

    @property
    def expires_at(self) -> datetime:
        return datetime.fromtimestamp(self.issued_at.timestamp() + max_age(), tz=UTC)


def issue(device: MobileDevice, action: str, at: float | None = None) -> str:
    """A token for one action on the device in its present state."""
    if action not in ADMIN_ACTIONS | OWNER_ACTIONS:
        raise ValueError(f"unknown link action {action!r}")
    signer = _IssuedAt(time.time() if at is None else at, salt=SALT)
    return signer.sign_object(
        {"d": device.pk, "a": action, "s": state_stamp(device)}, compress=True
    )


def path(token: str) -> str:
    return reverse("action-link", args=[token])


def paths(device: MobileDevice, actions, at: float | None = None) -> dict:
    """{"allow_path": ..., ...}: links a mail context carries (rendering adds *_url)."""
    return {f"{a.replace('-', '_')}_path": path(issue(device, a, at)) for a in actions}


def notice_issue_time(now: float | None = None) -> float:
    """The phone notice's links: issued at the start of a period of a third of the link
    lifetime (at least an hour), so the notice's text, and with it its version, changes
    once a period rather than on every sync, and a link in it is valid for at least two
    thirds of ECP_LINK_MAX_AGE_HOURS."""
    period = max(3600, max_age() // 3)
    now = time.time() if now is None else now
    return now - now % period


def read(token: str) -> tuple[ActionLink | None, str]:
    """(the link, '') or (None, why not): tampered or expired."""
    signer = signing.TimestampSigner(salt=SALT)
    try:
        # The signature is compared in constant time (Signer.unsign), then the age.
        value = signer.unsign_object(token, max_age=max_age())
        issued = datetime.fromtimestamp(signing.b62_decode(token.rsplit(":", 2)[1]), tz=UTC)
    except signing.SignatureExpired:
        return None, LinkState.EXPIRED
    except (signing.BadSignature, ValueError, TypeError, IndexError):
        return None, LinkState.TAMPERED
    if not (
        isinstance(value, dict)
        and isinstance(value.get("d"), int)
        and value.get("a") in ADMIN_ACTIONS | OWNER_ACTIONS
        and isinstance(value.get("s"), str)
    ):
        return None, LinkState.TAMPERED
    return ActionLink(value["d"], value["a"], value["s"], issued), ""


def state_of(link: ActionLink, device: MobileDevice | None) -> str:
    """Fresh, used, stale or gone, for a link whose signature and age are good."""
    if device is None:
        return LinkState.GONE
    used = ActionLinkUse.objects.filter(
        device_id=device.pk, action=link.action, issued_for=link.issued_for
    ).exists()
    if used:
        return LinkState.USED
    if link.issued_for != state_stamp(device):
        return LinkState.STALE
    if device.access_state != AccessState.QUARANTINED:
        return LinkState.STALE  # links are issued for quarantined devices only
    return LinkState.FRESH


def fingerprint(token: str) -> str:
    """A short, non-secret name for a token in logs."""
    return hashlib.sha256(token.encode()).hexdigest()[:12]
