"""Devices (Get-MobileDevice), and allow, block, remove (the quarantine page's buttons)."""

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from devices import actions
from devices.filters import DeviceFilterSet
from devices.models import MobileDevice
from devices.permissions import get_device_for_user

from ..permissions import CanReadDevices
from ..serializers import DeviceChangeSerializer, DeviceSerializer, change_summary
from .common import actor_for, visible_devices


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
