"""Devices: the quarantine list, all devices, one device, and the actions on them."""

from collections import Counter

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from .. import actions
from ..filters import AGES, DEVICE_SORTS
from ..forms import PAGE_SIZES, BulkDevicesForm, DeviceListFilterSet, device_families, page_size
from ..models import AccessState, DeviceIdList, DeviceStateChange, MobileDevice, OrgSettings
from ..paging import IdsFirstPaginator
from ..permissions import (
    RULES_READ_ONLY,
    Role,
    can_manage_devices,
    can_manage_rules,
    get_device_for_user,
    role_for,
    staff_required,
)
from ..replacements import mark_replacements
from ..web import actor_for, safe_next, warn_about_page_size
from .counts import remember_waiting_count, waiting_count
from .undo import offer_undo
from .wording import STATE_WORDS, decided_by, device_label, explain, plural, state_change_words

QUARANTINE_URL = "/devices/quarantine/"
DEVICES_URL = "/devices/"


def device_url(device) -> str:
    return f"/devices/{device.pk}/"


def _listing(request, devices, *, default_sort: str):
    """Filter, sort and paginate: always a count and a page query, whatever the size."""
    filters = DeviceListFilterSet(
        request.GET, devices.select_related("mailbox", "access_rule"), default_sort=default_sort
    )
    warn_about_page_size(request)
    paginator = IdsFirstPaginator(filters.qs, page_size(request.GET))
    return filters, paginator.get_page(request.GET.get("page"))


def _list_context(request, filters, page, *, title: str, quarantine: bool) -> dict:
    types, models = device_families()
    params = request.GET.copy()
    params.pop("page", None)
    sort_params = params.copy()
    sort_params.pop("sort", None)
    return {
        "title": title,
        "quarantine": quarantine,
        "form": filters.form,
        "filters_active": filters.active(),
        # Filters without a field on the page (links from elsewhere) survive "Apply".
        "carried": [
            (name, request.GET[name])
            for name in ("rule", "mailbox", "device_id", "older_than_days", "newer_than_days")
            if filters.value(name) != ""
        ],
        "page": page,
        "types": types,
        "models": models,
        "ages": [(key, label) for key, (label, _) in AGES.items()],
        "sorts": [(key, label) for key, (label, _) in DEVICE_SORTS.items()],
        "page_sizes": PAGE_SIZES,
        "query": params.urlencode(),
        "sort_query": sort_params.urlencode(),
        "sort": filters.sort_key,
        "states": AccessState.choices,
        "can_manage": can_manage_devices(request.user),
        "can_rules": can_manage_rules(request.user),
        "rules_read_only": RULES_READ_ONLY,
        "next": request.get_full_path(),
    }


@login_required
@staff_required
def quarantine(request):
    devices = MobileDevice.objects.filter(access_state=AccessState.QUARANTINED)
    filters, page = _listing(request, devices, default_sort="waiting")
    mark_replacements(list(page))
    context = _list_context(request, filters, page, title="Quarantined devices", quarantine=True)
    if context["filters_active"]:
        # "0 of 11 waiting match the filters", not "0 waiting" beside the menu's 11.
        context["quarantined_total"] = waiting_count(request)
    else:
        # Unfiltered, the page's count is the menu's badge: one COUNT, not two.
        remember_waiting_count(request, page.paginator.count)
    return render(request, "devices/quarantine.html", context)


@login_required
@staff_required
def device_list(request):
    filters, page = _listing(request, MobileDevice.objects.all(), default_sort="-first_seen")
    context = _list_context(request, filters, page, title="All devices", quarantine=False)
    return render(request, "devices/device_list.html", context)


@login_required
def device_detail(request, pk):
    device = get_device_for_user(request, pk)
    if role_for(request.user) == Role.END_USER:
        # End users have one page: their own devices.
        return redirect(f"/my/devices/#device-{device.pk}")
    org = OrgSettings.load()
    history = (
        DeviceStateChange.objects.filter(device=device)
        .select_related("event", "rule")
        .order_by("-time", "-id")[:50]
    )
    listed = device.mailbox.device_ids.filter(device_key=device.device_key).first()
    # The change that put the device into its present state and reason: who approved it.
    change = None
    if device.access_state in (AccessState.ALLOWED, AccessState.BLOCKED):
        change = (
            DeviceStateChange.objects.filter(
                device=device,
                to_state=device.access_state,
                to_reason=device.access_state_reason,
            )
            .select_related("event")
            .order_by("-time", "-id")
            .first()
        )
    return render(
        request,
        "devices/device_detail.html",
        {
            "device": device,
            "org": org,
            "explanation": explain(device, org=org),
            "decided_by": decided_by(device, change),
            "history": history,
            "listed": listed,
            "DeviceIdList": DeviceIdList,
            "can_manage": can_manage_devices(request.user),
            "can_rules": can_manage_rules(request.user),
            "rules_read_only": RULES_READ_ONLY,
            "detail_changes_limit": settings.ECP_DEVICE_DETAIL_CHANGES_LIMIT,
            "next": request.get_full_path(),
        },
    )


def _outcome(result, device) -> str:
    """'was quarantined, now allowed', or what stayed the same."""
    for t in result.transitions:
        if t.device_pk == device.pk:
            if t.from_state == t.to_state:
                return gettext("still %(state)s, now by the mailbox's own list") % {
                    "state": _state_word(t.to_state)
                }
            return state_change_words(t.from_state, t.to_state)
    after = result.obj.access_state if result.obj is not None else device.access_state
    return gettext("no change, already %(state)s") % {"state": _state_word(after)}


def _state_word(state: str) -> str:
    """'allowed', 'blocked', 'quarantined' in the page's language (else the state, lowered)."""
    return STATE_WORDS.get(state, state.lower()) if state in _FINAL else state.lower()


_FINAL = (AccessState.ALLOWED, AccessState.BLOCKED, AccessState.QUARANTINED)


def _set_access(request, pk, verb: str):
    device = get_device_for_user(request, pk, change=True)
    action = actions.allow_device if verb == "allow" else actions.block_device
    previous = actions.list_of(device.mailbox, device.device_id)
    try:
        result = action(actor_for(request), device.mailbox, device.device_id)
    except actions.ActionError as e:
        if verb == "allow":
            text = gettext("Could not allow %(device)s: %(error)s")
        else:
            text = gettext("Could not block %(device)s: %(error)s")
        messages.error(request, text % {"device": device_label(device), "error": e})
    else:
        if verb == "allow":
            text = gettext("Allowed %(device)s for %(user)s: %(outcome)s")
        else:
            text = gettext("Blocked %(device)s for %(user)s: %(outcome)s")
        words = {
            "device": device_label(device),
            "user": device.mailbox.alias,
            "outcome": _outcome(result, device),
        }
        messages.success(request, text % words)
        offer_undo(request, [(device, previous)], verb)
    return redirect(safe_next(request, device_url(device)))


@require_POST
@login_required
def allow(request, pk):
    return _set_access(request, pk, "allow")


@require_POST
@login_required
def block(request, pk):
    return _set_access(request, pk, "block")


@require_POST
@login_required
def replace(request, pk):
    """Allow a device and remove the approved one it replaces (same mailbox)."""
    device = get_device_for_user(request, pk, change=True)
    old = get_device_for_user(request, request.POST.get("old"), change=True)
    label, old_label = device_label(device), device_label(old)
    try:
        result = actions.allow_and_replace(actor_for(request), device, old)
    except actions.ActionError as e:
        messages.error(request, f"Could not replace {old_label} with {label}: {e}")
    else:
        messages.success(
            request,
            f"Allowed {label} for {device.mailbox.alias}: {_outcome(result, device)}. "
            f"Removed the old partnership {old_label} and took it off the allowed list.",
        )
    return redirect(safe_next(request, QUARANTINE_URL))


@require_POST
@login_required
def remove(request, pk):
    device = get_device_for_user(request, pk, change=True)
    default = QUARANTINE_URL if device.access_state == AccessState.QUARANTINED else DEVICES_URL
    label, alias = device_label(device), device.mailbox.alias
    try:
        actions.remove_device(actor_for(request), device)
    except actions.ActionError as e:
        messages.error(request, f"Could not remove {label}: {e}")
        return redirect(safe_next(request, device_url(device)))
    messages.success(
        request,
        f"Removed the partnership of {label} for {alias}. "
        "If the device syncs again it starts over as a new device.",
    )
    target = safe_next(request, default)
    if target.rstrip("/") == device_url(device).rstrip("/"):
        target = default  # that page is gone
    return redirect(target)


@require_POST
@login_required
@staff_required
def bulk(request):
    form = BulkDevicesForm(request.POST)
    back = safe_next(request, QUARANTINE_URL)
    if not form.is_valid():
        problems = "; ".join(e for errors in form.errors.values() for e in errors)
        messages.error(request, f"Nothing was changed: {problems}")
        return redirect(back)
    verb = form.cleaned_data["action"]
    action = actions.allow_device if verb == "allow" else actions.block_device
    past = "Allowed" if verb == "allow" else "Blocked"
    devices = list(
        MobileDevice.objects.select_related("mailbox").filter(pk__in=form.cleaned_data["ids"])
    )
    actor = actor_for(request)
    done, failed, moves, changed = [], [], Counter(), []
    for device in devices:
        previous = actions.list_of(device.mailbox, device.device_id)
        try:
            result = action(actor, device.mailbox, device.device_id)
        except actions.ActionError as e:
            failed.append(f"{device_label(device)} ({e})")
            continue
        changed.append((device, previous))
        done.append(f"{device_label(device)} for {device.mailbox.alias}")
        for t in result.transitions:
            moves[(t.from_state, t.to_state)] += 1
    if done:
        names = ", ".join(done[:5]) + (f" and {len(done) - 5} more" if len(done) > 5 else "")
        changes = actions.describe_changes(moves) if moves else ""
        messages.success(
            request, f"{past} {plural(len(done))}: {names}." + (f" {changes}." if changes else "")
        )
        offer_undo(request, changed, verb)
    if failed:
        messages.error(request, f"Could not {verb}: {'; '.join(failed)}")
    missing = len(form.cleaned_data["ids"]) - len(devices)
    if missing:
        messages.warning(request, f"{plural(missing)} no longer existed.")
    return redirect(back)
