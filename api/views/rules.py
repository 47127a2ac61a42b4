"""Device access rules (*-ActiveSyncDeviceAccessRule). Every write answers with what it did
to the existing devices; POST /rules/preview tells it before.

As on the rules page, a change that would move more than ECP_RULE_CHANGE_INLINE_LIMIT
devices does not hold the request: it is queued as a rule change job (202, with the job;
poll /api/v1/rule-change-jobs/{id}).
"""

from django.conf import settings
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from devices import actions
from devices.models import DeviceAccessRule, MobileDevice, RuleChangeJob
from devices.permissions import get_rule_for_user

from ..filters import RuleFilterSet
from ..permissions import RulesPermission
from ..serializers import (
    PreviewSerializer,
    RuleChangeJobSerializer,
    RuleChangeQueuedSerializer,
    RuleChangeSerializer,
    RuleRefSerializer,
    RuleRemovalSerializer,
    RuleSerializer,
    RuleWriteSerializer,
    change_summary,
    preview_summary,
)
from .common import actor_for


def rules():
    held = (
        MobileDevice.objects.filter(access_rule=OuterRef("pk"))
        .order_by()
        .values("access_rule")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return (
        DeviceAccessRule.objects.select_related("created_by")
        .annotate(device_count=Coalesce(Subquery(held, output_field=IntegerField()), 0))
        .order_by("characteristic", "query_key", "id")
    )


TAGS = ["rules"]
QUEUED = {202: RuleChangeQueuedSerializer}


def _is_duplicate(values: dict, exclude_pk=None) -> bool:
    """A rule with the same characteristic and query string: the action answers 409 itself."""
    if "characteristic" not in values or "query_string" not in values:
        return False
    same = DeviceAccessRule.objects.filter(
        characteristic=values["characteristic"], query_key=values["query_string"].strip().lower()
    )
    return same.exclude(pk=exclude_pk).exists()


def _queued_if_big(request, counts, kind, *, rule=None, values=None):
    """A 202 with the job when the change moves too many devices to make it now; else None."""
    total = preview_summary(counts)["changed"]
    if total <= settings.ECP_RULE_CHANGE_INLINE_LIMIT:
        return None
    job = actions.queue_rule_change(
        actor_for(request), kind, rule=rule, values=values, devices_total=total
    )
    return Response(
        {
            "job": RuleChangeJobSerializer(job).data,
            "message": f"{total:,} devices change state: the change runs as job {job.pk}.",
        },
        status=status.HTTP_202_ACCEPTED,
        headers={"Location": f"/api/v1/rule-change-jobs/{job.pk}"},
    )


@extend_schema_view(
    list=extend_schema(summary="List device access rules", tags=TAGS),
    retrieve=extend_schema(summary="One device access rule", tags=TAGS),
)
class RuleViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = RuleSerializer
    permission_classes = [RulesPermission]
    filter_backends = [DjangoFilterBackend]
    filterset_class = RuleFilterSet
    lookup_value_converter = "int"
    queryset = DeviceAccessRule.objects.none()  # for the schema; get_queryset is the real one

    @property
    def read_only_action(self) -> bool:
        return self.action in ("preview", "change_preview")  # POSTs that change nothing

    def get_queryset(self):
        return rules()

    def retrieve(self, request, pk=None):
        rule = get_rule_for_user(request, pk)
        return Response(RuleSerializer(rules().get(pk=rule.pk)).data)

    def _answer(self, result, code=status.HTTP_200_OK):
        rule = RuleSerializer(rules().get(pk=result.obj.pk)).data
        return Response({"rule": rule, **change_summary(result)}, status=code)

    @extend_schema(
        summary="Create a rule (New-ActiveSyncDeviceAccessRule)",
        description="Every device is re-evaluated; the answer says how many changed state "
        "(202 and a job instead when that is more than the inline limit). A rule for the "
        "same characteristic and query string (any case) is a 409.",
        tags=TAGS,
        request=RuleWriteSerializer,
        responses={201: RuleChangeSerializer, **QUEUED},
    )
    def create(self, request):
        serializer = RuleWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        values = serializer.validated_data
        if not _is_duplicate(values):
            counts = actions.preview_rule(**values)
            queued = _queued_if_big(request, counts, RuleChangeJob.Kind.CREATE, values=values)
            if queued is not None:
                return queued
        result = actions.create_rule(actor_for(request), **values)
        return self._answer(result, status.HTTP_201_CREATED)

    def _update(self, request, pk, *, partial: bool):
        rule = get_rule_for_user(request, pk, change=True)
        serializer = RuleWriteSerializer(data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        values = {**actions.rule_snapshot(rule), **serializer.validated_data}
        if not _is_duplicate(values, exclude_pk=rule.pk):
            counts = actions.preview_rule(**values, rule=rule)
            queued = _queued_if_big(
                request, counts, RuleChangeJob.Kind.UPDATE, rule=rule, values=values
            )
            if queued is not None:
                return queued
        result = actions.update_rule(actor_for(request), rule, **serializer.validated_data)
        return self._answer(result)

    @extend_schema(
        summary="Replace a rule (Set-ActiveSyncDeviceAccessRule)",
        tags=TAGS,
        request=RuleWriteSerializer,
        responses={200: RuleChangeSerializer, **QUEUED},
    )
    def update(self, request, pk=None):
        return self._update(request, pk, partial=False)

    @extend_schema(
        summary="Change some of a rule's fields",
        tags=TAGS,
        request=RuleWriteSerializer(partial=True),
        responses={200: RuleChangeSerializer, **QUEUED},
    )
    def partial_update(self, request, pk=None):
        return self._update(request, pk, partial=True)

    @extend_schema(
        summary="Remove a rule (Remove-ActiveSyncDeviceAccessRule)",
        description="The devices it decided are re-evaluated; the answer says how many "
        "changed state.",
        tags=TAGS,
        responses={200: RuleRemovalSerializer, **QUEUED},
    )
    def destroy(self, request, pk=None):
        rule = get_rule_for_user(request, pk, change=True)
        counts = actions.preview_rule_removal(rule)
        queued = _queued_if_big(request, counts, RuleChangeJob.Kind.DELETE, rule=rule)
        if queued is not None:
            return queued
        before = RuleRefSerializer(rule).data
        result = actions.delete_rule(actor_for(request), rule)
        return Response({"rule": before, **change_summary(result)})

    @extend_schema(
        operation_id="rules_preview",
        summary="What creating a rule would do, without creating it",
        description="Staff may preview; nothing is written.",
        tags=TAGS,
        request=RuleWriteSerializer,
        responses=PreviewSerializer,
    )
    @action(detail=False, methods=["post"])
    def preview(self, request):
        serializer = RuleWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(preview_summary(actions.preview_rule(**serializer.validated_data)))

    @extend_schema(
        operation_id="rules_change_preview",
        summary="What changing a rule would do, without changing it",
        description="The fields given replace the rule's; the others stay. Staff may "
        "preview; nothing is written.",
        tags=TAGS,
        request=RuleWriteSerializer(partial=True),
        responses=PreviewSerializer,
    )
    @action(detail=True, methods=["post"], url_path="preview")
    def change_preview(self, request, pk=None):
        rule = get_rule_for_user(request, pk)
        serializer = RuleWriteSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        values = {**actions.rule_snapshot(rule), **serializer.validated_data}
        return Response(preview_summary(actions.preview_rule(**values, rule=rule)))

    @extend_schema(
        operation_id="rules_removal_preview",
        summary="What removing a rule would do, without removing it",
        tags=TAGS,
        responses=PreviewSerializer,
    )
    @action(detail=True, methods=["get"], url_path="removal-preview")
    def removal_preview(self, request, pk=None):
        rule = get_rule_for_user(request, pk)
        return Response(preview_summary(actions.preview_rule_removal(rule)))
