"""Where state changes meet notifications.

devices.actions calls `state_changed` inside the transaction that changed the
state. This module turns transitions into ready-made mail contexts for the
`notifications` app, which never imports `devices`.

Until the notifications issue is built, `_queue` is the empty hook it fills.
"""

from devices.models import AccessState

NOTIFYING_STATES = frozenset({AccessState.QUARANTINED, AccessState.BLOCKED})


def state_changed(transitions) -> None:
    """Called by devices.actions, in the same transaction, for every re-evaluation."""
    notifying = [
        t for t in transitions if t.to_state in NOTIFYING_STATES and t.from_state != t.to_state
    ]
    if notifying:
        _queue(notifying)


def _queue(transitions) -> None:
    # Filled by the notifications work: build contexts, write outbox rows.
    pass
