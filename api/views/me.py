from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from devices.permissions import (
    can_manage_devices,
    can_manage_rules,
    can_manage_settings,
    role_for,
)

from ..serializers import MeSerializer


@extend_schema(
    operation_id="me",
    tags=["account"],
    summary="Who the token or session belongs to, and what it may do",
    responses=MeSerializer,
)
@api_view(["GET"])
@permission_classes([IsAuthenticated])
def me(request):
    user = request.user
    return Response(
        {
            "username": user.get_username(),
            "role": role_for(user).value,
            "can_manage_devices": can_manage_devices(user),
            "can_manage_rules": can_manage_rules(user),
            "can_manage_settings": can_manage_settings(user),
            "can_read_notifications": user.has_perm("notifications.view_notification"),
        }
    )
