"""Mailboxes: Exchange's "edit mobile mailbox" (partnerships, DeviceId lists, ActiveSync)."""

from collections import Counter

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from .. import actions
from ..forms import ActiveSyncForm, MailboxDeviceIdForm, MailboxFilterForm, MailboxPolicyForm
from ..languages import mailbox_language
from ..models import AccessPolicy, AccessState, DeviceIdList, Mailbox, OrgSettings
from ..permissions import (
    ACTIVESYNC_READ_ONLY,
    POLICIES_READ_ONLY,
    can_manage_devices,
    can_manage_policies,
    can_manage_settings,
    can_toggle_activesync,
    get_mailbox_for_user,
    get_policy_for_user,
    staff_required,
)
from ..web import actor_for, warn_about_page_size


def _changes(result) -> str:
    counts = Counter(
        (t.from_state, t.to_state) for t in result.transitions if t.from_state != t.to_state
    )
    return actions.describe_changes(counts)


@login_required
@staff_required
def mailbox_list(request):
    form = MailboxFilterForm(request.GET)
    mailboxes = form.filter(
        Mailbox.objects.annotate(
            n_devices=Count("devices"),
            n_quarantined=Count("devices", filter=Q(devices__access_state=AccessState.QUARANTINED)),
        )
    )
    warn_about_page_size(request)
    page = Paginator(mailboxes, form.value("per_page")).get_page(request.GET.get("page"))
    params = request.GET.copy()
    params.pop("page", None)
    return render(
        request,
        "devices/mailbox_list.html",
        {
            "form": form,
            "page": page,
            "query": params.urlencode(),
            "can_import": can_manage_settings(request.user),
        },
    )


@login_required
@staff_required
def mailbox_detail(request, pk):
    mailbox = get_mailbox_for_user(request, pk)
    if request.method == "POST":
        return _change_mailbox(request, mailbox)
    return _page(request, mailbox)


def _page(request, mailbox, *, add_form=None, policy_form=None, list_form=None):
    """The mailbox page; a form that failed comes back bound: its errors, what was typed."""
    devices = mailbox.devices.select_related("access_rule").order_by("device_key", "id")
    entries = list(mailbox.device_ids.order_by("device_key"))
    # The confirmation of a removal says whether a partnership of this mailbox uses it.
    keys = {d.device_key for d in devices}
    for entry in entries:
        entry.n_devices = 1 if entry.device_key in keys else 0
    policy = mailbox.access_policy
    domain = mailbox.primary_smtp_address.rsplit("@", 1)[-1].lower()
    # A directory mailbox: its groups (one query, only for those), and the policy's way in.
    groups = list(mailbox.directory_groups.all()) if mailbox.directory_dn else []
    by_group = ""
    if policy and not mailbox.access_policy_pinned and domain not in policy.domains:
        by_group = next((g.dn for g in groups if g.dn_key in policy.directory_groups), "")
    can_policies = can_manage_policies(request.user)
    org = OrgSettings.load()
    return render(
        request,
        "devices/mailbox_detail.html",
        {
            "mailbox": mailbox,
            "devices": devices,
            "allowed": [e for e in entries if e.list == DeviceIdList.ALLOWED],
            "blocked": [e for e in entries if e.list == DeviceIdList.BLOCKED],
            "add_form": add_form
            or MailboxDeviceIdForm(initial={"list": DeviceIdList.ALLOWED}, auto_id="add-%s"),
            "policy_form": policy_form,
            # A failed removal: its errors are summarised at the top (nothing was typed).
            "list_form": list_form,
            "can_manage": can_manage_devices(request.user),
            "can_toggle": can_toggle_activesync(request.user),
            "activesync_read_only": ACTIVESYNC_READ_ONLY,
            "policy": policy,
            # Following its domain: the policy names the mailbox's domain.
            "policy_by_domain": domain
            if policy and not mailbox.access_policy_pinned and not by_group
            else "",
            "policy_by_group": by_group,
            "directory_groups": groups,
            "policies": list(AccessPolicy.objects.order_by("priority", "name"))
            if can_policies
            else [],
            "can_policies": can_policies,
            "policies_read_only": POLICIES_READ_ONLY,
            "org": org,
            "languages": settings.LANGUAGES,
            "mail_language": mailbox_language(mailbox, org),
            "next": request.get_full_path(),
        },
    )


def _change_mailbox(request, mailbox):
    op = request.POST.get("op", "")
    here = f"/mailboxes/{mailbox.pk}/"
    actor = actor_for(request)
    if op == "activesync":
        get_mailbox_for_user(request, mailbox.pk, toggle=True)
        form = ActiveSyncForm(request.POST)
        if not form.is_valid():
            messages.error(request, _("Choose On or Off for ActiveSync."))
            return redirect(here)
        enabled = form.cleaned_data["activesync_enabled"]
        try:
            result = actions.set_mailbox(actor, mailbox, activesync_enabled=enabled)
        except actions.ActionError as e:
            messages.error(request, _("Nothing was changed: %(error)s") % {"error": e})
        else:
            messages.success(
                request,
                f"ActiveSync turned {'on' if enabled else 'off'} for {mailbox.alias}: "
                f"{_changes(result)}.",
            )
        return redirect(here)
    if op == "policy":
        return _set_policy(request, mailbox)
    if op == "language":
        get_mailbox_for_user(request, mailbox.pk, toggle=True)
        try:
            result = actions.set_mailbox_language(actor, mailbox, request.POST.get("language"))
        except actions.ActionError as e:
            messages.error(request, _("Nothing was changed: %(error)s") % {"error": e})
        else:
            messages.success(request, result.event.message)
        return redirect(here)
    if op not in ("add", "remove"):
        messages.error(request, _("Unknown change; nothing was changed."))
        return redirect(here)
    form = MailboxDeviceIdForm(request.POST, auto_id="add-%s" if op == "add" else "remove-%s")
    failed = {"add_form": form} if op == "add" else {"list_form": form}
    if not form.is_valid():
        return _page(request, mailbox, **failed)
    device_id, kind = form.cleaned_data["device_id"], form.cleaned_data["list"]
    key = f"{op}_{kind}"  # add_allowed, remove_blocked, ...
    try:
        result = actions.set_mailbox(actor, mailbox, **{key: [device_id]})
    except actions.ActionError as e:
        form.add_error("device_id", str(e))
        return _page(request, mailbox, **failed)
    where = "to" if op == "add" else "from"
    verb = "Added" if op == "add" else "Removed"
    messages.success(
        request,
        f"{verb} {device_id} {where} the {kind} list of {mailbox.alias}: {_changes(result)}.",
    )
    return redirect(here)


def _set_policy(request, mailbox):
    """Explicit membership of an access policy, or none: follow the domain again."""
    here = f"/mailboxes/{mailbox.pk}/"
    if not can_manage_policies(request.user):
        raise PermissionDenied(POLICIES_READ_ONLY)
    form = MailboxPolicyForm(request.POST, auto_id="set-%s")
    if not form.is_valid():
        form.add_error("policy", "Choose an access policy, or to follow the domain.")
        return _page(request, mailbox, policy_form=form)
    pk = form.cleaned_data["policy"]
    policy = get_policy_for_user(request, pk, change=True) if pk else None
    try:
        result = actions.set_mailbox_policy(actor_for(request), mailbox, policy)
    except actions.ActionError as e:
        form.add_error("policy", str(e))
        return _page(request, mailbox, policy_form=form)
    mailbox = result.obj
    if policy is not None:
        text = f"{mailbox.alias} is now an explicit member of the access policy {policy.name}"
    elif mailbox.access_policy_id:
        text = (
            f"{mailbox.alias} follows its domain again: the access policy "
            f"{mailbox.access_policy.name} applies"
        )
    else:
        text = f"{mailbox.alias} follows its domain again: the organisation default applies"
    messages.success(request, f"{text}: {_changes(result)}.")
    return redirect(here)
