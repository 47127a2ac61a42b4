"""Grandfathering and the purge of stale quarantine (grandfather-devices,
purge-quarantined). GET answers the dry run, which both staff roles may see (the
settings page shows the count); POST does it, for Organization Management."""

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from devices import actions
from devices.permissions import get_org_settings_for_user

from ..permissions import LifecyclePermission
from ..serializers import (
    PURGE_LISTED,
    DeviceSerializer,
    GrandfatherPreviewSerializer,
    GrandfatherSerializer,
    PurgeQuerySerializer,
    PurgeSerializer,
    change_summary,
)
from .common import actor_for

TAGS = ["lifecycle"]


class GrandfatherView(APIView):
    permission_classes = [LifecyclePermission]

    @extend_schema(
        operation_id="grandfather_devices_preview",
        summary="How many devices grandfathering would put on the allowed lists (dry run)",
        tags=TAGS,
        responses=GrandfatherPreviewSerializer,
    )
    def get(self, request):
        get_org_settings_for_user(request)
        result = actions.grandfather_devices(actor_for(request), dry_run=True)
        return Response({"count": result.count})

    @extend_schema(
        operation_id="grandfather_devices",
        summary="Grandfather today's devices",
        description="Every device allowed by the default access level goes on its "
        "mailbox's allowed list (Allowed / Individual), so that it keeps syncing when the "
        "default becomes Quarantine. Nothing already on a list is touched.",
        tags=TAGS,
        request=None,
        responses=GrandfatherSerializer,
    )
    def post(self, request):
        get_org_settings_for_user(request, change=True)
        result = actions.grandfather_devices(actor_for(request))
        return Response({"count": result.count, **change_summary(result)})


def _purge_answer(result, days: int, message: str) -> dict:
    return {
        "older_than_days": days,
        "count": result.count,
        "devices": DeviceSerializer(result.obj[:PURGE_LISTED], many=True).data,
        "message": message,
    }


def _plural(n: int) -> str:
    return f"{n} device{'s' if n != 1 else ''}"


class PurgeQuarantinedView(APIView):
    permission_classes = [LifecyclePermission]

    @extend_schema(
        operation_id="purge_quarantined_preview",
        summary="Which quarantined devices a purge would remove (dry run)",
        tags=TAGS,
        parameters=[PurgeQuerySerializer],
        responses=PurgeSerializer,
    )
    def get(self, request):
        get_org_settings_for_user(request)
        query = PurgeQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        days = query.validated_data["older_than_days"]
        result = actions.purge_quarantined(actor_for(request), older_than_days=days, dry_run=True)
        message = f"{_plural(result.count)} waited {days} days or more in quarantine"
        return Response(_purge_answer(result, days, message))

    @extend_schema(
        operation_id="purge_quarantined",
        summary="Remove the partnerships that waited in quarantine too long",
        description="Every device Quarantined for at least `older_than_days` days (0: every "
        "quarantined device) is removed, each with its audit event; if it syncs again it "
        "starts over as a new device.",
        tags=TAGS,
        request=PurgeQuerySerializer,
        responses=PurgeSerializer,
    )
    def post(self, request):
        get_org_settings_for_user(request, change=True)
        body = PurgeQuerySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        days = body.validated_data["older_than_days"]
        result = actions.purge_quarantined(actor_for(request), older_than_days=days)
        message = f"Removed {_plural(result.count)} after {days} days or more in quarantine"
        return Response(_purge_answer(result, days, message))
