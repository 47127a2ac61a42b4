"""Set-based re-evaluation: bring every device in scope to the state the engine decides.

devices.evaluation decides each profile in scope once and groups the devices
whose state, reason, rule or policy differs from their profile's decision; this
module selects and locks those devices, moves them with one UPDATE per
decision (in id chunks), writes one history row per moved device tied to the
action's audit event, and hands the transitions to devices.notify. A preview
needs the groups only.
"""

from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from .. import access, bulk, notify, progress
from ..evaluation import Plan, device_facts, load_rules, org_facts, plan
from ..models import (
    AccessPolicy,
    AccessState,
    DeviceIdList,
    DeviceStateChange,
    MailboxDeviceId,
    MobileDevice,
    OrgDeviceId,
    OrgSettings,
)
from .base import EventSource, Transition, lock

# Blocked is the most restrictive state; Unknown only precedes the first decision.
RESTRICTIVENESS = {
    AccessState.ALLOWED: 0,
    AccessState.UNKNOWN: 1,
    AccessState.DEVICE_DISCOVERY: 2,
    AccessState.QUARANTINED: 3,
    AccessState.BLOCKED: 4,
}

HISTORY_FIELDS = (
    *("device_id", "device_repr", "time", "from_state", "from_reason"),
    *("to_state", "to_reason", "rule_id", "event_id"),
)


def reevaluate(
    scope: QuerySet,
    event: EventSource,
    *,
    rules: access.RuleSet | None = None,
    org: OrgSettings | None = None,
    tighten_only: bool = False,
) -> list[Transition]:
    """Re-decide every device in scope; call inside the action's transaction.

    `event` is the action's audit event, or a callable (an AuditAfter) that
    writes it once the summary of the changes is known, or None.
    `tighten_only`: apply only decisions at least as restrictive as the
    device's state (a flapping device: devices.actions.record_contact).
    """
    now = timezone.now()
    rules = rules if rules is not None else load_rules()
    org = org or OrgSettings.load()
    planned = plan(scope, rules, org_facts(org), now)
    by_decision: dict[access.Decision, list[tuple]] = defaultdict(list)
    for moving, decisions in planned.moving():
        for *row, key in lock(moving).values_list(
            "pk",
            "access_state",
            "access_state_reason",
            "device_id",
            "mailbox__alias",
            "state_key",
        ):
            decision = decisions[key]
            if tighten_only and RESTRICTIVENESS[decision.state] < RESTRICTIVENESS[row[1]]:
                continue
            by_decision[decision].append(tuple(row))
    moves = list(by_decision.items())
    if callable(event):
        counts = Counter(
            (row[1], d.state) for d, rows in moves for row in rows if row[1] != d.state
        )
        event = event(describe_changes(counts) if counts else "")
    transitions: list[Transition] = []
    event_id = getattr(event, "pk", None)
    # Finding and locking the devices is about a third of the time, writing the rest.
    progress.step(1, 3)
    total, done = sum(len(rows) for _, rows in moves), 0
    for d, rows in moves:
        history = bulk.insert_with_ids(
            DeviceStateChange,
            HISTORY_FIELDS,
            [
                (pk, f"{device_id} ({alias})", now, state, reason)
                + (d.state, d.reason, d.rule_id, event_id)
                for pk, state, reason, device_id, alias in rows
            ],
        )
        # state_changed_at moves only with the state: a new reason or rule
        # does not restart a device's time in quarantine.
        moved = [pk for pk, state, *_ in rows if state != d.state]
        reasoned = [pk for pk, state, *_ in rows if state == d.state]
        for pks, extra in ((moved, {"state_changed_at": now}), (reasoned, {})):
            bulk.update(
                MobileDevice,
                pks,
                access_state=d.state,
                access_state_reason=d.reason,
                access_rule_id=d.rule_id,
                access_policy_id=d.policy_id,
                **extra,
            )
        transitions.extend(
            Transition(pk, state, d.state, d.reason, d.rule_id, change_id)
            for (pk, state, *_), change_id in zip(rows, history, strict=True)
        )
        done += len(rows)
        progress.step(total + 2 * done, 3 * total)
    if transitions:
        notify.state_changed(transitions)
    return transitions


def reevaluate_device(
    device: MobileDevice,
    event: EventSource,
    *,
    rules: access.RuleSet,
    org: OrgSettings,
    tighten_only: bool = False,
) -> list[Transition]:
    """reevaluate() for one device the caller has locked (the gate's record_contact).

    The same decision as plan() gives the device's profile, by the same engine
    (decide_device), then the same audit event, history row, state columns and
    notifications, without the set-based statements a rule change needs (a first
    contact made 18 of them: docs/PERFORMANCE.md, issue 19). `device` is updated
    in place; its mailbox must be loaded.
    """
    now = timezone.now()
    decision = decide_device(device, rules=rules, org=org, now=now)
    return apply_decision(device, event, decision, org=org, now=now, tighten_only=tighten_only)


def decide_device(
    device: MobileDevice, *, rules: access.RuleSet, org: OrgSettings, now
) -> access.Decision:
    """What the engine decides for one device (saved or not): its mailbox's list entry
    and the organisation's for its DeviceId only (one statement), not the whole lists."""
    mailbox = device.mailbox
    key = device.device_id.lower()
    listed = _listed(mailbox.pk, key)
    policy_level = None
    if mailbox.access_policy_id is not None:
        policy_level = (
            AccessPolicy.objects.filter(pk=mailbox.access_policy_id)
            .values_list("default_access_level", flat=True)
            .first()
        )
    ids = frozenset({key})
    facts = org_facts(org, allowed_ids=ids if listed == ORG_LIST else frozenset())
    return access.decide(
        access.MailboxFacts(
            activesync_enabled=mailbox.activesync_enabled,
            account_disabled=mailbox.directory_disabled,
            allowed_ids=ids if listed == DeviceIdList.ALLOWED else frozenset(),
            blocked_ids=ids if listed == DeviceIdList.BLOCKED else frozenset(),
            policy_id=mailbox.access_policy_id,
            policy_level=policy_level,
        ),
        device_facts(device),
        rules,
        facts,
        now,
    )


ORG_LIST = "org"  # _listed(): the DeviceId is on the organisation's allowed list


def _listed(mailbox_id: int, key: str) -> str | None:
    """The mailbox's list that names this DeviceId ("Allowed"/"Blocked"), else ORG_LIST
    when the organisation's allowed list does, else None: one round trip for both
    (the mailbox's own entry first, as in the set-based plan)."""
    mailbox_ids, org_ids = MailboxDeviceId._meta.db_table, OrgDeviceId._meta.db_table
    # The tables' names are the models'; every value is a parameter.
    sql = (
        f'SELECT (SELECT "list" FROM "{mailbox_ids}" WHERE "mailbox_id" = %s'  # noqa: S608
        ' AND "device_key" = %s ORDER BY "device_id" LIMIT 1),'
        f' EXISTS (SELECT 1 FROM "{org_ids}" WHERE "device_key" = %s)'
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [mailbox_id, key, key])
        mine, on_org_list = cursor.fetchone()
    return mine or (ORG_LIST if on_org_list else None)


def apply_decision(
    device: MobileDevice,
    event: EventSource,
    decision: access.Decision,
    *,
    org: OrgSettings,
    now,
    tighten_only: bool = False,
    inserted_from: tuple[str, str] | None = None,
) -> list[Transition]:
    """Move one device to `decision`: the audit event, the history row, the state
    columns and the mails. `inserted_from`: the device was just inserted with the
    decision's columns already (a first contact), from that (state, reason); no UPDATE."""
    mailbox = device.mailbox
    if inserted_from is not None:
        state, reason = inserted_from
        held = (state, reason) == (decision.state, decision.reason)
    else:
        state, reason = device.access_state, device.access_state_reason
        held = (state, reason, device.access_rule_id, device.access_policy_id) == (
            decision.state,
            decision.reason,
            decision.rule_id,
            decision.policy_id,
        )
    loosens = RESTRICTIVENESS[decision.state] < RESTRICTIVENESS[state]
    moves = not held and not (tighten_only and loosens)
    if callable(event):
        counts = (
            Counter({(state, decision.state): 1}) if moves and state != decision.state else None
        )
        event = event(describe_changes(counts) if counts else "")
    if not moves:
        return []
    change = DeviceStateChange.objects.create(
        device_id=device.pk,
        device_repr=f"{device.device_id} ({mailbox.alias})",
        time=now,
        from_state=state,
        from_reason=reason,
        to_state=decision.state,
        to_reason=decision.reason,
        rule_id=decision.rule_id,
        event_id=getattr(event, "pk", None),
    )
    if inserted_from is None:
        fields = decision_fields(decision)
        if state != decision.state:
            fields["state_changed_at"] = now
        MobileDevice.objects.filter(pk=device.pk).update(**fields)
        for name, value in fields.items():
            setattr(device, name, value)
    transitions = [
        Transition(device.pk, state, decision.state, decision.reason, decision.rule_id, change.pk)
    ]
    notify.state_changed(transitions, org)
    return transitions


def decision_fields(decision: access.Decision) -> dict:
    """The state columns of a device that holds this decision."""
    return {
        "access_state": decision.state,
        "access_state_reason": decision.reason,
        "access_rule_id": decision.rule_id,
        "access_policy_id": decision.policy_id,
    }


def preview(
    scope: QuerySet,
    *,
    rules: access.RuleSet | None = None,
    org: OrgSettings | None = None,
) -> Counter:
    """How many devices in scope would change state, as {(from_state, to_state): count}."""
    now = timezone.now()
    rules = rules if rules is not None else load_rules()
    org = org or OrgSettings.load()
    planned = plan(scope, rules, org_facts(org), now)
    counts: Counter = Counter()
    for group in planned.moves:
        if group.state != group.decision.state:
            counts[(group.state, group.decision.state)] += group.count
    return counts


# Access states as people say them (issue 17: no "Quarantined -> Allowed" in messages).
STATE_WORDS = {
    "Allowed": "allowed",
    "Blocked": "blocked",
    "Quarantined": "quarantined",
    "DeviceDiscovery": "in discovery",
    "Unknown": "undecided",
}


def describe_changes(counts: Counter) -> str:
    """E.g. '3 devices from quarantined to allowed' or 'no device changes state'."""
    if not counts:
        return "no device changes state"
    parts = []
    for (before, after), n in sorted(counts.items()):
        parts.append(
            f"{n} device{'s' if n != 1 else ''} from {STATE_WORDS.get(before, before)}"
            f" to {STATE_WORDS.get(after, after)}"
        )
    return ", ".join(parts)


@dataclass
class DevicePreview:
    """A preview that names the devices: the counts, the first few, and a way to all."""

    counts: Counter
    first: list  # MobileDevice rows (mailbox loaded), each with .preview_from and .preview_to
    _plan: Plan = field(repr=False)

    @property
    def total(self) -> int:
        return sum(n for (before, after), n in self.counts.items() if before != after)

    def devices(self) -> Iterator:
        """Every device whose state would change, by mailbox and DeviceId (for the CSV)."""
        yield from _changing_devices(self._plan)


def _changing_devices(planned: Plan) -> Iterator:
    changing = [g for g in planned.moves if g.state != g.decision.state]
    if not changing:
        return
    # Narrowed by the plain columns first, as Plan.moving() does; chunked for SQLite.
    size = 400
    for i in range(0, len(changing), size):
        chunk = changing[i : i + size]
        decisions = {g.state_key: g.decision for g in chunk}
        devices = (
            planned.annotated.filter(
                access_state__in=sorted({g.state for g in chunk}),
                device_type__in=sorted({g.device_type for g in chunk}),
                state_key__in=list(decisions),
            )
            .select_related("mailbox")
            .order_by("mailbox__alias", "device_key", "pk")
        )
        for device in devices.iterator(chunk_size=2000):
            device.preview_from = device.access_state
            device.preview_to = decisions[device.state_key].state
            yield device


def preview_devices(
    scope: QuerySet,
    *,
    rules: access.RuleSet | None = None,
    org: OrgSettings | None = None,
    first: int = 20,
) -> DevicePreview:
    """preview(), plus the devices that would change state: the first `first` of them."""
    now = timezone.now()
    rules = rules if rules is not None else load_rules()
    org = org or OrgSettings.load()
    planned = plan(scope, rules, org_facts(org), now)
    counts: Counter = Counter()
    for group in planned.moves:
        if group.state != group.decision.state:
            counts[(group.state, group.decision.state)] += group.count
    listed = []
    if first and counts:
        for device in _changing_devices(planned):
            listed.append(device)
            if len(listed) >= first:
                break
    return DevicePreview(counts, listed, planned)


class _DryRun(Exception):
    pass


@dataclass
class DryRunPreview:
    """What an action would move, found by running it and rolling it back (no plan to reuse)."""

    counts: Counter
    first: list
    moved: list  # (device pk, from state, to state) of every device whose state changes

    @property
    def total(self) -> int:
        return len(self.moved)

    def devices(self) -> Iterator:
        to_state = {pk: (before, after) for pk, before, after in self.moved}
        pks = sorted(to_state)
        for i in range(0, len(pks), 500):
            chunk = (
                MobileDevice.objects.filter(pk__in=pks[i : i + 500])
                .select_related("mailbox")
                .order_by("mailbox__alias", "device_key", "pk")
            )
            for device in chunk:
                device.preview_from, device.preview_to = to_state[device.pk]
                yield device


def dry_run(apply, *, first: int = 20) -> DryRunPreview:
    """Run `apply()` (an action returning a Result) and roll everything back: rows, audit,
    outbox. The transitions it made say which devices it would move."""
    moved = []
    try:
        with transaction.atomic():
            result = apply()
            moved = [
                (t.device_pk, t.from_state, t.to_state)
                for t in result.transitions
                if t.from_state != t.to_state
            ]
            raise _DryRun
    except _DryRun:
        pass
    counts = Counter((before, after) for _, before, after in moved)
    found = DryRunPreview(counts, [], moved)
    if first:
        found.first = []
        for device in found.devices():
            found.first.append(device)
            if len(found.first) >= first:
                break
    return found
