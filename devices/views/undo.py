"""Undo for one minute after Allow or Block: the DeviceId goes back to the list it was on.

The undo is a normal change (devices.actions.undo_device_list, audited as
device.undo), not a rewrite of history. The offer is a signed token, bound to
the person who acted, valid for UNDO_SECONDS; the page after the action shows
it once, beside the message.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from .. import actions
from ..permissions import get_device_for_user
from ..web import actor_for, safe_next
from .wording import device_label, state_change_words

UNDO_SECONDS = 60
SALT = "ecp.undo"
SESSION_KEY = "ecp_undo"


def offer_undo(request, device, verb: str, previous: str) -> None:
    token = signing.dumps(
        {"d": device.pk, "p": previous, "u": request.user.pk, "v": verb}, salt=SALT
    )
    request.session[SESSION_KEY] = {
        "token": token,
        "label": f"{'Allow' if verb == 'allow' else 'Block'} of {device_label(device)}",
        "seconds": UNDO_SECONDS,
    }


def undo_offer(request) -> dict:
    """Context processor: the offer, shown once on the page after the action."""
    session = getattr(request, "session", None)
    if session is None or SESSION_KEY not in session:
        return {}
    return {"undo_offer": session.pop(SESSION_KEY), "undo_url": reverse("device-undo")}


@require_POST
@login_required
def undo(request):
    back = safe_next(request, reverse("quarantine"))
    try:
        offer = signing.loads(request.POST.get("token", ""), salt=SALT, max_age=UNDO_SECONDS)
    except signing.SignatureExpired:
        messages.error(request, f"Too late to undo: undo is offered for {UNDO_SECONDS} seconds.")
        return redirect(back)
    except signing.BadSignature:
        messages.error(request, "Nothing to undo.")
        return redirect(back)
    if offer.get("u") != request.user.pk:
        messages.error(request, "Nothing to undo: that was not your change.")
        return redirect(back)
    device = get_device_for_user(request, offer["d"], change=True)
    try:
        result = actions.undo_device_list(
            actor_for(request), device.mailbox, device.device_id, offer["p"]
        )
    except actions.ActionError as e:
        messages.error(request, f"Could not undo: {e}")
        return redirect(back)
    what = "Allow" if offer["v"] == "allow" else "Block"
    moved = next((t for t in result.transitions if t.device_pk == device.pk), None)
    outcome = state_change_words(moved.from_state, moved.to_state) if moved else "no change"
    messages.success(request, f"Undid the {what} of {device_label(device)}: {outcome}.")
    return redirect(back)
