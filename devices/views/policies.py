"""Access policies: a default access level for part of the organisation.

Mailboxes follow a policy by explicit membership (set on the mailbox page) or
by the domain of their primary SMTP address. Both staff roles read them; only
Organization Management creates, changes, deletes and assigns them.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext

from .. import actions
from ..forms import PolicyForm
from ..models import AccessPolicy, OrgSettings
from ..permissions import (
    POLICIES_READ_ONLY,
    can_manage_policies,
    get_policy_for_user,
    staff_required,
)
from ..web import actor_for
from .previews import FIRST, preview_context, preview_csv_response
from .wording import describe_counts, plural, sentence

POLICIES_URL = "/policies/"


def moved(result) -> str:
    """'it puts 3 allowed devices in quarantine' (or 'it changes no existing device')."""
    return f"it {sentence(describe_counts(result.summary()))}"


@login_required
@staff_required
def policy_list(request):
    policies = AccessPolicy.objects.annotate(
        n_members=Count("mailboxes"),
        n_pinned=Count("mailboxes", filter=Q(mailboxes__access_policy_pinned=True)),
    ).order_by("priority", "name", "id")
    return render(
        request,
        "devices/policy_list.html",
        {
            "policies": policies,
            "org": OrgSettings.load(),
            "can_policies": can_manage_policies(request.user),
            "policies_read_only": POLICIES_READ_ONLY,
        },
    )


def _form_page(request, form, policy=None, preview=None):
    return render(
        request,
        "devices/policy_form.html",
        {"form": form, "policy": policy, "preview": preview},
    )


def _preview_page(request, form, policy=None):
    """The devices saving these values would move (a rolled-back dry run), and the CSV."""
    values = form.policy_values()
    try:
        found = actions.preview_policy(actor_for(request), policy, first=FIRST, **values)
    except actions.ActionError as e:
        form.add_error(None, str(e))
        return _form_page(request, form, policy)
    query = {k: v for k, v in request.POST.items() if k in PolicyForm.base_fields}
    if policy is not None:
        query["policy"] = policy.pk
    csv_url = f"{reverse('policy-preview-csv')}?{urlencode(query)}"
    return _form_page(request, form, policy, preview_context(found, csv_url=csv_url))


@login_required
@staff_required
def policy_preview_csv(request):
    """Every device saving these policy values would move, as CSV."""
    if not can_manage_policies(request.user):
        raise PermissionDenied(POLICIES_READ_ONLY)
    policy = None
    if request.GET.get("policy"):
        policy = get_policy_for_user(request, request.GET["policy"], change=True)
    form = PolicyForm(request.GET)
    if not form.is_valid():
        problems = " ".join(e for errors in form.errors.values() for e in errors)
        return HttpResponseBadRequest(
            f"No preview: {problems}\n", content_type="text/plain; charset=utf-8"
        )
    try:
        found = actions.preview_policy(actor_for(request), policy, first=0, **form.policy_values())
    except actions.ActionError as e:
        return HttpResponseBadRequest(
            f"No preview: {e}\n", content_type="text/plain; charset=utf-8"
        )
    return preview_csv_response(found, request, "policy-preview")


@login_required
@staff_required
def policy_new(request):
    if not can_manage_policies(request.user):
        raise PermissionDenied(POLICIES_READ_ONLY)
    if request.method != "POST":
        return _form_page(request, PolicyForm())
    form = PolicyForm(request.POST)
    if not form.is_valid():
        return _form_page(request, form)
    if "preview" in request.POST:
        return _preview_page(request, form)
    try:
        result = actions.create_policy(actor_for(request), **form.policy_values())
    except actions.ActionError as e:
        form.add_error(None, str(e))
        return _form_page(request, form)
    policy = result.obj
    members = policy.mailboxes.count()
    messages.success(
        request,
        f"Created the access policy {policy.name} ({policy.default_access_level}, "
        f"{plural(members, 'mailbox', 'mailboxes')}): {moved(result)}.",
    )
    return redirect(POLICIES_URL)


@login_required
@staff_required
def policy_edit(request, pk):
    policy = get_policy_for_user(request, pk, change=True)
    if request.method != "POST":
        return _form_page(request, PolicyForm(initial=PolicyForm.initial_from(policy)), policy)
    form = PolicyForm(request.POST)
    if not form.is_valid():
        return _form_page(request, form, policy)
    if "preview" in request.POST:
        return _preview_page(request, form, policy)
    try:
        result = actions.update_policy(actor_for(request), policy, **form.policy_values())
    except actions.ActionError as e:
        form.add_error(None, str(e))
        return _form_page(request, form, policy)
    policy = result.obj
    messages.success(
        request,
        f"Changed the access policy {policy.name} ({policy.default_access_level}): "
        f"{moved(result)}.",
    )
    return redirect(POLICIES_URL)


@login_required
@staff_required
def policy_delete(request, pk):
    policy = get_policy_for_user(request, pk, change=True)
    if request.method == "POST":
        name = policy.name
        try:
            result = actions.delete_policy(actor_for(request), policy)
        except actions.ActionError as e:
            messages.error(
                request,
                gettext("Could not delete the access policy %(name)s: %(error)s")
                % {"name": name, "error": e},
            )
        else:
            messages.success(request, f"Deleted the access policy {name}: {moved(result)}.")
        return redirect(POLICIES_URL)
    members = policy.mailboxes.aggregate(
        n=Count("id"), pinned=Count("id", filter=Q(access_policy_pinned=True))
    )
    found = actions.preview_policy_removal(actor_for(request), policy, first=FIRST)
    preview = preview_context(found, csv_url=reverse("policy-delete-preview-csv", args=[policy.pk]))
    users = len({d.mailbox_id for d in found.devices()}) if found.total else 0
    return render(
        request,
        "devices/policy_delete.html",
        {
            "policy": policy,
            "members": members,
            "org": OrgSettings.load(),
            "preview": preview,
            "users": users,
        },
    )


@login_required
@staff_required
def policy_delete_preview_csv(request, pk):
    """Every device deleting the policy would move, as CSV."""
    policy = get_policy_for_user(request, pk, change=True)
    found = actions.preview_policy_removal(actor_for(request), policy, first=0)
    return preview_csv_response(found, request, "policy-delete-preview")
