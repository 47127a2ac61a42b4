"""Access policies (the Policies page; get/new/set/remove-access-policy): a default access
level for part of the organisation. Both staff roles read them; Organization Management
creates, changes and deletes them. Every write answers with what it did to the devices."""

from django.db.models import Count, Q
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response

from devices import actions
from devices.models import AccessPolicy
from devices.permissions import get_policy_for_user

from ..filters import AccessPolicyFilterSet
from ..permissions import PoliciesPermission
from ..serializers import (
    AccessPolicyChangeSerializer,
    AccessPolicyRefSerializer,
    AccessPolicyRemovalSerializer,
    AccessPolicySerializer,
    AccessPolicyWriteSerializer,
    change_summary,
)
from .common import actor_for

TAGS = ["access policies"]


def policies():
    return AccessPolicy.objects.annotate(
        mailbox_count=Count("mailboxes", distinct=True),
        member_count=Count(
            "mailboxes", filter=Q(mailboxes__access_policy_pinned=True), distinct=True
        ),
    ).order_by("priority", "name", "id")


@extend_schema_view(
    list=extend_schema(
        summary="List access policies",
        description="Lowest priority number first: the order in which they apply.",
        tags=TAGS,
    ),
    retrieve=extend_schema(summary="One access policy", tags=TAGS),
)
class AccessPolicyViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = AccessPolicySerializer
    permission_classes = [PoliciesPermission]
    filter_backends = [DjangoFilterBackend]
    filterset_class = AccessPolicyFilterSet
    lookup_value_converter = "int"
    queryset = AccessPolicy.objects.none()  # for the schema; get_queryset is the real one

    def get_queryset(self):
        return policies()

    def retrieve(self, request, pk=None):
        policy = get_policy_for_user(request, pk)
        return Response(AccessPolicySerializer(policies().get(pk=policy.pk)).data)

    def _answer(self, result, code=status.HTTP_200_OK):
        policy = AccessPolicySerializer(policies().get(pk=result.obj.pk)).data
        return Response({"access_policy": policy, **change_summary(result)}, status=code)

    @extend_schema(
        summary="Create an access policy",
        description="The mailboxes it covers are re-evaluated; the answer says how many "
        "devices changed state. A policy of the same name (any case) is a 409.",
        tags=TAGS,
        request=AccessPolicyWriteSerializer,
        responses={201: AccessPolicyChangeSerializer},
    )
    def create(self, request):
        serializer = AccessPolicyWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = actions.create_policy(actor_for(request), **serializer.validated_data)
        return self._answer(result, status.HTTP_201_CREATED)

    def _update(self, request, pk, *, partial: bool):
        policy = get_policy_for_user(request, pk, change=True)
        serializer = AccessPolicyWriteSerializer(data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        values = dict(serializer.validated_data)
        if not partial:  # a replacement: lists not given are emptied
            values.setdefault("domains", [])
            values.setdefault("directory_groups", [])
            values.setdefault("priority", 100)
        result = actions.update_policy(actor_for(request), policy, **values)
        return self._answer(result)

    @extend_schema(
        summary="Replace an access policy",
        description="Domains and directory groups not given are emptied; the priority "
        "not given is 100. The mailboxes it covered and covers are re-evaluated.",
        tags=TAGS,
        request=AccessPolicyWriteSerializer,
        responses=AccessPolicyChangeSerializer,
    )
    def update(self, request, pk=None):
        return self._update(request, pk, partial=False)

    @extend_schema(
        summary="Change some of an access policy's fields",
        description="A list given (domains, directory_groups) replaces the old one.",
        tags=TAGS,
        request=AccessPolicyWriteSerializer(partial=True),
        responses=AccessPolicyChangeSerializer,
    )
    def partial_update(self, request, pk=None):
        return self._update(request, pk, partial=True)

    @extend_schema(
        summary="Delete an access policy",
        description="Its mailboxes follow their domain's policy or the organisation default "
        "again; the answer says how many devices changed state.",
        tags=TAGS,
        responses={200: AccessPolicyRemovalSerializer},
    )
    def destroy(self, request, pk=None):
        policy = get_policy_for_user(request, pk, change=True)
        before = AccessPolicyRefSerializer(policy).data
        result = actions.delete_policy(actor_for(request), policy)
        return Response({"access_policy": before, **change_summary(result)})
