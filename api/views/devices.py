"""Devices (Get-MobileDevice), and the quarantine page's buttons: allow, block, remove,
replace, the bulk allow / block; the device page's history; an end user's self-approval."""

from collections import Counter

from django.http import Http404
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response

from devices import actions
from devices.filters import DeviceFilterSet
from devices.models import DeviceStateChange, MobileDevice
from devices.permissions import can_manage_devices, get_device_for_user, get_own_device_for_user

from ..permissions import CanReadDevices
from ..serializers import (
    DeviceBulkResultSerializer,
    DeviceBulkSerializer,
    DeviceChangeSerializer,
    DeviceHistorySerializer,
    DeviceReplaceSerializer,
    DeviceSerializer,
    RuleRefSerializer,
    change_summary,
)
from .common import actor_for, visible_devices

HISTORY_LIMIT = 50  # as many as the device page shows


class DeviceRemovalSerializer(serializers.Serializer):
    device = DeviceSerializer(help_text="The partnership as it was before it was removed.")
    message = serializers.CharField()


@extend_schema_view(
    list=extend_schema(
        summary="List devices",
        description="Staff see every device, an end user only their own. The filters are "
        "the quarantine page's: `/api/v1/devices?state=Quarantined&sort=waiting` is that list.",
        tags=["devices"],
    ),
    retrieve=extend_schema(summary="One device", tags=["devices"]),
)
class DeviceViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = DeviceSerializer
    permission_classes = [CanReadDevices]
    filter_backends = [DjangoFilterBackend]
    filterset_class = DeviceFilterSet
    lookup_value_converter = "int"
    queryset = MobileDevice.objects.none()  # for the schema; get_queryset is the real one

    def get_queryset(self):
        return visible_devices(self.request.user)

    def retrieve(self, request, pk=None):
        return Response(DeviceSerializer(get_device_for_user(request, pk)).data)

    def _set_access(self, request, pk, action_function):
        device = get_device_for_user(request, pk, change=True)
        result = action_function(actor_for(request), device.mailbox, device.device_id)
        device = get_device_for_user(request, pk)
        return Response({"device": DeviceSerializer(device).data, **change_summary(result)})

    @extend_schema(
        operation_id="devices_allow",
        summary="Allow a device (Allow in the quarantine list)",
        description="Puts the DeviceId on its mailbox's allowed list (and off the blocked "
        "list): the device becomes Allowed / Individual.",
        tags=["devices"],
        request=None,
        responses=DeviceChangeSerializer,
    )
    @action(detail=True, methods=["post"])
    def allow(self, request, pk=None):
        return self._set_access(request, pk, actions.allow_device)

    @extend_schema(
        operation_id="devices_block",
        summary="Block a device",
        description="Puts the DeviceId on its mailbox's blocked list (and off the allowed "
        "list): the device becomes Blocked / Individual.",
        tags=["devices"],
        request=None,
        responses=DeviceChangeSerializer,
    )
    @action(detail=True, methods=["post"])
    def block(self, request, pk=None):
        return self._set_access(request, pk, actions.block_device)

    @extend_schema(
        operation_id="devices_remove",
        summary="Remove a partnership (Remove-MobileDevice)",
        description="The device starts over as a new device if it syncs again.",
        tags=["devices"],
        responses={200: DeviceRemovalSerializer},
    )
    def destroy(self, request, pk=None):
        device = get_device_for_user(request, pk, change=True)
        before = DeviceSerializer(device).data
        result = actions.remove_device(actor_for(request), device)
        return Response({"device": before, "message": result.event.message})

    @extend_schema(
        operation_id="devices_replace",
        summary="Allow a device that replaces an approved one (Replace in the quarantine list)",
        description="A reset phone comes back with a new DeviceId: this one is allowed, the "
        "old partnership (an Allowed device of the same mailbox) removed and its DeviceId "
        "taken off the allowed list.",
        tags=["devices"],
        request=DeviceReplaceSerializer,
        responses=DeviceChangeSerializer,
    )
    @action(detail=True, methods=["post"])
    def replace(self, request, pk=None):
        device = get_device_for_user(request, pk, change=True)
        serializer = DeviceReplaceSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            old = get_device_for_user(request, serializer.validated_data["old"], change=True)
        except Http404:
            raise ValidationError({"old": ["No such device."]}) from None
        result = actions.allow_and_replace(actor_for(request), device, old)
        device = get_device_for_user(request, pk)
        return Response({"device": DeviceSerializer(device).data, **change_summary(result)})

    @extend_schema(
        operation_id="devices_bulk",
        summary="Allow or block several devices at once (the quarantine list's selection)",
        description="Each device is allowed or blocked as by its own button; one that fails "
        "is reported in `failed` and the others still happen. Help desk and Organization "
        "Management.",
        tags=["devices"],
        request=DeviceBulkSerializer,
        responses=DeviceBulkResultSerializer,
    )
    @action(detail=False, methods=["post"])
    def bulk(self, request):
        if not can_manage_devices(request.user):
            raise PermissionDenied("Ask the help desk to allow or block a device.")
        serializer = DeviceBulkSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        verb = serializer.validated_data["action"]
        ids = sorted(set(serializer.validated_data["ids"]))
        action_function = actions.allow_device if verb == "allow" else actions.block_device
        devices = MobileDevice.objects.select_related("mailbox").filter(pk__in=ids).order_by("pk")
        actor = actor_for(request)
        done, failed, moves = [], [], Counter()
        for device in devices:
            try:
                result = action_function(actor, device.mailbox, device.device_id)
            except actions.ActionError as e:
                failed.append({"id": device.pk, "message": str(e)})
                continue
            done.append(device.pk)
            moves.update((t.from_state, t.to_state) for t in result.transitions)
        moved = {k: n for k, n in moves.items() if k[0] != k[1]}
        past = "Allowed" if verb == "allow" else "Blocked"
        message = f"{past} {len(done)} device{'s' if len(done) != 1 else ''}"
        if moved:
            message += "; " + actions.describe_changes(Counter(moved))
        return Response(
            {
                "done": done,
                "failed": failed,
                "missing": sorted(set(ids) - set(done) - {f["id"] for f in failed}),
                "changed": sum(moved.values()),
                "changes": [
                    {"from": a, "to": b, "count": n} for (a, b), n in sorted(moved.items())
                ],
                "message": message,
            }
        )

    @extend_schema(
        operation_id="devices_approve",
        summary="Approve your own quarantined device (My devices)",
        description="For the device's owner, where the organisation's self-approval setting "
        "allows it; the administrators are told by mail. Another login's device is a 404.",
        tags=["devices"],
        request=None,
        responses=DeviceChangeSerializer,
    )
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        device = get_own_device_for_user(request, pk)
        result = actions.self_approve(actor_for(request), device)
        device = get_own_device_for_user(request, pk)
        return Response({"device": DeviceSerializer(device).data, **change_summary(result)})

    @extend_schema(
        operation_id="devices_history",
        summary="A device's access-state history, newest first (the device page's history)",
        description=f"At most {HISTORY_LIMIT} changes, each with who or what made it.",
        tags=["devices"],
        responses=DeviceHistorySerializer(many=True),
    )
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def history(self, request, pk=None):
        device = get_device_for_user(request, pk)
        changes = (
            DeviceStateChange.objects.filter(device=device)
            .select_related("event", "rule")
            .order_by("-time", "-id")[:HISTORY_LIMIT]
        )
        return Response(
            [
                {
                    "time": c.time,
                    "from_state": c.from_state,
                    "to_state": c.to_state,
                    "to_reason": c.to_reason,
                    "rule": RuleRefSerializer(c.rule).data if c.rule else None,
                    "actor": c.event.actor_name if c.event else "",
                    "message": c.event.message if c.event else "",
                }
                for c in changes
            ]
        )
