"""Organisation-wide DeviceIds (get/add/remove-org-device-id): allowed for every mailbox,
a pool of loan devices. Both staff roles read the list; Organization Management changes it."""

from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response

from devices import actions
from devices.models import MobileDevice, OrgDeviceId
from devices.permissions import get_org_device_id_for_user

from ..filters import OrgDeviceIdFilterSet
from ..permissions import OrgDeviceIdsPermission
from ..serializers import (
    OrgDeviceIdChangeSerializer,
    OrgDeviceIdRemovalSerializer,
    OrgDeviceIdSerializer,
    OrgDeviceIdWriteSerializer,
    change_summary,
)
from .common import actor_for

TAGS = ["org device ids"]


def entries():
    partnerships = (
        MobileDevice.objects.filter(device_key=OuterRef("device_key"))
        .order_by()
        .values("device_key")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return OrgDeviceId.objects.annotate(
        device_count=Coalesce(Subquery(partnerships, output_field=IntegerField()), 0)
    ).order_by("device_key", "id")


@extend_schema_view(
    list=extend_schema(summary="List the DeviceIds allowed for every mailbox", tags=TAGS),
    retrieve=extend_schema(summary="One organisation-wide DeviceId", tags=TAGS),
)
class OrgDeviceIdViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = OrgDeviceIdSerializer
    permission_classes = [OrgDeviceIdsPermission]
    filter_backends = [DjangoFilterBackend]
    filterset_class = OrgDeviceIdFilterSet
    lookup_value_converter = "int"
    queryset = OrgDeviceId.objects.none()  # for the schema; get_queryset is the real one

    def get_queryset(self):
        return entries()

    def retrieve(self, request, pk=None):
        entry = get_org_device_id_for_user(request, pk)
        return Response(OrgDeviceIdSerializer(entries().get(pk=entry.pk)).data)

    @extend_schema(
        summary="Allow a DeviceId for every mailbox",
        description="Its devices become Allowed (after the mailbox's own lists, before the "
        "rules); the answer says how many changed state. A DeviceId already on the list "
        "(any case) is a 409.",
        tags=TAGS,
        request=OrgDeviceIdWriteSerializer,
        responses={201: OrgDeviceIdChangeSerializer},
    )
    def create(self, request):
        serializer = OrgDeviceIdWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        result = actions.add_org_device_id(
            actor_for(request), data["device_id"], note=data["note"].strip()
        )
        entry = OrgDeviceIdSerializer(entries().get(pk=result.obj.pk)).data
        return Response(
            {"org_device_id": entry, **change_summary(result)}, status=status.HTTP_201_CREATED
        )

    @extend_schema(
        summary="Take a DeviceId off the organisation-wide list",
        description="Its devices are re-evaluated; the answer says how many changed state.",
        tags=TAGS,
        responses={200: OrgDeviceIdRemovalSerializer},
    )
    def destroy(self, request, pk=None):
        entry = get_org_device_id_for_user(request, pk, change=True)
        before = OrgDeviceIdSerializer(entries().get(pk=entry.pk)).data
        result = actions.remove_org_device_id(actor_for(request), entry.device_id)
        return Response({"org_device_id": before, **change_summary(result)})
