"""ECP pages. Views parse input, check permission, and call devices.actions."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import render

from .models import AccessState, MobileDevice


def _devices_for_user(user):
    """The partnerships this login may see: all for staff, its own mailbox's otherwise."""
    devices = MobileDevice.objects.select_related("mailbox", "access_rule")
    if user.is_staff or user.has_perm("devices.view_mobiledevice"):
        return devices
    mailbox = getattr(user, "mailbox", None)
    if mailbox is None:
        raise PermissionDenied("This login has no mailbox.")
    return devices.filter(mailbox=mailbox)


@login_required
def device_list(request):
    devices = _devices_for_user(request.user)
    state = request.GET.get("state", "")
    if state in AccessState.values:
        devices = devices.filter(access_state=state)
    page = Paginator(devices.order_by("-first_seen", "-id"), 50).get_page(request.GET.get("page"))
    return render(
        request,
        "devices/device_list.html",
        {"page": page, "state": state, "states": AccessState.choices},
    )
