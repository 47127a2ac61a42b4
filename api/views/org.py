"""GET and PATCH the organisation settings (Get/Set-ActiveSyncOrganizationSettings), and
what a new default access level would do before saving it (the settings page's confirmation)."""

from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from devices import actions
from devices.permissions import get_org_settings_for_user

from ..permissions import OrgSettingsPermission
from ..serializers import (
    OrgSettingsChangeSerializer,
    OrgSettingsPreviewSerializer,
    OrgSettingsSerializer,
    OrgSettingsUpdateSerializer,
    PreviewSerializer,
    change_summary,
    preview_summary,
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
        org = get_org_settings_for_user(request, change=True)
        serializer = OrgSettingsUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        values = dict(serializer.validated_data)
        grandfather_first = values.pop("grandfather_first")
        level = values.get("default_access_level")
        actor = actor_for(request)
        grandfathered = 0
        with transaction.atomic():  # both or neither, as on the settings page
            if grandfather_first and level is not None and level != org.default_access_level:
                grandfathered = actions.grandfather_devices(actor).count
            result = actions.set_org_settings(actor, **values)
        return Response(
            {
                "org_settings": OrgSettingsSerializer(result.obj).data,
                "grandfathered": grandfathered,
                **change_summary(result),
            }
        )


class OrgSettingsPreviewView(APIView):
    permission_classes = [OrgSettingsPermission]
    read_only_action = True  # a POST that changes nothing

    @extend_schema(
        operation_id="org_settings_preview",
        tags=["org settings"],
        summary="What a new default access level would do, without saving it",
        description="How many existing devices would change access state. Staff may ask.",
        request=OrgSettingsPreviewSerializer,
        responses=PreviewSerializer,
    )
    def post(self, request):
        get_org_settings_for_user(request)
        serializer = OrgSettingsPreviewSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        counts = actions.preview_org_settings(**serializer.validated_data)
        return Response(preview_summary(counts))
