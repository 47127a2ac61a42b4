"""POST /api/v1/access-check: what the gate would decide for a device, recording nothing.

The engine (devices.access.decide) is fed exactly as the gate feeds it, from
the mailbox's lists, the rules and the org settings; the device is the
payload, as on its first request now.
"""

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from devices import access
from devices.evaluation import load_rules, mailbox_facts, org_facts
from devices.models import AccessPolicy, AccessReason, AccessState, Mailbox, OrgSettings

from ..permissions import IsStaff
from ..serializers import AccessCheckSerializer, AccessDecisionSerializer, RuleRefSerializer


class AccessCheckView(APIView):
    permission_classes = [IsStaff]

    @extend_schema(
        operation_id="access_check",
        summary="What would the gate decide for this device?",
        description="Evaluates a hypothetical device against the mailbox's lists, the rules "
        "and the organisation settings, as on its first request now. Nothing is recorded.",
        tags=["devices"],
        request=AccessCheckSerializer,
        responses=AccessDecisionSerializer,
    )
    def post(self, request):
        serializer = AccessCheckSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        mailbox = Mailbox.objects.by_identity(data["mailbox"])
        if mailbox is None:
            raise ValidationError({"mailbox": [f"No mailbox {data['mailbox']!r}."]})
        org = OrgSettings.objects.filter(pk=1).first() or OrgSettings()  # load() would write
        device = access.DeviceFacts(
            device_id=data["device_id"],
            device_type=data["device_type"],
            device_model=data["device_model"],
            device_os=data["device_os"],
            user_agent=data["user_agent"],
            info_received=data["device_info_received"],
            first_seen=None,
        )
        facts = org_facts(org)
        decision = access.decide(
            mailbox_facts(mailbox), device, load_rules(), facts, timezone.now()
        )
        return Response(
            {
                "mailbox": mailbox.alias,
                "access_state": decision.state,
                "access_state_reason": decision.reason,
                "rule": RuleRefSerializer(decision.rule).data if decision.rule else None,
                "explanation": explain(decision, mailbox, org),
            }
        )


def explain(decision: access.Decision, mailbox, org) -> str:
    state, reason = decision.state, decision.reason
    if reason == AccessReason.POLICY:
        return f"Blocked: ActiveSync is turned off for the mailbox {mailbox.alias}."
    if reason == AccessReason.INDIVIDUAL:
        listed = "allowed" if state == AccessState.ALLOWED else "blocked"
        return f"{state}: the DeviceId is on the {listed} list of the mailbox {mailbox.alias}."
    if reason == AccessReason.DEVICE_RULE and decision.rule is not None:
        r = decision.rule
        return f'{state} by the rule "{r.query_string}" on {r.characteristic} ({r.access_level}).'
    if state == AccessState.DEVICE_DISCOVERY:
        return (
            "Device discovery: the device has not reported its model and OS yet, and the "
            f"rules need them; it is decided when it does (within "
            f"{org.discovery_window_minutes} minutes)."
        )
    policy = AccessPolicy.objects.filter(pk=decision.policy_id).first()
    if policy is not None:
        return (
            f"{state} by the access policy {policy.name} of the mailbox {mailbox.alias} "
            f"(default access level {policy.default_access_level}); no list entry or rule "
            "matches."
        )
    return (
        f"{state} by the organisation's default access level ({org.default_access_level}); "
        "no list entry or rule matches."
    )
