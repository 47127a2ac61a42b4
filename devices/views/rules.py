"""Device access rules: list, create (also "for similar devices"), edit, delete, test.

Creating, editing and deleting show first what the change would do to the
existing devices (devices.actions.preview_rule); the change is saved only
from a form whose values are exactly the previewed ones. A change that moves
more than ECP_RULE_CHANGE_INLINE_LIMIT devices runs as a job (views/jobs.py
shows its progress) instead of holding the request.
"""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET

from .. import actions
from ..explain import explain_device
from ..forms import (
    DEFAULT_PAGE_SIZE,
    DeviceTestForm,
    RuleForm,
    SimilarDevicesRuleForm,
    device_families,
)
from ..models import (
    AccessLevel,
    Characteristic,
    DeviceAccessRule,
    MobileDevice,
    RuleChangeJob,
)
from ..permissions import (
    RULES_READ_ONLY,
    can_manage_rules,
    get_device_for_user,
    get_rule_for_user,
    staff_required,
)
from ..web import actor_for, safe_next
from .previews import FIRST, preview_context, preview_csv_response
from .wording import describe_counts, rule_words, sentence

RULES_URL = "/rules/"


def _signature(values: dict) -> str:
    return "\x1f".join((values["characteristic"], values["query_string"], values["access_level"]))


def _preview(counts) -> dict:
    phrases = describe_counts(counts)
    return {
        "phrases": phrases,
        "sentence": sentence(phrases),
        "total": sum(n for (before, after), n in counts.items() if before != after),
    }


def _duplicate_of(values: dict, exclude_pk=None):
    qs = DeviceAccessRule.objects.filter(
        characteristic=values["characteristic"], query_key=values["query_string"].lower()
    )
    if exclude_pk is not None:
        qs = qs.exclude(pk=exclude_pk)
    return qs.first()


@login_required
@staff_required
def rule_list(request):
    rules = DeviceAccessRule.objects.select_related("created_by").order_by(
        "characteristic", "query_key", "id"
    )
    page = Paginator(rules, DEFAULT_PAGE_SIZE).get_page(request.GET.get("page"))
    ids = [rule.pk for rule in page]
    deciding = dict(
        MobileDevice.objects.filter(access_rule__in=ids)
        .order_by()
        .values("access_rule")
        .annotate(n=Count("id"))
        .values_list("access_rule", "n")
    )
    for rule in page:
        rule.n_devices = deciding.get(rule.pk, 0)
    return render(
        request,
        "devices/rule_list.html",
        {
            "page": page,
            "test_form": DeviceTestForm(),
            "can_rules": can_manage_rules(request.user),
            "rules_read_only": RULES_READ_ONLY,
        },
    )


def _form_context(request, form, *, mode, rule=None, device=None, preview=None, values=None):
    types, models = device_families()
    duplicate = _duplicate_of(values, rule.pk if rule else None) if values else None
    return {
        "form": form,
        "mode": mode,
        "rule": rule,
        "device": device,
        "preview": preview,
        "values": values,
        "duplicate": duplicate,
        "previewed": _signature(values) if values and not duplicate else "",
        "types": types,
        "models": models,
        "next": safe_next(request, ""),
    }


def _save_or_preview(request, form, *, mode, rule=None, device=None):
    """The shared POST of new/edit: preview unless the previewed values are confirmed."""
    template = "devices/rule_form.html"
    if not form.is_valid():
        return render(
            request, template, _form_context(request, form, mode=mode, rule=rule, device=device)
        )
    values = form.rule_values()
    confirmed = "save" in request.POST and request.POST.get("previewed") == _signature(values)
    if confirmed:
        try:
            total = _preview(actions.preview_rule(**values, rule=rule))["total"]
            duplicate = _duplicate_of(values, rule.pk if rule else None)
            if total > settings.ECP_RULE_CHANGE_INLINE_LIMIT and not duplicate:
                kind = RuleChangeJob.Kind.CREATE if rule is None else RuleChangeJob.Kind.UPDATE
                job = actions.queue_rule_change(
                    actor_for(request), kind, rule=rule, values=values, devices_total=total
                )
                return redirect(f"/jobs/{job.pk}/")
            if rule is None:
                result = actions.create_rule(actor_for(request), **values)
            else:
                result = actions.update_rule(actor_for(request), rule, **values)
        except actions.ActionError as e:
            form.add_error(None, str(e))
        else:
            moved = _preview(result.summary())
            what = "Created" if rule is None else "Changed"
            messages.success(request, f"{what} {rule_words(result.obj)}: it {moved['sentence']}.")
            return redirect(safe_next(request, RULES_URL))
    try:
        preview = _listed_preview(values, rule)
    except actions.ActionError as e:
        form.add_error(None, str(e))
        return render(
            request, template, _form_context(request, form, mode=mode, rule=rule, device=device)
        )
    context = _form_context(
        request, form, mode=mode, rule=rule, device=device, preview=preview, values=values
    )
    return render(request, template, context)


def _listed_preview(values: dict, rule=None) -> dict:
    """The preview naming the devices, with the link to the CSV of all of them."""
    found = actions.preview_rule_devices(**values, rule=rule, first=FIRST)
    query = {k: values[k] for k in ("characteristic", "query_string", "access_level")}
    if rule is not None:
        query["rule"] = rule.pk
    csv_url = f"{reverse('rule-preview-csv')}?{urlencode(query)}"
    return preview_context(found, csv_url=csv_url)


@require_GET
@login_required
@staff_required
def rule_preview_csv(request):
    """Every device saving these rule values would move, as CSV."""
    if not can_manage_rules(request.user):
        raise PermissionDenied(RULES_READ_ONLY)
    rule = None
    if request.GET.get("rule"):
        rule = get_rule_for_user(request, request.GET["rule"], change=True)
    form = RuleForm(request.GET)
    if not form.is_valid():
        problems = " ".join(e for errors in form.errors.values() for e in errors)
        return HttpResponseBadRequest(
            f"No preview: {problems}\n", content_type="text/plain; charset=utf-8"
        )
    try:
        found = actions.preview_rule_devices(**form.rule_values(), rule=rule, first=0)
    except actions.ActionError as e:
        return HttpResponseBadRequest(
            f"No preview: {e}\n", content_type="text/plain; charset=utf-8"
        )
    return preview_csv_response(found, request, "rule-preview")


@require_GET
@login_required
@staff_required
def rule_delete_preview_csv(request, pk):
    """Every device deleting this rule would move, as CSV."""
    rule = get_rule_for_user(request, pk, change=True)
    found = actions.preview_rule_removal_devices(rule, first=0)
    return preview_csv_response(found, request, f"rule-{rule.pk}-delete-preview")


@login_required
@staff_required
def rule_new(request):
    if not can_manage_rules(request.user):
        raise PermissionDenied(RULES_READ_ONLY)
    device = None
    device_pk = request.POST.get("device") or request.GET.get("device")
    if device_pk:
        device = get_device_for_user(request, device_pk)
    if request.method == "POST":
        form_class = SimilarDevicesRuleForm if device else RuleForm
        return _save_or_preview(
            request, form_class(request.POST), mode="similar" if device else "rule", device=device
        )
    if device is None:
        form = RuleForm(initial={"characteristic": Characteristic.DEVICE_TYPE})
        return render(request, "devices/rule_form.html", _form_context(request, form, mode="rule"))
    # Pre-filled from the device, with its preview straight away.
    initial = {
        "device_type": device.device_type,
        "device_model": device.device_model,
        "only_this_model": False,
        "access_level": AccessLevel.ALLOW,
    }
    form = SimilarDevicesRuleForm(initial)
    if not form.is_valid():
        form = SimilarDevicesRuleForm(initial=initial)
        return render(
            request,
            "devices/rule_form.html",
            _form_context(request, form, mode="similar", device=device),
        )
    values = form.rule_values()
    context = _form_context(
        request, form, mode="similar", device=device, preview=_listed_preview(values), values=values
    )
    return render(request, "devices/rule_form.html", context)


@login_required
@staff_required
def rule_edit(request, pk):
    rule = get_rule_for_user(request, pk, change=True)
    if request.method == "POST":
        return _save_or_preview(request, RuleForm(request.POST), mode="rule", rule=rule)
    form = RuleForm(
        initial={
            "characteristic": rule.characteristic,
            "query_string": rule.query_string,
            "access_level": rule.access_level,
        }
    )
    return render(
        request, "devices/rule_form.html", _form_context(request, form, mode="rule", rule=rule)
    )


@login_required
@staff_required
def rule_delete(request, pk):
    rule = get_rule_for_user(request, pk, change=True)
    if request.method == "POST":
        words = rule_words(rule)
        total = _preview(actions.preview_rule_removal(rule))["total"]
        if total > settings.ECP_RULE_CHANGE_INLINE_LIMIT:
            job = actions.queue_rule_change(
                actor_for(request), RuleChangeJob.Kind.DELETE, rule=rule, devices_total=total
            )
            return redirect(f"/jobs/{job.pk}/")
        try:
            result = actions.delete_rule(actor_for(request), rule)
        except actions.ActionError as e:
            messages.error(request, f"Could not delete {words}: {e}")
            return redirect(RULES_URL)
        moved = _preview(result.summary())
        messages.success(request, f"Deleted {words}: it {moved['sentence']}.")
        return redirect(RULES_URL)
    found = actions.preview_rule_removal_devices(rule, first=FIRST)
    preview = preview_context(found, csv_url=reverse("rule-delete-preview-csv", args=[rule.pk]))
    deciding = MobileDevice.objects.filter(access_rule=rule).count()
    return render(
        request,
        "devices/rule_delete.html",
        {"rule": rule, "preview": preview, "deciding": deciding, "words": rule_words(rule)},
    )


@require_GET
@login_required
@staff_required
def rule_test(request):
    asked = any(k in request.GET for k in DeviceTestForm.base_fields)
    form = DeviceTestForm(request.GET if asked else None)
    result = explain_device(form.cleaned_data) if asked and form.is_valid() else None
    return render(
        request,
        "devices/rule_test.html",
        {
            "form": form,
            "result": result,
            "n_rules": DeviceAccessRule.objects.count(),
            "can_rules": can_manage_rules(request.user),
        },
    )
