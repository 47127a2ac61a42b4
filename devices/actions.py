"""The one place that changes access state.

Every public function here runs in one transaction: it validates its input
(raising ActionError and changing nothing on bad input), makes the change,
re-evaluates the partnerships the change can affect set-based, records every
state change, writes one audit event, and hands the transitions to
devices.notify so that mails are queued in the same transaction. Views, CLI
verbs, API views and the gate all call these functions with an Actor.
"""

from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, connection, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from . import access, notify
from .audit import Actor, record
from .evaluation import load_rules, org_facts, plan, rule_facts
from .models import (
    AccessLevel,
    AccessReason,
    AccessState,
    AdminMailMode,
    AuditEvent,
    Characteristic,
    DeviceAccessRule,
    DeviceIdList,
    DeviceStateChange,
    Mailbox,
    MailboxDeviceId,
    MobileDevice,
    OrgSettings,
)

MAX_DEVICE_ID = 64
_CHUNK = 2000


class ActionError(Exception):
    """Bad input for an action: nothing was changed. The message is for people."""


class ConflictError(ActionError):
    """The thing to create already exists (a rule, an alias, an address, a login).

    The API answers it with 409 rather than 400; everyone else treats it as any
    ActionError.
    """


@dataclass(frozen=True)
class Transition:
    device_pk: int
    from_state: str
    to_state: str
    to_reason: str
    rule_id: int | None
    change_id: int | None = None  # the DeviceStateChange row: one transition, one id


@dataclass
class Result:
    """What an action did: the object, its audit event, the state changes."""

    obj: object = None
    event: AuditEvent | None = None
    transitions: list[Transition] = field(default_factory=list)
    count: int = 0

    def summary(self) -> Counter:
        return Counter((t.from_state, t.to_state) for t in self.transitions)


# ---------------------------------------------------------------------------
# validation helpers


def _choice(value: str, choices, what: str) -> str:
    for choice in choices:
        if value is not None and value.lower() == choice.value.lower():
            return choice.value
    allowed = ", ".join(c.value for c in choices)
    raise ActionError(f"Unknown {what} {value!r}: use one of {allowed}.")


def parse_access_level(value: str) -> str:
    return _choice(value, AccessLevel, "access level")


def parse_characteristic(value: str) -> str:
    return _choice(value, Characteristic, "characteristic")


def parse_access_state(value: str) -> str:
    return _choice(value, AccessState, "access state")


def _email(value: str) -> str:
    value = (value or "").strip()
    try:
        validate_email(value)
    except ValidationError:
        raise ActionError(f"{value!r} is not a valid e-mail address.") from None
    return value


def _device_id(value: str) -> str:
    value = (value or "").strip()
    if not value or len(value) > MAX_DEVICE_ID or not value.isprintable() or " " in value:
        raise ActionError(
            f"{value!r} is not a valid DeviceId (1 to {MAX_DEVICE_ID} characters, no spaces)."
        )
    return value


def device_snapshot(device: MobileDevice) -> dict:
    return {
        "mailbox": device.mailbox.alias,
        "device_id": device.device_id,
        "device_type": device.device_type,
        "device_model": device.device_model,
        "access_state": device.access_state,
        "access_state_reason": device.access_state_reason,
        "access_rule": device.access_rule_id,
    }


def mailbox_snapshot(mailbox: Mailbox) -> dict:
    lists = {DeviceIdList.ALLOWED: [], DeviceIdList.BLOCKED: []}
    for device_id, kind in mailbox.device_ids.order_by("device_key").values_list(
        "device_id", "list"
    ):
        lists[kind].append(device_id)
    return {
        "alias": mailbox.alias,
        "primary_smtp_address": mailbox.primary_smtp_address,
        "display_name": mailbox.display_name,
        "activesync_enabled": mailbox.activesync_enabled,
        "allowed_device_ids": lists[DeviceIdList.ALLOWED],
        "blocked_device_ids": lists[DeviceIdList.BLOCKED],
    }


def rule_snapshot(rule: DeviceAccessRule) -> dict:
    return {
        "characteristic": rule.characteristic,
        "query_string": rule.query_string,
        "access_level": rule.access_level,
    }


def org_snapshot(org: OrgSettings) -> dict:
    return {
        "default_access_level": org.default_access_level,
        "admin_mail_recipients": list(org.admin_mail_recipients),
        "user_mail_insert": org.user_mail_insert,
        "discovery_window_minutes": org.discovery_window_minutes,
        "allow_health_probes": org.allow_health_probes,
        "send_user_mail": org.send_user_mail,
        "admin_mail_mode": org.admin_mail_mode,
        "admin_digest_minutes": org.admin_digest_minutes,
        "new_device_alert": org.new_device_alert,
    }


# ---------------------------------------------------------------------------
# re-evaluation


def _lock(qs: QuerySet) -> QuerySet:
    if connection.features.has_select_for_update:
        return qs.select_for_update(of=("self",))
    return qs


def reevaluate(
    scope: QuerySet,
    event: AuditEvent | None,
    *,
    rules: access.RuleSet | None = None,
    org: OrgSettings | None = None,
) -> list[Transition]:
    """Bring every device in scope to the state the engine decides now.

    One UPDATE per outcome (in id chunks), a history row per changed device,
    and the transitions handed to devices.notify. Call inside a transaction.
    """
    now = timezone.now()
    rules = rules if rules is not None else load_rules()
    org = org or OrgSettings.load()
    annotated, outcomes = plan(scope, rules, org_facts(org), now)
    transitions: list[Transition] = []
    for outcome in outcomes:
        d = outcome.decision
        moving = _lock(annotated.filter(outcome.match).exclude(outcome.unchanged()))
        rows = list(
            moving.values_list(
                "pk", "access_state", "access_state_reason", "device_id", "mailbox__alias"
            )
        )
        if not rows:
            continue
        history = DeviceStateChange.objects.bulk_create(
            [
                DeviceStateChange(
                    device_id=pk,
                    device_repr=f"{device_id} ({alias})",
                    time=now,
                    from_state=state,
                    from_reason=reason,
                    to_state=d.state,
                    to_reason=d.reason,
                    rule_id=d.rule_id,
                    event=event,
                )
                for pk, state, reason, device_id, alias in rows
            ],
            batch_size=_CHUNK,
        )
        pks = [row[0] for row in rows]
        for i in range(0, len(pks), _CHUNK):
            MobileDevice.objects.filter(pk__in=pks[i : i + _CHUNK]).update(
                access_state=d.state,
                access_state_reason=d.reason,
                access_rule_id=d.rule_id,
                state_changed_at=now,
            )
        transitions.extend(
            Transition(pk, state, d.state, d.reason, d.rule_id, change.pk)
            for (pk, state, *_), change in zip(rows, history, strict=True)
        )
    if transitions:
        notify.state_changed(transitions)
    return transitions


def preview(
    scope: QuerySet,
    *,
    rules: access.RuleSet | None = None,
    org: OrgSettings | None = None,
) -> Counter:
    """How many devices in scope would move, as {(from_state, to_state): count}."""
    now = timezone.now()
    rules = rules if rules is not None else load_rules()
    org = org or OrgSettings.load()
    annotated, outcomes = plan(scope, rules, org_facts(org), now)
    counts: Counter = Counter()
    for outcome in outcomes:
        moving = annotated.filter(outcome.match).exclude(outcome.unchanged())
        for state, n in _counts_by_state(moving):
            if state != outcome.decision.state:
                counts[(state, outcome.decision.state)] += n
    return counts


def _counts_by_state(qs: QuerySet):
    from django.db.models import Count

    return (
        qs.order_by()
        .values_list("access_state")
        .annotate(n=Count("pk"))
        .values_list("access_state", "n")
    )


def describe_changes(counts: Counter) -> str:
    """E.g. '3 devices Quarantined -> Allowed' or 'no device changes state'."""
    if not counts:
        return "no device changes state"
    parts = []
    for (before, after), n in sorted(counts.items()):
        parts.append(f"{n} device{'s' if n != 1 else ''} {before} -> {after}")
    return ", ".join(parts)


def _state_message(transitions: list[Transition]) -> str:
    counts = Counter((t.from_state, t.to_state) for t in transitions if t.from_state != t.to_state)
    return describe_changes(counts)


# ---------------------------------------------------------------------------
# organisation settings


@transaction.atomic
def set_org_settings(
    actor: Actor,
    *,
    default_access_level: str | None = None,
    admin_mail_recipients: list[str] | None = None,
    user_mail_insert: str | None = None,
    discovery_window_minutes: int | None = None,
    allow_health_probes: bool | None = None,
    send_user_mail: bool | None = None,
    admin_mail_mode: str | None = None,
    admin_digest_minutes: int | None = None,
    new_device_alert: bool | None = None,
) -> Result:
    org = OrgSettings.objects.select_for_update().get_or_create(pk=1)[0]
    before = org_snapshot(org)
    if default_access_level is not None:
        org.default_access_level = parse_access_level(default_access_level)
    if admin_mail_recipients is not None:
        seen = []
        for address in admin_mail_recipients:
            address = _email(address)
            if address.lower() not in (a.lower() for a in seen):
                seen.append(address)
        org.admin_mail_recipients = seen
    if user_mail_insert is not None:
        if len(user_mail_insert) > 4000:
            raise ActionError("The user mail insert is limited to 4,000 characters.")
        org.user_mail_insert = user_mail_insert
    if discovery_window_minutes is not None:
        if not 0 <= discovery_window_minutes <= 1440:
            raise ActionError("The discovery window must be between 0 and 1440 minutes.")
        org.discovery_window_minutes = discovery_window_minutes
    for name, value in (
        ("allow_health_probes", allow_health_probes),
        ("send_user_mail", send_user_mail),
        ("new_device_alert", new_device_alert),
    ):
        if value is not None:
            setattr(org, name, bool(value))
    if admin_mail_mode is not None:
        org.admin_mail_mode = _choice(admin_mail_mode, AdminMailMode, "admin mail mode")
    if admin_digest_minutes is not None:
        if not 1 <= admin_digest_minutes <= 1440:
            raise ActionError("The digest interval must be between 1 and 1440 minutes.")
        org.admin_digest_minutes = admin_digest_minutes
    org.save()
    after = org_snapshot(org)
    event = record(actor, action="org_settings.update", obj=org, before=before, after=after)
    transitions = []
    if (before["default_access_level"], before["discovery_window_minutes"]) != (
        after["default_access_level"],
        after["discovery_window_minutes"],
    ):
        transitions = reevaluate(MobileDevice.objects.all(), event, org=org)
    _finish(event, transitions, "Organisation settings changed")
    return Result(org, event, transitions)


def preview_org_settings(*, default_access_level: str | None = None) -> Counter:
    org = OrgSettings.load()
    if default_access_level is not None:
        org.default_access_level = parse_access_level(default_access_level)
    return preview(MobileDevice.objects.all(), org=org)


def _finish(event: AuditEvent, transitions: list[Transition], what: str) -> None:
    """Put a readable summary on the event, including what re-evaluation did."""
    message = what
    if transitions:
        message += f"; {_state_message(transitions)}"
    event.message = message
    AuditEvent.objects.filter(pk=event.pk).update(message=message)


# ---------------------------------------------------------------------------
# mailboxes


@transaction.atomic
def create_mailbox(
    actor: Actor,
    *,
    alias: str,
    email: str,
    display_name: str = "",
    password: str | None = None,
    activesync_enabled: bool = True,
) -> Result:
    alias = (alias or "").strip()
    if not alias or len(alias) > 64 or not all(c.isalnum() or c in "._-" for c in alias):
        raise ActionError(f"{alias!r} is not a valid alias (letters, digits, '.', '_', '-').")
    email = _email(email)
    if Mailbox.objects.filter(alias__iexact=alias).exists():
        raise ConflictError(f"A mailbox with alias {alias!r} already exists.")
    if Mailbox.objects.filter(primary_smtp_address__iexact=email).exists():
        raise ConflictError(f"A mailbox with address {email!r} already exists.")
    user = None
    if password is not None:
        User = get_user_model()
        if User.objects.filter(username__iexact=alias).exists():
            raise ConflictError(f"A login named {alias!r} already exists.")
        if not password:
            raise ActionError("The password must not be empty.")
        user = User.objects.create_user(username=alias, email=email, password=password)
    mailbox = Mailbox.objects.create(
        alias=alias,
        primary_smtp_address=email,
        display_name=display_name or alias,
        activesync_enabled=activesync_enabled,
        user=user,
    )
    event = record(actor, action="mailbox.create", obj=mailbox, after=mailbox_snapshot(mailbox))
    _finish(event, [], f"Mailbox {alias} created" + (" with a login" if user else ""))
    return Result(mailbox, event)


def _put_on_list(mailbox: Mailbox, device_id: str, kind: str) -> None:
    key = device_id.lower()
    entry = MailboxDeviceId.objects.filter(mailbox=mailbox, device_key=key).first()
    if entry is None:
        MailboxDeviceId.objects.create(mailbox=mailbox, device_id=device_id, list=kind)
    elif entry.list != kind:
        entry.list = kind
        entry.save(update_fields=["list"])


def _take_off_list(mailbox: Mailbox, device_id: str, kind: str) -> bool:
    deleted, _ = MailboxDeviceId.objects.filter(
        mailbox=mailbox, device_key=device_id.lower(), list=kind
    ).delete()
    return bool(deleted)


@transaction.atomic
def set_mailbox(
    actor: Actor,
    mailbox: Mailbox,
    *,
    activesync_enabled: bool | None = None,
    display_name: str | None = None,
    add_allowed: list[str] = (),
    remove_allowed: list[str] = (),
    add_blocked: list[str] = (),
    remove_blocked: list[str] = (),
) -> Result:
    mailbox = Mailbox.objects.select_for_update().get(pk=mailbox.pk)
    add_allowed = [_device_id(d) for d in add_allowed]
    add_blocked = [_device_id(d) for d in add_blocked]
    remove_allowed = [_device_id(d) for d in remove_allowed]
    remove_blocked = [_device_id(d) for d in remove_blocked]
    both = {d.lower() for d in add_allowed} & {d.lower() for d in add_blocked}
    if both:
        raise ActionError(
            f"A DeviceId cannot be both allowed and blocked: {', '.join(sorted(both))}."
        )
    before = mailbox_snapshot(mailbox)
    if activesync_enabled is not None:
        mailbox.activesync_enabled = activesync_enabled
    if display_name is not None:
        mailbox.display_name = display_name.strip()[:256]
    mailbox.save()
    for device_id in remove_allowed:
        _take_off_list(mailbox, device_id, DeviceIdList.ALLOWED)
    for device_id in remove_blocked:
        _take_off_list(mailbox, device_id, DeviceIdList.BLOCKED)
    for device_id in add_allowed:
        _put_on_list(mailbox, device_id, DeviceIdList.ALLOWED)
    for device_id in add_blocked:
        _put_on_list(mailbox, device_id, DeviceIdList.BLOCKED)
    after = mailbox_snapshot(mailbox)
    event = record(actor, action="mailbox.update", obj=mailbox, before=before, after=after)
    transitions = reevaluate(MobileDevice.objects.filter(mailbox=mailbox), event)
    _finish(event, transitions, f"Mailbox {mailbox.alias} changed")
    return Result(mailbox, event, transitions)


# ---------------------------------------------------------------------------
# devices


def _set_device_list(actor: Actor, mailbox: Mailbox, device_id: str, kind: str) -> Result:
    device_id = _device_id(device_id)
    mailbox = Mailbox.objects.select_for_update().get(pk=mailbox.pk)
    device = MobileDevice.objects.filter(mailbox=mailbox, device_key=device_id.lower()).first()
    if device is not None:
        device_id = device.device_id  # keep the spelling the device uses
    before = mailbox_snapshot(mailbox)
    _put_on_list(mailbox, device_id, kind)
    after = mailbox_snapshot(mailbox)
    verb = "allow" if kind == DeviceIdList.ALLOWED else "block"
    event = record(
        actor,
        action=f"device.{verb}",
        object_type="MobileDevice",
        object_id=str(device.pk) if device else "",
        object_repr=f"{device_id} ({mailbox.alias})",
        before=before,
        after=after,
    )
    transitions = reevaluate(
        MobileDevice.objects.filter(mailbox=mailbox, device_key=device_id.lower()), event
    )
    _finish(event, transitions, f"DeviceId {device_id} {verb}ed for mailbox {mailbox.alias}")
    if device is not None:
        device.refresh_from_db()
    return Result(device, event, transitions)


@transaction.atomic
def allow_device(actor: Actor, mailbox: Mailbox, device_id: str) -> Result:
    """Put the DeviceId on the mailbox's allowed list (and off the blocked list)."""
    return _set_device_list(actor, mailbox, device_id, DeviceIdList.ALLOWED)


@transaction.atomic
def block_device(actor: Actor, mailbox: Mailbox, device_id: str) -> Result:
    """Put the DeviceId on the mailbox's blocked list (and off the allowed list)."""
    return _set_device_list(actor, mailbox, device_id, DeviceIdList.BLOCKED)


@transaction.atomic
def remove_device(actor: Actor, device: MobileDevice) -> Result:
    """Remove the partnership; the device starts over if it syncs again."""
    # Audit the row as it is now, not the caller's copy; removing twice is refused.
    device = _lock(MobileDevice.objects.filter(pk=device.pk)).select_related("mailbox").first()
    if device is None:
        raise ActionError("That partnership no longer exists.")
    before = device_snapshot(device)
    event = record(
        actor,
        action="device.remove",
        object_type="MobileDevice",
        object_id=str(device.pk),
        object_repr=str(device),
        before=before,
        message=f"Partnership {device} removed",
    )
    device.delete()
    return Result(None, event)


# ---------------------------------------------------------------------------
# device access rules


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
    OrgSettings.load()
    OrgSettings.objects.filter(pk=1).update(rules_version=F("rules_version") + 1)


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
    event = record(actor, action="rule.create", obj=rule, after=rule_snapshot(rule))
    _bump_rules_version()
    transitions = reevaluate(MobileDevice.objects.all(), event)
    _finish(event, transitions, f"Rule {rule} created")
    return Result(rule, event, transitions)


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
    event = record(actor, action="rule.update", obj=rule, before=before, after=rule_snapshot(rule))
    _bump_rules_version()
    transitions = reevaluate(MobileDevice.objects.all(), event)
    _finish(event, transitions, f"Rule {rule} changed")
    return Result(rule, event, transitions)


@transaction.atomic
def delete_rule(actor: Actor, rule: DeviceAccessRule) -> Result:
    rule = DeviceAccessRule.objects.select_for_update().get(pk=rule.pk)
    before = rule_snapshot(rule)
    event = record(actor, action="rule.delete", obj=rule, before=before)
    rule.delete()
    _bump_rules_version()
    transitions = reevaluate(MobileDevice.objects.all(), event)
    _finish(
        event, transitions, f"Rule {before['query_string']} ({before['characteristic']}) removed"
    )
    return Result(None, event, transitions)


# ---------------------------------------------------------------------------
# lifecycle


@transaction.atomic
def grandfather_devices(actor: Actor, *, dry_run: bool = False) -> Result:
    """Put every device allowed by the org default on its mailbox's allowed list.

    Switching the default to Quarantine afterwards leaves them syncing. The
    lists are merged: nothing already on a list is touched.
    """
    devices = MobileDevice.objects.filter(
        access_state=AccessState.ALLOWED, access_state_reason=AccessReason.GLOBAL
    )
    pairs = list(devices.values_list("pk", "mailbox_id", "device_id"))
    if dry_run:
        return Result(count=len(pairs))
    now = timezone.now()
    MailboxDeviceId.objects.bulk_create(
        [
            MailboxDeviceId(
                mailbox_id=mailbox_id,
                device_id=device_id,
                device_key=device_id.lower(),
                list=DeviceIdList.ALLOWED,
                created_at=now,
            )
            for _, mailbox_id, device_id in pairs
        ],
        batch_size=_CHUNK,
        ignore_conflicts=True,
    )
    event = record(
        actor,
        action="devices.grandfather",
        object_type="OrgSettings",
        object_id="1",
        object_repr="Organisation settings",
        after={"count": len(pairs)},
    )
    pks = [pk for pk, _, _ in pairs]
    transitions = []
    for i in range(0, len(pks), _CHUNK):
        transitions += reevaluate(MobileDevice.objects.filter(pk__in=pks[i : i + _CHUNK]), event)
    _finish(event, transitions, f"{len(pairs)} devices added to their mailbox's allowed list")
    return Result(event=event, transitions=transitions, count=len(pairs))


@transaction.atomic
def purge_quarantined(actor: Actor, *, older_than_days: int, dry_run: bool = False) -> Result:
    """Remove partnerships that have waited in quarantine longer than N days (0: all)."""
    if older_than_days < 0:
        raise ActionError("--older-than-days must be 0 or more.")
    cutoff = timezone.now() - timedelta(days=older_than_days)
    stale = MobileDevice.objects.filter(
        access_state=AccessState.QUARANTINED, state_changed_at__lte=cutoff
    ).select_related("mailbox", "access_rule")
    devices = list(_lock(stale))
    if dry_run:
        return Result(obj=devices, count=len(devices))
    now = timezone.now()
    AuditEvent.objects.bulk_create(
        [
            AuditEvent(
                time=now,
                actor_id=actor.user_id,
                actor_name=actor.name,
                source=actor.source,
                client_ip=actor.ip,
                request_id=actor.request_id,
                action="device.purge",
                object_type="MobileDevice",
                object_id=str(d.pk),
                object_repr=str(d)[:256],
                before=device_snapshot(d),
                message=f"Removed after {older_than_days} days or more in quarantine",
            )
            for d in devices
        ],
        batch_size=_CHUNK,
    )
    pks = [d.pk for d in devices]
    for i in range(0, len(pks), _CHUNK):
        MobileDevice.objects.filter(pk__in=pks[i : i + _CHUNK]).delete()
    return Result(obj=devices, count=len(devices))


# ---------------------------------------------------------------------------
# the gate: a device talks to us

# DeviceInformation key (devices.eas) -> MobileDevice field
DEVICE_INFORMATION_FIELDS = {
    "model": "device_model",
    "imei": "imei",
    "friendly_name": "friendly_name",
    "os": "device_os",
    "os_language": "device_os_language",
    "phone_number": "phone_number",
    "mobile_operator": "mobile_operator",
}


@dataclass(frozen=True)
class Contact:
    """What one ActiveSync request tells about its device."""

    device_id: str
    device_type: str
    user_agent: str = ""
    eas_version: str = ""
    info: dict | None = None  # Settings:DeviceInformation, when the body carried it


def _field_limit(name: str) -> int:
    return MobileDevice._meta.get_field(name).max_length


def contact_changes(device: MobileDevice, contact: Contact) -> dict:
    """The device columns this contact changes (empty values never erase known ones)."""
    changes = {}
    wanted = {
        "device_type": contact.device_type,
        "user_agent": contact.user_agent,
        "eas_version": contact.eas_version,
    }
    for key, field_name in DEVICE_INFORMATION_FIELDS.items():
        if contact.info and contact.info.get(key):
            wanted[field_name] = contact.info[key]
    if contact.info and not contact.user_agent and contact.info.get("user_agent"):
        wanted["user_agent"] = contact.info["user_agent"]
    for name, value in wanted.items():
        value = (value or "")[: _field_limit(name)]
        if value and getattr(device, name) != value:
            changes[name] = value
    if contact.info is not None and not device.device_info_received:
        changes["device_info_received"] = True
    return changes


def _touch_device_class(device_type: str, device_model: str, now) -> None:
    from .models import DeviceClass

    DeviceClass.objects.bulk_create(
        [DeviceClass(device_type=device_type, device_model=device_model, last_seen=now)],
        update_conflicts=True,
        unique_fields=["device_type", "device_model"],
        update_fields=["last_seen"],
    )


@transaction.atomic
def record_contact(
    actor: Actor, mailbox: Mailbox, contact: Contact, *, redecide: bool = False
) -> MobileDevice:
    """Create or update the partnership a request names, and decide it when needed.

    Race-free: two first requests of one device give one row and one state
    transition. A known device is decided again only when something the
    decision reads has changed (or `redecide`, e.g. its discovery window ended).
    """
    now = timezone.now()
    key = contact.device_id.lower()
    created = False
    try:
        with transaction.atomic():
            device = MobileDevice.objects.create(
                mailbox=mailbox,
                device_id=contact.device_id,
                first_seen=now,
                last_seen=now,
                state_changed_at=now,
            )
            created = True
    except IntegrityError:
        pass
    device = (
        _lock(MobileDevice.objects.filter(mailbox=mailbox, device_key=key))
        .select_related("mailbox")
        .get()
    )
    changes = contact_changes(device, contact)
    if changes:
        for name, value in changes.items():
            setattr(device, name, value)
        MobileDevice.objects.filter(pk=device.pk).update(last_seen=now, **changes)
    if created or "device_type" in changes or "device_model" in changes:
        _touch_device_class(device.device_type, device.device_model, now)
    if not (created or changes or redecide):
        return device
    event = None
    if created:
        event = record(
            actor,
            action="device.create",
            obj=device,
            object_type="MobileDevice",
            after={k: getattr(device, k) for k in ("device_id", "device_type", "user_agent")},
        )
    else:
        event = record(
            actor,
            action="device.update" if changes else "device.reevaluate",
            obj=device,
            object_type="MobileDevice",
            after=changes or None,
        )
    org = OrgSettings.load()
    from .evaluation import current_rules

    transitions = reevaluate(
        MobileDevice.objects.filter(pk=device.pk),
        event,
        rules=current_rules(org.rules_version),
        org=org,
    )
    what = (
        "New partnership" if created else "Device details updated" if changes else "Decided again"
    )
    _finish(event, transitions, f"{what}: {device}")
    device.refresh_from_db()
    return device


def touch_last_seen(device: MobileDevice, *, every_seconds: int = 60) -> bool:
    """Coalesced last-seen: write it at most once a minute per device."""
    now = timezone.now()
    if now - device.last_seen < timedelta(seconds=every_seconds):
        return False
    MobileDevice.objects.filter(
        pk=device.pk, last_seen__lt=now - timedelta(seconds=every_seconds)
    ).update(last_seen=now)
    return True


# ---------------------------------------------------------------------------
# notifications


@transaction.atomic
def resend_notification(actor: Actor, notification) -> Result:
    """Send a mail again (failed: retried; sent: copied), audited."""
    from notifications import outbox

    before = {"status": notification.status, "attempts": notification.attempts}
    try:
        target = outbox.resend(notification)
    except ValueError as exc:
        raise ActionError(str(exc).capitalize() + ".") from None
    event = record(
        actor,
        action="notification.resend",
        obj=notification,
        object_type="Notification",
        before=before,
        after={"notification": target.pk, "status": target.status},
        message=f"Mail {notification.get_kind_display().lower()} to "
        f"{notification.recipient} queued again",
    )
    return Result(target, event)
