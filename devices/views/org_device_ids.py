"""Organisation-wide DeviceIds: allowed for every mailbox (a pool of loan devices).

Both staff roles read the list; only Organization Management adds and removes.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from .. import actions
from ..forms import DEFAULT_PAGE_SIZE, OrgDeviceIdForm
from ..models import MobileDevice, OrgDeviceId
from ..permissions import (
    ORG_DEVICE_IDS_READ_ONLY,
    can_manage_org_device_ids,
    get_org_device_id_for_user,
    staff_required,
)
from ..web import actor_for
from .policies import moved

ORG_DEVICE_IDS_URL = "/org-device-ids/"


@login_required
@staff_required
def org_device_id_list(request):
    if request.method == "POST":
        return _add(request)
    return _page(request)


def _page(request, form=None):
    """The list; a failed addition comes back bound: its error under the field, the input kept."""
    entries = OrgDeviceId.objects.order_by("device_key", "id")
    page = Paginator(entries, DEFAULT_PAGE_SIZE).get_page(request.GET.get("page"))
    keys = [entry.device_key for entry in page]
    partnerships = dict(
        MobileDevice.objects.filter(device_key__in=keys)
        .order_by()
        .values("device_key")
        .annotate(n=Count("id"))
        .values_list("device_key", "n")
    )
    for entry in page:
        entry.n_devices = partnerships.get(entry.device_key, 0)
    return render(
        request,
        "devices/org_device_ids.html",
        {
            "page": page,
            "query": "",
            "form": form or OrgDeviceIdForm(auto_id="org-id-%s"),
            "can_change": can_manage_org_device_ids(request.user),
            "read_only_reason": ORG_DEVICE_IDS_READ_ONLY,
        },
    )


def _add(request):
    if not can_manage_org_device_ids(request.user):
        raise PermissionDenied(ORG_DEVICE_IDS_READ_ONLY)
    form = OrgDeviceIdForm(request.POST, auto_id="org-id-%s")
    if not form.is_valid():
        return _page(request, form)
    device_id = form.cleaned_data["device_id"]
    try:
        result = actions.add_org_device_id(
            actor_for(request), device_id, note=form.cleaned_data["note"]
        )
    except actions.ActionError as e:
        form.add_error("device_id", str(e))
        return _page(request, form)
    messages.success(request, f"{device_id} is allowed for every mailbox now: {moved(result)}.")
    return redirect(ORG_DEVICE_IDS_URL)


@require_POST
@login_required
@staff_required
def org_device_id_remove(request, pk):
    entry = get_org_device_id_for_user(request, pk, change=True)
    device_id = entry.device_id
    try:
        result = actions.remove_org_device_id(actor_for(request), device_id)
    except actions.ActionError as e:
        messages.error(request, gettext("Nothing was removed: %(error)s") % {"error": e})
    else:
        messages.success(
            request,
            f"{device_id} is no longer allowed for every mailbox: {moved(result)}.",
        )
    return redirect(ORG_DEVICE_IDS_URL)
