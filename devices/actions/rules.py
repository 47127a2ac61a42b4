"""Device access rules (*-ActiveSyncDeviceAccessRule) and their previews."""

import uuid
from collections import Counter

from django.db import IntegrityError, transaction

from .. import access
from ..audit import Actor
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
from .reevaluation import preview, reevaluate


def _clean_rule(characteristic: str, query_string: str, access_level: str) -> tuple[str, str, str]:
    characteristic = parse_characteristic(characteristic)
    access_level = parse_access_level(access_level)
    query_string = (query_string or "").strip()
    if not query_string:
        raise ActionError("The query string must not be empty.")
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
    characteristic, query_string, access_level = _clean_rule(
        characteristic, query_string, access_level
    )
    candidate = access.Rule(
        id=rule.pk if rule else -1,
        characteristic=characteristic,
        query_string=query_string,
        access_level=access_level,
    )
    return preview(
        MobileDevice.objects.all(), rules=_rules_with(candidate, rule.pk if rule else None)
    )


def preview_rule_removal(rule: DeviceAccessRule) -> Counter:
    rules = access.RuleSet(rule_facts(r) for r in DeviceAccessRule.objects.exclude(pk=rule.pk))
    return preview(MobileDevice.objects.all(), rules=rules)


@transaction.atomic
def create_rule(
    actor: Actor, *, characteristic: str, query_string: str, access_level: str
) -> Result:
    characteristic, query_string, access_level = _clean_rule(
        characteristic, query_string, access_level
    )
    _duplicate(characteristic, query_string)
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
    transitions = reevaluate(MobileDevice.objects.all(), audit)
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
    transitions = reevaluate(MobileDevice.objects.all(), audit)
    return Result(rule, audit(), transitions)


@transaction.atomic
def delete_rule(actor: Actor, rule: DeviceAccessRule) -> Result:
    rule = DeviceAccessRule.objects.select_for_update().get(pk=rule.pk)
    before = rule_snapshot(rule)
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
    transitions = reevaluate(MobileDevice.objects.all(), audit)
    return Result(None, audit(), transitions)
