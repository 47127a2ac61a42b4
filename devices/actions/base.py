"""Shared pieces of the actions: errors, results, validation, snapshots, the audit step."""

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import connection
from django.db.models import QuerySet

from ..audit import Actor, record
from ..models import (
    AccessLevel,
    AccessState,
    AuditEvent,
    Characteristic,
    DeviceAccessRule,
    DeviceIdList,
    Mailbox,
    MobileDevice,
    OrgSettings,
)

MAX_DEVICE_ID = 64
CHUNK = 2000  # rows per statement: SQLite takes at most 32,766 parameters


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


def choice(value: str, choices, what: str) -> str:
    for choice in choices:
        if value is not None and value.lower() == choice.value.lower():
            return choice.value
    allowed = ", ".join(c.value for c in choices)
    raise ActionError(f"Unknown {what} {value!r}: use one of {allowed}.")


def parse_access_level(value: str) -> str:
    return choice(value, AccessLevel, "access level")


def parse_characteristic(value: str) -> str:
    return choice(value, Characteristic, "characteristic")


def parse_access_state(value: str) -> str:
    return choice(value, AccessState, "access state")


def clean_email(value: str) -> str:
    value = (value or "").strip()
    try:
        validate_email(value)
    except ValidationError:
        raise ActionError(f"{value!r} is not a valid e-mail address.") from None
    return value


def clean_device_id(value: str) -> str:
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
        "purge_quarantined_after_days": org.purge_quarantined_after_days,
        "self_approval": org.self_approval,
        "user_mail_inserts": dict(org.user_mail_inserts or {}),
        "default_language": org.default_language,
        "time_zone": org.time_zone,
    }


def lock(qs: QuerySet) -> QuerySet:
    """Lock the rows (PostgreSQL); SQLite's IMMEDIATE transactions serialise writers anyway."""
    if connection.features.has_select_for_update:
        return qs.select_for_update(of=("self",))
    return qs


class AuditAfter:
    """An action's one audit event, written once re-evaluation knows what it changes.

    Audit events are append-only, so the message, which ends with the summary
    of the state changes ("3 devices Quarantined -> Allowed"), must be complete
    when the row is written. devices.actions.reevaluate calls this with the
    summary before it records the state changes that point at the event.
    """

    def __init__(self, actor: Actor, what: str, **fields):
        self.actor = actor
        self.what = what
        self.fields = fields
        self.event: AuditEvent | None = None

    def __call__(self, changes: str = "") -> AuditEvent:
        if self.event is None:
            message = f"{self.what}; {changes}" if changes else self.what
            self.event = record(self.actor, message=message, **self.fields)
        return self.event


EventSource = AuditEvent | Callable[[str], AuditEvent] | None
