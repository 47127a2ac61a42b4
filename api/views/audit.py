"""The audit log (Search-AdminAuditLog): read-only, oldest first, cursor-paginated."""

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import viewsets
from rest_framework.filters import OrderingFilter

from devices.models import AuditEvent

from ..filters import AuditEventFilterSet
from ..pagination import AuditCursorPagination
from ..permissions import IsStaff
from ..serializers import AuditEventSerializer


@extend_schema_view(
    list=extend_schema(
        summary="Search the audit log",
        description="Oldest first; `ordering=-time` for newest first. Follow `next` to page.",
        tags=["audit"],
    ),
    retrieve=extend_schema(summary="One audit event", tags=["audit"]),
)
class AuditEventViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = AuditEventSerializer
    permission_classes = [IsStaff]
    pagination_class = AuditCursorPagination
    filter_backends = [DjangoFilterBackend, OrderingFilter]
    filterset_class = AuditEventFilterSet
    ordering_fields = ["time"]
    lookup_value_converter = "int"
    queryset = AuditEvent.objects.all()
