"""Device access rules (*-ActiveSyncDeviceAccessRule) and their previews."""

import uuid
from collections import Counter

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet

from .. import access
from ..audit import Actor
from ..choices import AccessReason, Characteristic
from ..evaluation import rule_facts
from ..models import DeviceAccessRule, MobileDevice, OrgSettings
from .base import (
    ActionError,
    AuditAfter,
    ConflictError,
    Result,
    parse_access_level,
    parse_characteristic,
    rule_snapshot,
)
from .reevaluation import DevicePreview, preview, preview_devices, reevaluate


def clean_query_string(characteristic: str, query_string: str) -> str:
    """The query string as it is saved; ActionError, before anything is saved, for one
    that cannot be a rule (a version comparison that does not parse, for one)."""
    query_string = (query_string or "").strip()
    if not query_string:
        raise ActionError("The query string must not be empty.")
    try:
        comparison = access.parse_version_query(characteristic, query_string)
    except access.QueryStringError as e:
        raise ActionError(str(e)) from None
    if comparison is not None:
        query_string = str(comparison)  # "ios<17" is saved as "ios < 17": one rule, one key
    return query_string


def _clean_rule(characteristic: str, query_string: str, access_level: str) -> tuple[str, str, str]:
    characteristic = parse_characteristic(characteristic)
    access_level = parse_access_level(access_level)
    query_string = clean_query_string(characteristic, query_string)
    if len(query_string) > 256:
        raise ActionError("The query string is limited to 256 characters.")
    return characteristic, query_string, access_level


def _duplicate(characteristic: str, query_string: str, exclude_pk=None) -> None:
    qs = DeviceAccessRule.objects.filter(
        characteristic=characteristic, query_key=query_string.lower()
    )
    if exclude_pk is not None:
        qs = qs.exclude(pk=exclude_pk)
    if qs.exists():
        raise ConflictError(
            f"A rule for {characteristic} {query_string!r} already exists; edit that rule instead."
        )


_COLUMN = {
    Characteristic.USER_AGENT: "user_agent",
    Characteristic.DEVICE_OS: "device_os",
    Characteristic.DEVICE_MODEL: "device_model",
    Characteristic.DEVICE_TYPE: "device_type",
}
_MODEL_OR_OS = (Characteristic.DEVICE_MODEL, Characteristic.DEVICE_OS)


def _matching(characteristic: str, query_string: str) -> Q | None:
    """Every device a rule could match, as a filter PostgreSQL can run (None: any device).

    A superset: the engine still decides each device. Adding, changing or removing
    a rule can only move the devices it matches (before or after): a change to
    the Outlook rule need not re-plan a million devices to release 100,000.
    """
    column = _COLUMN.get(characteristic)
    if column is None or not query_string.isascii():
        return None  # Unicode case mapping: SQL's and Python's could differ; ask all
    comparison = access.parse_version_query_or_none(characteristic, query_string)
    if comparison is not None:
        # The engine reads a version only after the family's words (UserAgent: the
        # product name and its "/"): every device it can match holds them.
        if characteristic == Characteristic.USER_AGENT:
            return Q(**{f"{column}__icontains": f"{comparison.family}/"})
        match = Q()
        for word in comparison.family.split():
            match &= Q(**{f"{column}__icontains": word})
        return match
    if "*" not in query_string:
        return Q(**{f"{column}__iexact": query_string})
    head, *middle, tail = query_string.split("*")
    match = Q()
    if head:
        match &= Q(**{f"{column}__istartswith": head})
    if tail:
        match &= Q(**{f"{column}__iendswith": tail})
    for part in middle:
        if part:
            match &= Q(**{f"{column}__icontains": part})
    return match if match else None  # "*" alone matches every device


def _has_model_or_os_rules() -> bool:
    return DeviceAccessRule.objects.filter(characteristic__in=_MODEL_OR_OS).exists()


def _scope(changed: list[tuple[str, str]], discovery_changes: bool, decided_by=None) -> QuerySet:
    """The devices a change of these rules can move.

    Those the rules match, before and after, and those the rule decided
    (`decided_by`: a filter); and the devices without their DeviceInformation
    when the first DeviceModel or DeviceOS rule comes or the last one goes (the
    engine's discovery step depends on whether any exists).
    """
    scope = Q(device_info_received=False) if discovery_changes else Q(pk__in=[])
    if decided_by is not None:
        scope |= decided_by
    for characteristic, query_string in changed:
        match = _matching(characteristic, query_string)
        if match is None:
            return MobileDevice.objects.all()
        scope |= match
    return MobileDevice.objects.filter(scope)


def _bump_rules_version() -> None:
    """Tell every gate process to recompile its rules: a fresh token, never a repeat."""
    OrgSettings.load()
    OrgSettings.objects.filter(pk=1).update(rules_version=uuid.uuid4().hex)


def _rules_with(rule: access.Rule, without_pk=None) -> access.RuleSet:
    others = [
        rule_facts(r)
        for r in DeviceAccessRule.objects.all()
        if without_pk is None or r.pk != without_pk
    ]
    return access.RuleSet([*others, rule])


def preview_rule(
    *,
    characteristic: str,
    query_string: str,
    access_level: str,
    rule: DeviceAccessRule | None = None,
) -> Counter:
    """What saving this rule (new, or replacing `rule`) would do to existing devices."""
    scope, rules = _rule_change(characteristic, query_string, access_level, rule)
    return preview(scope, rules=rules)


def preview_rule_devices(
    *,
    characteristic: str,
    query_string: str,
    access_level: str,
    rule: DeviceAccessRule | None = None,
    first: int = 20,
) -> DevicePreview:
    """preview_rule, naming the devices that would change state (the first few, and all)."""
    scope, rules = _rule_change(characteristic, query_string, access_level, rule)
    return preview_devices(scope, rules=rules, first=first)


def preview_rule_removal_devices(rule: DeviceAccessRule, first: int = 20) -> DevicePreview:
    scope, rules = _rule_removal(rule)
    return preview_devices(scope, rules=rules, first=first)


def _rule_change(characteristic, query_string, access_level, rule):
    """(the devices a new or changed rule can move, the rules as they would be)."""
    characteristic, query_string, access_level = _clean_rule(
        characteristic, query_string, access_level
    )
    candidate = access.Rule(
        id=rule.pk if rule else -1,
        characteristic=characteristic,
        query_string=query_string,
        access_level=access_level,
    )
    rules = _rules_with(candidate, rule.pk if rule else None)
    changed = [(characteristic, query_string)]
    if rule is not None:
        changed.append((rule.characteristic, rule.query_string))
    scope = _scope(changed, rules.has_model_or_os_rules != _has_model_or_os_rules())
    return scope, rules


def preview_rule_removal(rule: DeviceAccessRule) -> Counter:
    scope, rules = _rule_removal(rule)
    return preview(scope, rules=rules)


def _rule_removal(rule: DeviceAccessRule):
    rules = access.RuleSet(rule_facts(r) for r in DeviceAccessRule.objects.exclude(pk=rule.pk))
    scope = _scope(
        [(rule.characteristic, rule.query_string)],
        rules.has_model_or_os_rules != _has_model_or_os_rules(),
    )
    return scope, rules


@transaction.atomic
def create_rule(
    actor: Actor, *, characteristic: str, query_string: str, access_level: str
) -> Result:
    characteristic, query_string, access_level = _clean_rule(
        characteristic, query_string, access_level
    )
    _duplicate(characteristic, query_string)
    model_or_os = _has_model_or_os_rules()
    try:
        with transaction.atomic():
            rule = DeviceAccessRule.objects.create(
                characteristic=characteristic,
                query_string=query_string,
                access_level=access_level,
                created_by_id=actor.user_id,
            )
    except IntegrityError:
        raise ConflictError(
            f"A rule for {characteristic} {query_string!r} already exists."
        ) from None
    _bump_rules_version()
    audit = AuditAfter(
        actor, f"Rule {rule} created", action="rule.create", obj=rule, after=rule_snapshot(rule)
    )
    scope = _scope([(characteristic, query_string)], model_or_os != _has_model_or_os_rules())
    transitions = reevaluate(scope, audit)
    return Result(rule, audit(), transitions)


@transaction.atomic
def update_rule(
    actor: Actor,
    rule: DeviceAccessRule,
    *,
    characteristic: str | None = None,
    query_string: str | None = None,
    access_level: str | None = None,
) -> Result:
    rule = DeviceAccessRule.objects.select_for_update().get(pk=rule.pk)
    before = rule_snapshot(rule)
    was = [(rule.characteristic, rule.query_string)]
    model_or_os = _has_model_or_os_rules()
    characteristic, query_string, access_level = _clean_rule(
        characteristic if characteristic is not None else rule.characteristic,
        query_string if query_string is not None else rule.query_string,
        access_level if access_level is not None else rule.access_level,
    )
    _duplicate(characteristic, query_string, exclude_pk=rule.pk)
    rule.characteristic, rule.query_string, rule.access_level = (
        characteristic,
        query_string,
        access_level,
    )
    rule.save()
    _bump_rules_version()
    audit = AuditAfter(
        actor,
        f"Rule {rule} changed",
        action="rule.update",
        obj=rule,
        before=before,
        after=rule_snapshot(rule),
    )
    scope = _scope(
        [*was, (characteristic, query_string)],
        model_or_os != _has_model_or_os_rules(),
        decided_by=Q(access_rule=rule.pk),
    )
    transitions = reevaluate(scope, audit)
    return Result(rule, audit(), transitions)


@transaction.atomic
def delete_rule(actor: Actor, rule: DeviceAccessRule) -> Result:
    rule = DeviceAccessRule.objects.select_for_update().get(pk=rule.pk)
    before = rule_snapshot(rule)
    was = [(rule.characteristic, rule.query_string)]
    model_or_os = _has_model_or_os_rules()
    audit = AuditAfter(
        actor,
        f"Rule {rule} removed",
        action="rule.delete",
        object_type="DeviceAccessRule",
        object_id=str(rule.pk),
        object_repr=str(rule),
        before=before,
    )
    rule.delete()
    _bump_rules_version()
    # The devices it decided now have no rule (SET NULL) but still its reason.
    decided = Q(access_state_reason=AccessReason.DEVICE_RULE, access_rule__isnull=True)
    scope = _scope(was, model_or_os != _has_model_or_os_rules(), decided_by=decided)
    transitions = reevaluate(scope, audit)
    return Result(None, audit(), transitions)
