"""Mailboxes (Get-CASMailbox) and their allowed / blocked DeviceId lists (Set-CASMailbox)."""

from django.db.models import Count
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from devices import actions
from devices.models import Mailbox
from devices.permissions import get_mailbox_for_user

from ..filters import MailboxFilterSet
from ..permissions import IsStaff
from ..serializers import (
    DeviceIdListsSerializer,
    DeviceIdListsUpdateSerializer,
    MailboxChangeSerializer,
    MailboxSerializer,
    change_summary,
)
from .common import actor_for


def mailboxes():
    return (
        Mailbox.objects.select_related("user")
        .prefetch_related("device_ids")
        .annotate(device_count=Count("devices", distinct=True))
        .order_by("alias", "id")
    )


@extend_schema_view(
    list=extend_schema(summary="List mailboxes", tags=["mailboxes"]),
    retrieve=extend_schema(summary="One mailbox, with its DeviceId lists", tags=["mailboxes"]),
)
class MailboxViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = MailboxSerializer
    permission_classes = [IsStaff]
    filter_backends = [DjangoFilterBackend]
    filterset_class = MailboxFilterSet
    lookup_value_converter = "int"
    queryset = Mailbox.objects.none()  # for the schema; get_queryset is the real one

    def get_queryset(self):
        return mailboxes()

    def get_object(self):
        checked = get_mailbox_for_user(self.request, self.kwargs["pk"])
        return mailboxes().get(pk=checked.pk)

    def retrieve(self, request, pk=None):
        return Response(MailboxSerializer(self.get_object()).data)

    @extend_schema(
        operation_id="mailboxes_device_ids_retrieve",
        summary="A mailbox's allowed and blocked DeviceIds",
        tags=["mailboxes"],
        responses=DeviceIdListsSerializer,
    )
    @action(detail=True, methods=["get"], url_path="device-ids")
    def device_ids(self, request, pk=None):
        data = MailboxSerializer(self.get_object()).data
        return Response(
            {k: data[k] for k in ("allowed_device_ids", "blocked_device_ids")},
        )

    @extend_schema(
        operation_id="mailboxes_device_ids_update",
        summary="Add DeviceIds to or take them off a mailbox's allowed and blocked lists",
        description="Adding a DeviceId to one list takes it off the other. The mailbox's "
        "devices are re-evaluated; the answer says how many changed state.",
        tags=["mailboxes"],
        request=DeviceIdListsUpdateSerializer,
        responses=MailboxChangeSerializer,
    )
    @device_ids.mapping.patch
    def update_device_ids(self, request, pk=None):
        mailbox = get_mailbox_for_user(request, pk)
        serializer = DeviceIdListsUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = actions.set_mailbox(actor_for(request), mailbox, **serializer.validated_data)
        return Response(
            {
                "mailbox": MailboxSerializer(mailboxes().get(pk=mailbox.pk)).data,
                **change_summary(result),
            }
        )
