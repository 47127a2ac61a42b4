"""My devices: an end user's own partnerships, their state and what to do next.

Where the organisation allows it (OrgSettings.self_approval), the owner may
approve a quarantined device here; the admins are told by mail.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from .. import actions
from ..languages import mailbox_language
from ..models import AccessState, AuditSource, Mailbox, OrgSettings
from ..permissions import get_own_device_for_user
from ..web import actor_for
from .wording import explain_for_owner, next_steps

MY_DEVICES_URL = "/my/devices/"


@login_required
def my_devices(request):
    mailbox = Mailbox.objects.filter(user=request.user).first()
    org = OrgSettings.load()
    devices = []
    if mailbox is not None:
        for device in mailbox.devices.select_related("access_rule", "access_policy").order_by(
            "-first_seen", "-id"
        ):
            device.mailbox = mailbox
            device.explanation = explain_for_owner(device, org=org)
            device.next_steps = next_steps(device, org=org)
            device.why_not_approve = ""
            device.may_approve = False
            if device.access_state == AccessState.QUARANTINED:
                # Only waiting devices ask, so the queries stay as few as those.
                why_not = actions.may_self_approve(request.user, device, org)
                device.may_approve, device.why_not_approve = not why_not, why_not
            devices.append(device)
    return render(
        request,
        "devices/my_devices.html",
        {
            "mailbox": mailbox,
            "devices": devices,
            "org": org,
            # The insert the mailbox's mails carry, in their language.
            "org_insert": org.user_mail_insert_for(mailbox_language(mailbox, org))
            if mailbox
            else org.user_mail_insert,
        },
    )


@require_POST
@login_required
def approve(request, pk):
    """The owner approves their own quarantined device (self-service)."""
    device = get_own_device_for_user(request, pk)
    name = device.friendly_name or device.device_model or device.device_type or "device"
    label = f"{name} ({device.device_id})"
    try:
        actions.self_approve(actor_for(request, source=AuditSource.SELF_SERVICE), device)
    except actions.ActionError as e:
        messages.error(
            request,
            gettext("%(device)s was not approved: %(error)s") % {"device": label, "error": e},
        )
    else:
        messages.success(
            request,
            gettext(
                "You approved %(device)s. It can sync your mail now; your IT administrators "
                "have been told."
            )
            % {"device": label},
        )
    return redirect(f"{MY_DEVICES_URL}#device-{device.pk}")
