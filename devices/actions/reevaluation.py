"""Set-based re-evaluation: bring every device in scope to the state the engine decides.

devices.evaluation groups the devices in scope into outcomes (one decision
each); this module moves the devices whose state, reason or rule differs, with
one UPDATE per outcome (in id chunks), one history row per moved device tied to
the action's audit event, and the transitions handed to devices.notify.
"""

from collections import Counter

from django.db.models import Count, QuerySet
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
    annotated, outcomes = plan(scope, rules, org_facts(org), now)
    moves = []
    for outcome in outcomes:
        moving = lock(annotated.filter(outcome.match).exclude(outcome.unchanged()))
        rows = list(
            moving.values_list(
                "pk", "access_state", "access_state_reason", "device_id", "mailbox__alias"
            )
        )
        if rows:
            moves.append((outcome.decision, rows))
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
    annotated, outcomes = plan(scope, rules, org_facts(org), now)
    counts: Counter = Counter()
    for outcome in outcomes:
        moving = annotated.filter(outcome.match).exclude(outcome.unchanged())
        by_state = (
            moving.order_by().values_list("access_state").annotate(n=Count("pk"))
        ).values_list("access_state", "n")
        for state, n in by_state:
            if state != outcome.decision.state:
                counts[(state, outcome.decision.state)] += n
    return counts


def describe_changes(counts: Counter) -> str:
    """E.g. '3 devices Quarantined -> Allowed' or 'no device changes state'."""
    if not counts:
        return "no device changes state"
    parts = []
    for (before, after), n in sorted(counts.items()):
        parts.append(f"{n} device{'s' if n != 1 else ''} {before} -> {after}")
    return ", ".join(parts)
