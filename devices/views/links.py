"""The page behind a signed mail link: one confirmation, one tap (issue 18).

GET shows what the link would do (device, user, what happens) and never
changes anything; the form's POST, with its CSRF token, does it through
devices.actions. A used, expired, tampered or stale link says so, with its
own status code, and changes nothing. Admin links need a staff sign-in; the
owner's "Was this you?" links need none.
"""

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from .. import actions, links
from ..audit import Actor
from ..models import AuditSource
from ..permissions import get_device_for_link
from ..web import client_ip, request_id
from .wording import device_label

TEMPLATE = "devices/action_link.html"


def _what_happens(action: str) -> str:
    return {
        links.ALLOW: _(
            "The device goes on the mailbox's allowed list and starts syncing mail, "
            "calendar and contacts at its next connection. The user is told by mail."
        ),
        links.BLOCK: _(
            "The device goes on the mailbox's blocked list and is refused from now on. "
            "The user is told by mail."
        ),
        links.MINE: _(
            "The help desk sees that you confirmed this device as yours. Where your "
            "organisation lets users approve their own devices, it is approved at once."
        ),
        links.NOT_MINE: _(
            "The device is blocked at once and your IT administrators are alerted. "
            "Then change your password: someone else may know it."
        ),
    }[action]


def _button(action: str) -> str:
    return {
        links.ALLOW: _("Allow this device"),
        links.BLOCK: _("Block this device"),
        links.MINE: _("Yes, this is my new phone"),
        links.NOT_MINE: _("No, this was not me: block it"),
    }[action]


def _actor(request, link, device) -> Actor:
    ip, rid = client_ip(request), request_id(request)
    if link.for_admins:
        return Actor(user=request.user, source=AuditSource.MAIL_LINK, ip=ip, request_id=rid)
    owner = device.mailbox.user
    return actions.OwnerActor(
        user=owner, source=AuditSource.MAIL_LINK, ip=ip, request_id=rid, alias=device.mailbox.alias
    )


def _refused(request, state: str, link=None, device=None):
    return render(
        request,
        TEMPLATE,
        {"problem": links.PROBLEMS[state], "state": state, "link": link, "device": device},
        status=links.HTTP_STATUS[state],
    )


@never_cache
@require_http_methods(["GET", "POST"])
def action_link(request, token):
    link, problem = links.read(token)
    if link is not None and link.for_admins and not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    link, device, state = get_device_for_link(request, token)
    if link is None or state != links.LinkState.FRESH:
        return _refused(request, state, link, device)
    context = {
        "link": link,
        "device": device,
        "label": device_label(device),
        "what_happens": _what_happens(link.action),
        "button": _button(link.action),
        "danger": link.action in (links.BLOCK, links.NOT_MINE),
    }
    if request.method == "GET":
        return render(request, TEMPLATE, context)
    try:
        outcome = actions.use_link(_actor(request, link, device), token)
    except actions.LinkRefused as refused:
        return _refused(request, refused.state, link, device)
    except actions.ActionError as e:
        messages.error(request, _("Nothing was changed: %(error)s") % {"error": e})
        return render(request, TEMPLATE, context, status=400)
    label = device_label(device)
    if link.for_admins:
        done = (
            _("Allowed %(device)s for %(user)s.")
            if link.action == links.ALLOW
            else _("Blocked %(device)s for %(user)s.")
        )
        messages.success(request, done % {"device": label, "user": device.mailbox.alias})
        return redirect(device.get_absolute_url())
    return render(request, TEMPLATE, {**context, "done": True, "approved": outcome.approved})
