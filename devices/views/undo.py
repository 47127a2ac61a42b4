"""Undo for one minute after Allow or Block: the DeviceId goes back to the list it was on.

The undo is a normal change (devices.actions.undo_device_list, audited as
device.undo), not a rewrite of history. The offer is a signed token, bound to
the person who acted, valid for UNDO_SECONDS; the page after the action shows
it once, beside the message.
"""

from collections import Counter

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext, ngettext
from django.views.decorators.http import require_POST

from .. import actions
from ..permissions import get_device_for_user
from ..web import actor_for, safe_next
from .wording import device_label, state_change_words

UNDO_SECONDS = 60
SALT = "ecp.undo"
SESSION_KEY = "ecp_undo"


def offer_undo(request, changed: list[tuple], verb: str) -> None:
    """Offer to undo an Allow or Block of these (device, the list it was on before) pairs."""
    if not changed:
        return
    token = signing.dumps(
        {"d": {str(d.pk): previous for d, previous in changed}, "u": request.user.pk, "v": verb},
        salt=SALT,
    )
    n = len(changed)
    what = (
        device_label(changed[0][0])
        if n == 1
        else ngettext("%(n)s device", "%(n)s devices", n) % {"n": n}
    )
    label = gettext("Allow of %(what)s") if verb == "allow" else gettext("Block of %(what)s")
    request.session[SESSION_KEY] = {
        "token": token,
        "label": label % {"what": what},
        "seconds": UNDO_SECONDS,
    }


def undo_offer(request) -> dict:
    """Context processor: the offer, shown once on the page after the action."""
    session = getattr(request, "session", None)
    if session is None or SESSION_KEY not in session:
        # Always defined: a variable that fails to resolve is logged (DEBUG) with the
        # whole context, which may hold a secret shown once (a new API token's key).
        return {"undo_offer": None}
    return {"undo_offer": session.pop(SESSION_KEY), "undo_url": reverse("device-undo")}


@require_POST
@login_required
def undo(request):
    back = safe_next(request, reverse("quarantine"))
    try:
        offer = signing.loads(request.POST.get("token", ""), salt=SALT, max_age=UNDO_SECONDS)
    except signing.SignatureExpired:
        messages.error(
            request,
            gettext("Too late to undo: undo is offered for %(n)s seconds.") % {"n": UNDO_SECONDS},
        )
        return redirect(back)
    except signing.BadSignature:
        messages.error(request, gettext("Nothing to undo."))
        return redirect(back)
    if offer.get("u") != request.user.pk:
        messages.error(request, gettext("Nothing to undo: that was not your change."))
        return redirect(back)
    actor = actor_for(request)
    moves, failed, undone = Counter(), [], []
    for pk, previous in offer["d"].items():
        device = get_device_for_user(request, pk, change=True)
        try:
            result = actions.undo_device_list(actor, device.mailbox, device.device_id, previous)
        except actions.ActionError as e:
            failed.append(f"{device_label(device)} ({e})")
            continue
        undone.append(device)
        for t in result.transitions:
            moves[(t.from_state, t.to_state)] += 1
    if offer["v"] == "allow":
        text = gettext("Undid the Allow of %(what)s: %(outcome)s.")
    else:
        text = gettext("Undid the Block of %(what)s: %(outcome)s.")
    if len(undone) == 1 and len(offer["d"]) == 1:
        (before, after), *_ = moves or [("", "")]
        outcome = state_change_words(before, after) if moves else gettext("no change")
        messages.success(request, text % {"what": device_label(undone[0]), "outcome": outcome})
    elif undone:
        outcome = actions.describe_changes(moves) if moves else "no device changes state"
        n = len(undone)
        what = ngettext("%(n)s device", "%(n)s devices", n) % {"n": n}
        messages.success(request, text % {"what": what, "outcome": outcome})
    if failed:
        messages.error(
            request, gettext("Could not undo: %(problems)s") % {"problems": "; ".join(failed)}
        )
    return redirect(back)
