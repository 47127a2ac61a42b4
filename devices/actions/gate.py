"""The gate's writes: record a device's contact, decide it, coalesce last-seen."""

import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from .. import hostile
from ..audit import Actor
from ..evaluation import current_rules
from ..gate import decisions
from ..languages import language_code
from ..models import DeviceClass, Mailbox, MobileDevice
from .base import AuditAfter, lock
from .reevaluation import apply_decision, decide_device, decision_fields, reevaluate_device

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
    # The model a User-Agent names (Apple-iPhone14C5/...): the device's model
    # until DeviceInformation arrives, so that a rule on DeviceModel decides at once.
    user_agent_model: str = ""


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
    reported = contact.info is not None or device.device_info_received
    if contact.user_agent_model and not reported:
        wanted["device_model"] = contact.user_agent_model
    for key, field_name in DEVICE_INFORMATION_FIELDS.items():
        if contact.info and contact.info.get(key):
            wanted[field_name] = contact.info[key]
    if contact.info and not contact.user_agent and contact.info.get("user_agent"):
        wanted["user_agent"] = contact.info["user_agent"]
    for name, value in wanted.items():
        # Whoever calls: no control or bidi control is stored (devices.hostile).
        value = hostile.clean_device_text(value)[: _field_limit(name)]
        if value and getattr(device, name) != value:
            changes[name] = value
    if contact.info is not None and not device.device_info_received:
        changes["device_info_received"] = True
    return changes


# Changes a device makes to what the decision reads (devices.access): these count
# towards flapping. (IMEI, phone number and the like are recorded, never counted.)
DECIDING_FIELDS = frozenset(
    {"device_type", "device_model", "device_os", "user_agent", "device_info_received"}
)


# (device type, device model) -> when this process last wrote its DeviceClass row
# (time.monotonic()): a family's last_seen is kept to the minute, not per first contact.
_classes_touched: dict[tuple[str, str], float] = {}
CLASS_TOUCH_SECONDS = 60
CLASSES_TOUCHED_MAX = 10_000  # then the memo starts again


def forget_device_classes() -> None:
    """Forget which families this process touched (tests: a fresh process)."""
    _classes_touched.clear()


def _touch_device_class(device_type: str, device_model: str, now, *, may_add: bool) -> None:
    """Note the device family; a new one only while the table is under its bound
    (ECP_DEVICE_CLASS_MAX) and the device is not flapping: a device can invent
    a model string per request. A family this process wrote in the last minute is
    left alone (a burst of first contacts of one model wrote its row each time)."""
    family = (device_type, device_model)
    touched_at = _classes_touched.get(family)
    if touched_at is not None and time.monotonic() - touched_at < CLASS_TOUCH_SECONDS:
        return
    known = DeviceClass.objects.filter(device_type=device_type, device_model=device_model)
    touched = known
    if connection.features.has_select_for_update_skip_locked:
        # A burst of first contacts of one model all touch its row: whoever finds it
        # locked leaves it to the transaction holding it (last_seen is approximate),
        # instead of waiting for that transaction to commit.
        touched = DeviceClass.objects.filter(
            pk__in=known.select_for_update(skip_locked=True).values("pk")
        )
    if touched.update(last_seen=now):
        _remember_class(family)
        return
    if not may_add or known.exists():
        return
    if DeviceClass.objects.count() >= settings.ECP_DEVICE_CLASS_MAX:
        return
    DeviceClass.objects.bulk_create(
        [DeviceClass(device_type=device_type, device_model=device_model, last_seen=now)],
        ignore_conflicts=True,
    )
    _remember_class(family)


def _remember_class(family: tuple[str, str]) -> None:
    if len(_classes_touched) >= CLASSES_TOUCHED_MAX:
        _classes_touched.clear()
    _classes_touched[family] = time.monotonic()


@dataclass(frozen=True)
class _Flapping:
    changes: int  # decision-relevant changes in the current interval
    since: object  # the interval's start
    over: bool  # more than ECP_DEVICE_DETAIL_CHANGES_LIMIT


def _count_change(device: MobileDevice, now) -> _Flapping:
    """Count one self-made change to what the decision reads, per interval."""
    interval = timedelta(minutes=settings.ECP_NOTIFY_MIN_INTERVAL_MINUTES)
    since = device.detail_changes_since
    if since is None or now - since >= interval:
        since, changes = now, 1
    else:
        changes = device.detail_changes + 1
    over = interval > timedelta(0) and changes > settings.ECP_DEVICE_DETAIL_CHANGES_LIMIT
    fields = {"detail_changes": changes, "detail_changes_since": since}
    if over:
        # Looser decisions wait until the interval ends (the gate asks again then).
        fields |= {"flapped_at": now, "redecide_due_at": since + interval}
    for name, value in fields.items():
        setattr(device, name, value)
    MobileDevice.objects.filter(pk=device.pk).update(**fields)
    return _Flapping(changes, since, over)


@transaction.atomic
def record_contact(
    actor: Actor, mailbox: Mailbox, contact: Contact, *, redecide: bool = False
) -> MobileDevice:
    """Create or update the partnership a request names, and decide it when needed.

    Race-free: two first requests of one device give one row and one state
    transition. A known device is decided again only when something the
    decision reads has changed (or `redecide`, e.g. its discovery window ended).

    Flapping: a device that changes its own decision-relevant details more than
    ECP_DEVICE_DETAIL_CHANGES_LIMIT times in ECP_NOTIFY_MIN_INTERVAL_MINUTES is
    still recorded, but only decisions at least as restrictive as its state are
    applied until the interval ends; then the next request decides it in full.
    Blocked stays blocked, and a model flipping between a Block rule and none
    cannot make a state change (and mails) per request.
    """
    now = timezone.now()
    key = contact.device_id.lower()
    org = decisions.org_settings()
    rules = current_rules(org.rules_version)
    # A new partnership is decided before it is written, and written with its details
    # and its state at once (one statement, not an INSERT and two UPDATEs); being ours
    # alone until we commit, it is not read again.
    details = contact_changes(MobileDevice(device_id=contact.device_id), contact)
    new = MobileDevice(
        mailbox=mailbox,
        device_id=contact.device_id,
        first_seen=now,
        last_seen=now,
        state_changed_at=now,
        **details,
    )
    first_decision = decide_device(new, rules=rules, org=org, now=now)
    undecided = (new.access_state, new.access_state_reason)
    for name, value in decision_fields(first_decision).items():
        setattr(new, name, value)
    try:
        with transaction.atomic():
            new.save(force_insert=True)
        device, created = new, True
    except IntegrityError:  # the same device's other first request was first
        created = False
        device = (
            lock(MobileDevice.objects.filter(mailbox=mailbox, device_key=key))
            .select_related("mailbox")
            .get()
        )
    changes = details if created else contact_changes(device, contact)
    if changes and not created:
        for name, value in changes.items():
            setattr(device, name, value)
        device.last_seen = now
        MobileDevice.objects.filter(pk=device.pk).update(last_seen=now, **changes)
    if "device_os_language" in changes:
        _note_device_language(mailbox, changes["device_os_language"])
    flapping = None
    if not created and DECIDING_FIELDS & set(changes):
        flapping = _count_change(device, now)
    held_due = device.redecide_due_at is not None and now >= device.redecide_due_at
    if held_due and not (flapping and flapping.over):
        device.redecide_due_at = None
        MobileDevice.objects.filter(pk=device.pk).update(redecide_due_at=None)
        redecide = True
    if created or "device_type" in changes or "device_model" in changes:
        may_add = created or not (flapping and flapping.over)
        _touch_device_class(device.device_type, device.device_model, now, may_add=may_add)
    if not (created or changes or redecide):
        return device
    if created:
        what, action = "New partnership", "device.create"
        after = {k: getattr(device, k) for k in ("device_id", "device_type", "user_agent")}
    elif changes:
        what, action, after = "Device details updated", "device.update", changes
    else:
        what, action, after = "Decided again", "device.reevaluate", None
    tighten_only = bool(flapping and flapping.over)
    if tighten_only:
        what += (
            f" (flapping: {flapping.changes} changes of its reported details since"
            f" {flapping.since:%Y-%m-%d %H:%M} UTC; decisions that would loosen access"
            f" wait until {device.redecide_due_at:%H:%M} UTC)"
        )
    audit = AuditAfter(
        actor,
        f"{what}: {device}",
        action=action,
        obj=device,
        object_type="MobileDevice",
        after=after,
    )
    if created:  # inserted in its decided state: the event, the history row, the mails
        apply_decision(device, audit, first_decision, org=org, now=now, inserted_from=undecided)
        return device
    # One locked device: decided in Python by the engine, not by the set-based plan.
    reevaluate_device(device, audit, rules=rules, org=org, tighten_only=tighten_only)
    return device


def _note_device_language(mailbox: Mailbox, os_language: str) -> None:
    """The phone's DeviceOSLanguage as the mailbox's language of last resort
    (the admin's and the directory's come first: devices.languages)."""
    code = language_code(os_language)
    if code and mailbox.device_language != code:
        mailbox.device_language = code
        Mailbox.objects.filter(pk=mailbox.pk).update(device_language=code)


def touch_last_seen(device: MobileDevice, *, every_seconds: int = 60) -> bool:
    """Coalesced last-seen: write it at most once a minute per device."""
    now = timezone.now()
    if now - device.last_seen < timedelta(seconds=every_seconds):
        return False
    MobileDevice.objects.filter(
        pk=device.pk, last_seen__lt=now - timedelta(seconds=every_seconds)
    ).update(last_seen=now)
    device.last_seen = now  # a cached device (devices.gate.decisions) writes once a minute too
    return True
