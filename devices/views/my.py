"""My devices: an end user's own partnerships, their state and what to do next."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from ..models import Mailbox, OrgSettings
from .wording import explain, next_steps


@login_required
def my_devices(request):
    mailbox = Mailbox.objects.filter(user=request.user).first()
    org = OrgSettings.load()
    devices = []
    if mailbox is not None:
        for device in mailbox.devices.select_related("access_rule").order_by("-first_seen", "-id"):
            device.mailbox = mailbox
            device.explanation = explain(device, org=org)
            device.next_steps = next_steps(device, org=org)
            devices.append(device)
    return render(
        request,
        "devices/my_devices.html",
        {"mailbox": mailbox, "devices": devices, "org": org},
    )
