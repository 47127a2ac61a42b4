"""Scoped access policies and organisation-wide DeviceIds.

Exchange has one default access level for the whole organisation. An access
policy gives part of it another default: mailboxes join by explicit
membership (pinned) or by the domain of their primary SMTP address; among
domain policies the lowest priority number wins. The resolved policy is kept
on the mailbox, so the decision engine reads it like any other column.
"""

import re

from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from ..audit import Actor
from ..models import AccessPolicy, Mailbox, MobileDevice, OrgDeviceId
from .base import (
    ActionError,
    AuditAfter,
    ConflictError,
    Result,
    clean_device_id,
    lock,
    parse_access_level,
)
from .reevaluation import dry_run, reevaluate

_DOMAIN_RE = re.compile(r"(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")


def policy_snapshot(policy: AccessPolicy) -> dict:
    return {
        "name": policy.name,
        "default_access_level": policy.default_access_level,
        "domains": list(policy.domains),
        "directory_groups": list(policy.directory_groups),
        "priority": policy.priority,
    }


def _clean_domains(domains) -> list[str]:
    cleaned = []
    for domain in domains or ():
        domain = domain.strip().lower().lstrip("@")
        if not _DOMAIN_RE.fullmatch(domain):
            raise ActionError(f"{domain!r} is not a valid mail domain.")
        if domain not in cleaned:
            cleaned.append(domain)
    return cleaned


def _clean_groups(groups) -> list[str]:
    """Directory group DNs, lower-cased: "cn=sales,ou=groups,dc=example,dc=org"."""
    cleaned = []
    for dn in groups or ():
        dn = " ".join((dn or "").split()).lower()
        if not dn or len(dn) > 512 or "=" not in dn or any(ord(c) < 32 for c in dn):
            raise ActionError(f"{dn!r} is not a directory group DN (cn=...,dc=...).")
        if dn not in cleaned:
            cleaned.append(dn)
    return cleaned


def resolve_policies(mailboxes: QuerySet) -> None:
    """Give each unpinned mailbox in scope the policy that applies (set-based): by
    the domain of its address or by its directory groups, lowest priority first."""
    unpinned = mailboxes.filter(access_policy_pinned=False)
    unpinned.update(access_policy=None)
    # Lowest priority number last, so that it wins.
    for policy in AccessPolicy.objects.order_by("-priority", "-name"):
        for domain in policy.domains:
            unpinned.filter(primary_smtp_address__iendswith="@" + domain).update(
                access_policy=policy
            )
        if policy.directory_groups:
            members = Mailbox.objects.filter(
                directory_groups__dn_key__in=policy.directory_groups
            ).values("pk")
            unpinned.filter(pk__in=members).update(access_policy=policy)


def _apply(actor: Actor, what: str, scope: QuerySet, **event_fields) -> Result:
    resolve_policies(scope)
    audit = AuditAfter(actor, what, **event_fields)
    transitions = reevaluate(MobileDevice.objects.filter(mailbox__in=scope), audit)
    return Result(event=audit(), transitions=transitions)


@transaction.atomic
def create_policy(
    actor: Actor,
    *,
    name: str,
    default_access_level: str,
    domains=(),
    priority: int = 100,
    directory_groups=(),
) -> Result:
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ActionError("A policy needs a name of 1 to 100 characters.")
    if AccessPolicy.objects.filter(name__iexact=name).exists():
        raise ConflictError(f"An access policy named {name!r} already exists.")
    if not 0 <= priority <= 10000:
        raise ActionError("The priority must be between 0 and 10000.")
    try:
        with transaction.atomic():
            policy = AccessPolicy.objects.create(
                name=name,
                default_access_level=parse_access_level(default_access_level),
                domains=_clean_domains(domains),
                directory_groups=_clean_groups(directory_groups),
                priority=priority,
            )
    except IntegrityError:
        raise ConflictError(f"An access policy named {name!r} already exists.") from None
    result = _apply(
        actor,
        f"Access policy {policy} created",
        Mailbox.objects.all(),
        action="policy.create",
        obj=policy,
        after=policy_snapshot(policy),
    )
    result.obj = policy
    return result


@transaction.atomic
def update_policy(
    actor: Actor,
    policy: AccessPolicy,
    *,
    name: str | None = None,
    default_access_level: str | None = None,
    domains=None,
    priority: int | None = None,
    directory_groups=None,
) -> Result:
    policy = AccessPolicy.objects.select_for_update().get(pk=policy.pk)
    before = policy_snapshot(policy)
    if name is not None:
        name = name.strip()
        if not name or len(name) > 100:
            raise ActionError("A policy needs a name of 1 to 100 characters.")
        if AccessPolicy.objects.filter(name__iexact=name).exclude(pk=policy.pk).exists():
            raise ConflictError(f"An access policy named {name!r} already exists.")
        policy.name = name
    if default_access_level is not None:
        policy.default_access_level = parse_access_level(default_access_level)
    if domains is not None:
        policy.domains = _clean_domains(domains)
    if directory_groups is not None:
        policy.directory_groups = _clean_groups(directory_groups)
    if priority is not None:
        if not 0 <= priority <= 10000:
            raise ActionError("The priority must be between 0 and 10000.")
        policy.priority = priority
    policy.save()
    result = _apply(
        actor,
        f"Access policy {policy} changed",
        Mailbox.objects.all(),
        action="policy.update",
        obj=policy,
        before=before,
        after=policy_snapshot(policy),
    )
    result.obj = policy
    return result


@transaction.atomic
def delete_policy(actor: Actor, policy: AccessPolicy) -> Result:
    policy = AccessPolicy.objects.select_for_update().get(pk=policy.pk)
    before = policy_snapshot(policy)
    members = list(policy.mailboxes.values_list("pk", flat=True))
    audit = AuditAfter(
        actor,
        f"Access policy {policy} removed",
        action="policy.delete",
        object_type="AccessPolicy",
        object_id=str(policy.pk),
        object_repr=str(policy),
        before=before,
    )
    Mailbox.objects.filter(pk__in=members).update(access_policy_pinned=False)
    policy.delete()
    scope = Mailbox.objects.filter(pk__in=members)
    resolve_policies(scope)
    transitions = reevaluate(MobileDevice.objects.filter(mailbox__in=scope), audit)
    return Result(event=audit(), transitions=transitions)


@transaction.atomic
def set_mailbox_policy(actor: Actor, mailbox: Mailbox, policy: AccessPolicy | None) -> Result:
    """Make the mailbox an explicit member of a policy; None: follow its domain again."""
    mailbox = Mailbox.objects.select_for_update().get(pk=mailbox.pk)
    before = {
        "access_policy": str(mailbox.access_policy or ""),
        "pinned": mailbox.access_policy_pinned,
    }
    mailbox.access_policy = policy
    mailbox.access_policy_pinned = policy is not None
    mailbox.save(update_fields=["access_policy", "access_policy_pinned"])
    scope = Mailbox.objects.filter(pk=mailbox.pk)
    what = (
        f"Mailbox {mailbox.alias} is a member of access policy {policy.name}"
        if policy
        else f"Mailbox {mailbox.alias} follows its domain's access policy"
    )
    result = _apply(
        actor,
        what,
        scope,
        action="mailbox.policy",
        obj=mailbox,
        before=before,
        after={"access_policy": str(policy or ""), "pinned": policy is not None},
    )
    mailbox.refresh_from_db()
    result.obj = mailbox
    return result


@transaction.atomic
def add_org_device_id(actor: Actor, device_id: str, *, note: str = "") -> Result:
    """Allow a DeviceId for every mailbox (loan devices)."""
    device_id = clean_device_id(device_id)
    taken = ConflictError(f"DeviceId {device_id} is already allowed organisation-wide.")
    if OrgDeviceId.objects.filter(device_key=device_id.lower()).exists():
        raise taken
    try:
        with transaction.atomic():  # a simultaneous addition wins the unique key: told so
            entry = OrgDeviceId.objects.create(device_id=device_id, note=(note or "")[:200])
    except IntegrityError:
        raise taken from None
    audit = AuditAfter(
        actor,
        f"DeviceId {device_id} allowed for every mailbox",
        action="org_device_id.add",
        obj=entry,
        after={"device_id": device_id, "note": entry.note},
    )
    transitions = reevaluate(MobileDevice.objects.filter(device_key=entry.device_key), audit)
    return Result(entry, audit(), transitions)


@transaction.atomic
def remove_org_device_id(actor: Actor, device_id: str) -> Result:
    device_id = clean_device_id(device_id)
    # Locked: of simultaneous removals, one removes and audits, the others find nothing.
    entry = lock(OrgDeviceId.objects.filter(device_key=device_id.lower())).first()
    if entry is None:
        raise ActionError(f"DeviceId {device_id} is not on the organisation-wide list.")
    audit = AuditAfter(
        actor,
        f"DeviceId {entry.device_id} no longer allowed for every mailbox",
        action="org_device_id.remove",
        object_type="OrgDeviceId",
        object_id=str(entry.pk),
        object_repr=str(entry),
        before={"device_id": entry.device_id, "note": entry.note},
    )
    key = entry.device_key
    entry.delete()
    transitions = reevaluate(MobileDevice.objects.filter(device_key=key), audit)
    return Result(None, audit(), transitions)


def preview_policy(actor: Actor, policy: AccessPolicy | None, *, first: int = 20, **values):
    """What creating (policy None) or changing a policy would move: a rolled-back dry run."""
    if policy is None:
        return dry_run(lambda: create_policy(actor, **values), first=first)
    return dry_run(lambda: update_policy(actor, policy, **values), first=first)


def preview_policy_removal(actor: Actor, policy: AccessPolicy, *, first: int = 20):
    """What deleting a policy would move: its mailboxes fall back, their devices decided again."""
    return dry_run(lambda: delete_policy(actor, policy), first=first)
