"""Sent mail: the notification outbox, and Resend. Organization Management only
(the Sent mail page's permissions: view_notification, change_notification)."""

from django.shortcuts import get_object_or_404
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from devices import actions
from notifications.models import Notification

from ..filters import NotificationFilterSet
from ..permissions import NotificationPermission
from ..serializers import NotificationResendSerializer, NotificationSerializer
from .common import actor_for


@extend_schema_view(
    list=extend_schema(summary="List sent and pending mail, newest first", tags=["notifications"]),
    retrieve=extend_schema(summary="One mail", tags=["notifications"]),
)
class NotificationViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = NotificationSerializer
    permission_classes = [NotificationPermission]
    filter_backends = [DjangoFilterBackend]
    filterset_class = NotificationFilterSet
    lookup_value_converter = "int"
    queryset = Notification.objects.defer("body_text", "body_html", "context").order_by(
        "-created_at", "-id"
    )

    @extend_schema(
        operation_id="notifications_resend",
        summary="Send a mail again",
        description="A failed or pending mail is retried; a sent one is copied and sent again.",
        tags=["notifications"],
        request=None,
        responses={202: NotificationResendSerializer},
    )
    @action(detail=True, methods=["post"])
    def resend(self, request, pk=None):
        notification = get_object_or_404(Notification, pk=pk)
        result = actions.resend_notification(actor_for(request), notification)
        return Response(
            {
                "notification": NotificationSerializer(result.obj).data,
                "message": result.event.message,
            },
            status=status.HTTP_202_ACCEPTED,
        )
