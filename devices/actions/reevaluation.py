"""Set-based re-evaluation: bring every device in scope to the state the engine decides.

devices.evaluation decides each profile in scope once and groups the devices
whose state, reason, rule or policy differs from their profile's decision; this
module selects and locks those devices, moves them with one UPDATE per
decision (in id chunks), writes one history row per moved device tied to the
action's audit event, and hands the transitions to devices.notify. A preview
needs the groups only.
"""

from collections import Counter, defaultdict

from django.db.models import QuerySet
from django.utils import timezone

from .. import access, notify
from ..evaluation import load_rules, org_facts, plan
from ..models import DeviceStateChange, MobileDevice, OrgSettings
from .base import CHUNK, EventSource, Transition, lock


def reevaluate(
    scope: QuerySet,
    event: EventSource,
    *,
    rules: access.RuleSet | None = None,
    org: OrgSettings | None = None,
) -> list[Transition]:
    """Re-decide every device in scope; call inside the action's transaction.

    `event` is the action's audit event, or a callable (an AuditAfter) that
    writes it once the summary of the changes is known, or None.
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
            by_decision[decisions[key]].append(tuple(row))
    moves = list(by_decision.items())
    if callable(event):
        counts = Counter(
            (row[1], d.state) for d, rows in moves for row in rows if row[1] != d.state
        )
        event = event(describe_changes(counts) if counts else "")
    transitions: list[Transition] = []
    for d, rows in moves:
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
            batch_size=CHUNK,
        )
        # state_changed_at moves only with the state: a new reason or rule
        # does not restart a device's time in quarantine.
        moved = [pk for pk, state, *_ in rows if state != d.state]
        reasoned = [pk for pk, state, *_ in rows if state == d.state]
        for pks, extra in ((moved, {"state_changed_at": now}), (reasoned, {})):
            for i in range(0, len(pks), CHUNK):
                MobileDevice.objects.filter(pk__in=pks[i : i + CHUNK]).update(
                    access_state=d.state,
                    access_state_reason=d.reason,
                    access_rule_id=d.rule_id,
                    access_policy_id=d.policy_id,
                    **extra,
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


def describe_changes(counts: Counter) -> str:
    """E.g. '3 devices Quarantined -> Allowed' or 'no device changes state'."""
    if not counts:
        return "no device changes state"
    parts = []
    for (before, after), n in sorted(counts.items()):
        parts.append(f"{n} device{'s' if n != 1 else ''} {before} -> {after}")
    return ", ".join(parts)
