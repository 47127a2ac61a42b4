"""Feed the decision engine from the database, set-based. Reads only.

Re-evaluating a million partnerships one by one would take minutes. Instead we
ask the database for the distinct *profiles* among the devices in scope (every
input the engine looks at, with the mailbox lists reduced to "this device is on
the blocked / allowed list"), decide each profile once with devices.access, and
group the profiles by decision. devices.actions then issues one UPDATE per
decision. The engine stays the only place where the decision order lives.

The database names each profile with a key it computes itself (every profile
column, length-prefixed, so that no two profiles share a key), and the devices
that must move are found in one pass: those whose key joined with their
current state, reason, rule and policy is not one of the decided ones. Both
tests are hashed IN lists; an OR of the profiles' columns, one query per
decision, scanned a million rows once per decision, minutes in all (bench/).
"""

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import (
    BooleanField,
    Case,
    CharField,
    Count,
    Exists,
    F,
    FilteredRelation,
    Func,
    IntegerField,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce, Length

from . import access
from .models import (
    DeviceAccessRule,
    DeviceIdList,
    MobileDevice,
    OrgDeviceId,
    OrgSettings,
)

PROFILE_FIELDS = (
    "mailbox__directory_disabled",
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


def org_facts(org: OrgSettings, allowed_ids: frozenset[str] | None = None) -> access.OrgFacts:
    """The organisation's facts; `allowed_ids` in place of reading the whole org list."""
    if allowed_ids is None:
        allowed_ids = frozenset(OrgDeviceId.objects.values_list("device_key", flat=True))
    return access.OrgFacts(
        default_access_level=org.default_access_level,
        discovery_window=timedelta(minutes=org.discovery_window_minutes),
        allowed_ids=allowed_ids,
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
        account_disabled=mailbox.directory_disabled,
        allowed_ids=frozenset(allowed),
        blocked_ids=frozenset(blocked),
        policy_id=policy.pk if policy else None,
        policy_level=policy.default_access_level if policy else None,
    )


class _Joined(Func):
    """Strings joined: one CONCAT() on PostgreSQL, a flat || chain on SQLite.

    Django's Concat nests a pair per argument, and SQLite's parser overflows on
    thirty of them. Every argument must be a string, never NULL (see _text).
    """

    function = "CONCAT"
    output_field = CharField()

    def as_sqlite(self, compiler, connection, **extra_context):
        return self.as_sql(
            compiler, connection, template="(%(expressions)s)", arg_joiner=" || ", **extra_context
        )


def _text(name: str):
    return Coalesce(Cast(F(name), CharField()), Value(""))


# Profile columns any string can be in: the key gives their length, so no value can
# pass for two. The others (flags, ids, levels, "listed") never hold a "|".
_FREE_TEXT = frozenset({"device_type", "device_model", "device_os", "user_agent"})


def _key(*names: str) -> _Joined:
    """The columns as one string, unambiguous: distinct profiles, distinct keys."""
    parts = []
    for name in names:
        if name in _FREE_TEXT:
            parts += [Cast(Length(F(name)), CharField()), Value(":"), F(name)]
        else:
            parts.append(_text(name))
        parts.append(Value("|"))
    return _Joined(*parts)


def with_profile(devices: QuerySet, org: access.OrgFacts, now: datetime) -> QuerySet:
    """Annotate devices with the profile columns the engine needs, and the profile's key.

    `listed` joins the mailbox's list entry for the device's key (at most one:
    a DeviceId is on one list of a mailbox at most) rather than asking an EXISTS
    per list per device. `state_key` is the profile key followed by the device's
    current state, reason, rule and policy: a device whose state_key is its
    decision's (Plan.held_key) stays as it is.
    """
    entry = FilteredRelation(
        "mailbox__device_ids", condition=Q(mailbox__device_ids__device_key=F("device_key"))
    )
    on_org_list = Exists(OrgDeviceId.objects.filter(device_key=OuterRef("device_key")))
    return (
        devices.annotate(list_entry=entry)
        .annotate(
            listed=Coalesce(
                F("list_entry__list"),
                Case(When(on_org_list, then=Value("org")), default=Value("")),
                output_field=CharField(),
            ),
            in_window=Case(
                When(first_seen__gt=now - org.discovery_window, then=Value(True)),
                default=Value(False),
                output_field=BooleanField(),
            ),
        )
        .annotate(profile_key=_key(*PROFILE_FIELDS))
        .annotate(
            state_key=_Joined(
                F("profile_key"),
                _text("access_state"),
                Value("|"),
                _text("access_state_reason"),
                Value("|"),
                _text("access_rule"),
                Value("|"),
                _text("access_policy"),
            ),
        )
    )


def decide_profile(
    profile: dict, rules: access.RuleSet, org: access.OrgFacts, now: datetime
) -> access.Decision:
    listed = profile["listed"]
    placeholder = frozenset({_PLACEHOLDER_ID})
    mailbox = access.MailboxFacts(
        activesync_enabled=profile["mailbox__activesync_enabled"],
        account_disabled=profile["mailbox__directory_disabled"],
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


@dataclass(frozen=True)
class Group:
    """The devices in scope that share a profile and a current state, reason, rule, policy."""

    state_key: str
    profile_key: str
    state: str  # their current access state
    device_type: str
    count: int
    decision: access.Decision  # what the engine decides for their profile

    @property
    def holds_decision(self) -> bool:
        d = self.decision
        held = f"{self.profile_key}{d.state}|{d.reason}|{d.rule_id or ''}|{d.policy_id or ''}"
        return self.state_key == held


@dataclass
class Plan:
    """The decision for every profile in scope, and the groups of devices that must move."""

    annotated: QuerySet  # the scope, with_profile()
    moves: list[Group]  # the groups whose devices do not hold their decision

    def moving(self) -> Iterator[tuple[QuerySet, dict[str, access.Decision]]]:
        """(devices, their decision by state_key): together, every device that must move.

        Selected by state_key, and narrowed first by the plain columns the groups
        share (access state, DeviceType), which PostgreSQL finds through their
        indexes: releasing 100,000 quarantined Outlook devices reads those, not
        a million rows. One queryset on PostgreSQL; on SQLite as many as its
        bound-parameter limit needs. A device whose state changed since planning
        is not selected: whoever changed it decided it.
        """
        limit = connection.features.max_query_params
        size = max(1, (limit - 20) // 2) if limit else max(1, len(self.moves))
        for i in range(0, len(self.moves), size):
            chunk = self.moves[i : i + size]
            devices = self.annotated.filter(
                access_state__in=sorted({g.state for g in chunk}),
                device_type__in=sorted({g.device_type for g in chunk}),
                state_key__in=[g.state_key for g in chunk],
            )
            yield devices, {g.state_key: g.decision for g in chunk}


_FLAGS = frozenset(
    {
        "mailbox__directory_disabled",
        "mailbox__activesync_enabled",
        "device_info_received",
        "in_window",
    }
)


def _profile_key(state_key: str) -> str:
    """The profile key inside a state_key: all but the last four "|"-separated fields.

    state_key = profile_key (which ends in "|") + "state|reason|rule|policy",
    and those four never hold a "|".
    """
    return state_key.rsplit("|", 4)[0] + "|"


def plan(devices: QuerySet, rules: access.RuleSet, org: access.OrgFacts, now: datetime) -> Plan:
    """Decide every distinct profile in scope once; group the devices that must move.

    One pass, grouped by state_key (profile and current state): the groups are
    few, and within a group every column has one value, so MIN() gives it back
    (flags as 0/1: there is no MIN of a boolean).
    """
    annotated = with_profile(devices, org, now)
    columns = {
        f"c{i}": Min(Cast(F(name), IntegerField()) if name in _FLAGS else F(name))
        for i, name in enumerate(PROFILE_FIELDS)
    }
    decisions: dict[str, access.Decision] = {}
    moves = []
    groups = annotated.order_by().values("state_key")
    for row in groups.annotate(n=Count("pk"), state=Min("access_state"), **columns):
        profile_key = _profile_key(row["state_key"])
        decision = decisions.get(profile_key)
        if decision is None:
            profile = {name: row[f"c{i}"] for i, name in enumerate(PROFILE_FIELDS)}
            for name in _FLAGS:
                profile[name] = bool(profile[name])
            decision = decisions[profile_key] = decide_profile(profile, rules, org, now)
        group = Group(
            state_key=row["state_key"],
            profile_key=profile_key,
            state=row["state"],
            device_type=row[f"c{PROFILE_FIELDS.index('device_type')}"],
            count=row["n"],
            decision=decision,
        )
        if not group.holds_decision:
            moves.append(group)
    return Plan(annotated.order_by("pk"), moves)
