"""Feed the decision engine from the database, set-based. Reads only.

Re-evaluating a million partnerships one by one would take minutes. Instead we
ask the database for the distinct *profiles* among the devices in scope (every
input the engine looks at, with the mailbox lists reduced to "this device is on
the blocked / allowed list"), decide each profile once with devices.access, and
group the profiles by decision. devices.actions then issues one UPDATE per
decision. The engine stays the only place where the decision order lives.
"""

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from django.db.models import (
    BooleanField,
    Case,
    CharField,
    Exists,
    OuterRef,
    Q,
    QuerySet,
    Value,
    When,
)

from . import access
from .models import (
    DeviceAccessRule,
    DeviceIdList,
    MailboxDeviceId,
    MobileDevice,
    OrgDeviceId,
    OrgSettings,
)

PROFILE_FIELDS = (
    "mailbox__activesync_enabled",
    "mailbox__access_policy_id",
    "mailbox__access_policy__default_access_level",
    "listed",
    "device_type",
    "device_model",
    "device_os",
    "user_agent",
    "device_info_received",
    "in_window",
)
_PLACEHOLDER_ID = "device"
_PROFILES_PER_OUTCOME = 90  # 10 columns each: under SQLite's 999 bound parameters


def org_facts(org: OrgSettings) -> access.OrgFacts:
    return access.OrgFacts(
        default_access_level=org.default_access_level,
        discovery_window=timedelta(minutes=org.discovery_window_minutes),
        allowed_ids=frozenset(OrgDeviceId.objects.values_list("device_key", flat=True)),
    )


def rule_facts(rule: DeviceAccessRule) -> access.Rule:
    return access.Rule(
        id=rule.pk,
        characteristic=rule.characteristic,
        query_string=rule.query_string,
        access_level=rule.access_level,
    )


def load_rules() -> access.RuleSet:
    return access.RuleSet(rule_facts(r) for r in DeviceAccessRule.objects.all())


_compiled: tuple[str, access.RuleSet] | None = None


def current_rules(version: str) -> access.RuleSet:
    """The compiled rules for OrgSettings.rules_version, recompiled only when it moves."""
    global _compiled
    cached = _compiled
    if cached is None or cached[0] != version:
        cached = (version, load_rules())
        _compiled = cached
    return cached[1]


def device_facts(device: MobileDevice) -> access.DeviceFacts:
    return access.DeviceFacts(
        device_id=device.device_id,
        device_type=device.device_type,
        device_model=device.device_model,
        device_os=device.device_os,
        user_agent=device.user_agent,
        info_received=device.device_info_received,
        first_seen=device.first_seen,
    )


def mailbox_facts(mailbox) -> access.MailboxFacts:
    allowed, blocked = set(), set()
    for key, kind in mailbox.device_ids.values_list("device_key", "list"):
        (allowed if kind == DeviceIdList.ALLOWED else blocked).add(key)
    policy = mailbox.access_policy
    return access.MailboxFacts(
        activesync_enabled=mailbox.activesync_enabled,
        allowed_ids=frozenset(allowed),
        blocked_ids=frozenset(blocked),
        policy_id=policy.pk if policy else None,
        policy_level=policy.default_access_level if policy else None,
    )


def _listed(kind: str) -> Exists:
    return Exists(
        MailboxDeviceId.objects.filter(
            mailbox=OuterRef("mailbox"), device_key=OuterRef("device_key"), list=kind
        )
    )


def with_profile(devices: QuerySet, org: access.OrgFacts, now: datetime) -> QuerySet:
    """Annotate devices with the profile columns the engine needs."""
    return devices.annotate(
        listed=Case(
            When(_listed(DeviceIdList.BLOCKED), then=Value("blocked")),
            When(_listed(DeviceIdList.ALLOWED), then=Value("allowed")),
            When(
                Exists(OrgDeviceId.objects.filter(device_key=OuterRef("device_key"))),
                then=Value("org"),
            ),
            default=Value(""),
            output_field=CharField(),
        ),
        in_window=Case(
            When(first_seen__gt=now - org.discovery_window, then=Value(True)),
            default=Value(False),
            output_field=BooleanField(),
        ),
    )


def decide_profile(
    profile: dict, rules: access.RuleSet, org: access.OrgFacts, now: datetime
) -> access.Decision:
    listed = profile["listed"]
    placeholder = frozenset({_PLACEHOLDER_ID})
    mailbox = access.MailboxFacts(
        activesync_enabled=profile["mailbox__activesync_enabled"],
        allowed_ids=placeholder if listed == "allowed" else frozenset(),
        blocked_ids=placeholder if listed == "blocked" else frozenset(),
        policy_id=profile["mailbox__access_policy_id"],
        policy_level=profile["mailbox__access_policy__default_access_level"],
    )
    org = replace(org, allowed_ids=placeholder if listed == "org" else frozenset())
    device = access.DeviceFacts(
        device_id=_PLACEHOLDER_ID,
        device_type=profile["device_type"],
        device_model=profile["device_model"],
        device_os=profile["device_os"],
        user_agent=profile["user_agent"],
        info_received=profile["device_info_received"],
        first_seen=now if profile["in_window"] else now - org.discovery_window,
    )
    return access.decide(mailbox, device, rules, org, now)


@dataclass
class Outcome:
    """All devices in scope that the engine puts in one state, and which of them move."""

    decision: access.Decision
    match: Q  # selects, on a with_profile() queryset, the devices with this decision

    def unchanged(self) -> Q:
        d = self.decision
        rule = Q(access_rule=d.rule_id) if d.rule_id else Q(access_rule__isnull=True)
        policy = Q(access_policy=d.policy_id) if d.policy_id else Q(access_policy__isnull=True)
        return Q(access_state=d.state, access_state_reason=d.reason) & rule & policy


def plan(
    devices: QuerySet, rules: access.RuleSet, org: access.OrgFacts, now: datetime
) -> tuple[QuerySet, list[Outcome]]:
    """Decide every distinct profile in scope; one Outcome per distinct decision.

    A decision shared by many profiles is split into Outcomes of at most
    _PROFILES_PER_OUTCOME profiles: one OR of thousands of terms is more than
    SQLite parses (expression depth 1000).
    """
    annotated = with_profile(devices, org, now)
    groups: dict[access.Decision, list[Q]] = defaultdict(list)
    for profile in annotated.order_by().values(*PROFILE_FIELDS).distinct():
        decision = decide_profile(profile, rules, org, now)
        groups[decision].append(Q(**profile))
    outcomes = []
    for decision, profile_qs in groups.items():
        for i in range(0, len(profile_qs), _PROFILES_PER_OUTCOME):
            match = Q()
            for q in profile_qs[i : i + _PROFILES_PER_OUTCOME]:
                match |= q
            outcomes.append(Outcome(decision, match))
    return annotated, outcomes
