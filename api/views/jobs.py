"""Rule change jobs: the progress of a rule change too big for one request (the page
/jobs/<id>/). Organization Management sees every job, anyone else the jobs they asked for."""

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, viewsets
from rest_framework.response import Response

from devices.models import RuleChangeJob
from devices.permissions import get_job_for_user, jobs_for_user

from ..filters import RuleChangeJobFilterSet
from ..serializers import RuleChangeJobSerializer

TAGS = ["rules"]


@extend_schema_view(
    list=extend_schema(
        summary="List rule change jobs, newest first",
        description="Organization Management sees every job; anyone else the jobs they asked for.",
        tags=TAGS,
    ),
    retrieve=extend_schema(
        summary="One rule change job: status, elapsed time, outcome",
        description="Poll it while `finished` is false: `message` says what the change did "
        "when `status` is done, `error` why nothing changed when it failed.",
        tags=TAGS,
    ),
)
class RuleChangeJobViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = RuleChangeJobSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = RuleChangeJobFilterSet
    lookup_value_converter = "int"
    queryset = RuleChangeJob.objects.none()  # for the schema; get_queryset is the real one

    def get_queryset(self):
        return jobs_for_user(self.request.user).order_by("-created_at", "-id")

    def retrieve(self, request, pk=None):
        return Response(RuleChangeJobSerializer(get_job_for_user(request, pk)).data)
