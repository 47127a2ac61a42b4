"""GET and PATCH the organisation settings (Get/Set-ActiveSyncOrganizationSettings)."""

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from devices import actions
from devices.permissions import get_org_settings_for_user

from ..permissions import OrgSettingsPermission
from ..serializers import (
    OrgSettingsChangeSerializer,
    OrgSettingsSerializer,
    OrgSettingsUpdateSerializer,
    change_summary,
)
from .common import actor_for


class OrgSettingsView(APIView):
    permission_classes = [OrgSettingsPermission]

    @extend_schema(
        operation_id="org_settings_retrieve",
        tags=["org settings"],
        summary="Read the organisation settings",
        responses=OrgSettingsSerializer,
    )
    def get(self, request):
        org = get_org_settings_for_user(request)
        return Response(OrgSettingsSerializer(org).data)

    @extend_schema(
        operation_id="org_settings_update",
        tags=["org settings"],
        summary="Change some organisation settings",
        description="Only the fields given change. A new default access level or discovery "
        "window re-evaluates every device; the answer says how many changed state.",
        request=OrgSettingsUpdateSerializer,
        responses=OrgSettingsChangeSerializer,
    )
    def patch(self, request):
        get_org_settings_for_user(request, change=True)
        serializer = OrgSettingsUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = actions.set_org_settings(actor_for(request), **serializer.validated_data)
        return Response(
            {"org_settings": OrgSettingsSerializer(result.obj).data, **change_summary(result)}
        )
