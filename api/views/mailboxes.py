"""Mailboxes (Get-CASMailbox) and their allowed / blocked DeviceId lists (Set-CASMailbox)."""

from django.db.models import Count
from django.http import Http404
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response

from devices import actions
from devices.models import Mailbox
from devices.permissions import (
    POLICIES_READ_ONLY,
    can_manage_policies,
    get_mailbox_for_user,
    get_policy_for_user,
)

from ..filters import MailboxFilterSet
from ..permissions import IsStaff
from ..serializers import (
    DeviceIdListsSerializer,
    DeviceIdListsUpdateSerializer,
    MailboxChangeSerializer,
    MailboxPolicySerializer,
    MailboxSerializer,
    MailboxUpdateSerializer,
    change_summary,
)
from .common import actor_for


def mailboxes():
    return (
        Mailbox.objects.select_related("user", "access_policy")
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

    def _answer(self, mailbox, result):
        return Response(
            {
                "mailbox": MailboxSerializer(mailboxes().get(pk=mailbox.pk)).data,
                **change_summary(result),
            }
        )

    @extend_schema(
        summary="Turn ActiveSync on or off for a mailbox (Set-CASMailbox -ActiveSyncEnabled)",
        description="Organization Management only, as on the mailbox page. Off: every device "
        "of the mailbox is Blocked / Policy; the answer says how many changed state.",
        tags=["mailboxes"],
        request=MailboxUpdateSerializer,
        responses=MailboxChangeSerializer,
    )
    def partial_update(self, request, pk=None):
        mailbox = get_mailbox_for_user(request, pk, toggle=True)
        serializer = MailboxUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = actions.set_mailbox(actor_for(request), mailbox, **serializer.validated_data)
        return self._answer(mailbox, result)

    @extend_schema(
        operation_id="mailboxes_access_policy_update",
        summary="Make a mailbox a member of an access policy, or let it follow its domain",
        description="Organization Management only. `access_policy: null` ends the explicit "
        "membership: the domain's or directory group's policy, or the organisation default, "
        "applies again. The mailbox's devices are re-evaluated.",
        tags=["mailboxes"],
        request=MailboxPolicySerializer,
        responses=MailboxChangeSerializer,
    )
    @action(detail=True, methods=["put"], url_path="access-policy")
    def access_policy(self, request, pk=None):
        mailbox = get_mailbox_for_user(request, pk)
        if not can_manage_policies(request.user):
            raise PermissionDenied(POLICIES_READ_ONLY)
        serializer = MailboxPolicySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        policy_pk = serializer.validated_data["access_policy"]
        policy = None
        if policy_pk is not None:
            try:
                policy = get_policy_for_user(request, policy_pk, change=True)
            except Http404:
                raise ValidationError(
                    {"access_policy": [f"No access policy with id {policy_pk}."]}
                ) from None
        result = actions.set_mailbox_policy(actor_for(request), mailbox, policy)
        return self._answer(mailbox, result)

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
        return self._answer(mailbox, result)
