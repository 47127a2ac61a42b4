"""Access states, reasons and previews in plain words, for the pages and messages."""

from collections import Counter

from ..models import AccessReason, AccessState

_STATE_WORDS = {
    AccessState.ALLOWED: "allowed",
    AccessState.BLOCKED: "blocked",
    AccessState.QUARANTINED: "quarantined",
    AccessState.DEVICE_DISCOVERY: "in device discovery",
    AccessState.UNKNOWN: "undecided",
}


def plural(n: int, word: str = "device") -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def rule_words(rule) -> str:
    """'the rule "iPhone" on DeviceType (Allow)'."""
    return f'the rule "{rule.query_string}" on {rule.characteristic} ({rule.access_level})'


def explain(device, *, org=None) -> str:
    """Why the device is in its access state, in one sentence."""
    state, reason = device.access_state, device.access_state_reason
    alias = device.mailbox.alias
    if state == AccessState.UNKNOWN:
        return "Not decided yet: the device has not synced since it was recorded."
    if state == AccessState.DEVICE_DISCOVERY:
        window = f"{org.discovery_window_minutes} minutes" if org else "a few minutes"
        return (
            "Waiting for the device to report its model and operating system "
            f"(up to {window}) so that the rules can decide."
        )
    if reason == AccessReason.POLICY:
        return f"Blocked because ActiveSync is turned off for the mailbox {alias}."
    if reason == AccessReason.INDIVIDUAL:
        listed = "allowed" if state == AccessState.ALLOWED else "blocked"
        return f"{state} because its DeviceId is on the {listed} list of the mailbox {alias}."
    if reason == AccessReason.DEVICE_RULE:
        if device.access_rule is not None:
            return f"{state} by {rule_words(device.access_rule)}."
        return f"{state} by a device access rule that has since been removed."
    if reason == AccessReason.UPGRADE:
        return f"{state} while the device's details are brought up to date."
    return f"{state} by the organisation's default access level for new devices."


def next_steps(device, *, org=None) -> str:
    """What the device's owner can do about it."""
    state = device.access_state
    if state == AccessState.ALLOWED:
        return "Nothing to do: this device syncs your mail."
    if state == AccessState.QUARANTINED:
        return (
            "This device is waiting for the help desk to approve it. It will start to "
            "sync on its own once approved; you do not need to set it up again."
        )
    if state == AccessState.BLOCKED:
        if device.access_state_reason == AccessReason.POLICY:
            return "ActiveSync is turned off for your mailbox. Ask the help desk if you need it."
        return (
            "This device may not sync your mail. If you think that is a mistake, "
            "contact the help desk and quote its DeviceId."
        )
    if state == AccessState.DEVICE_DISCOVERY:
        return "Leave the device connected for a few minutes; it will be decided soon."
    return "Let the device sync once; it will then be decided."


_TRANSITION_VERBS = {
    (AccessState.QUARANTINED, AccessState.ALLOWED): "releases {n} quarantined",
    (AccessState.QUARANTINED, AccessState.BLOCKED): "blocks {n} quarantined",
    (AccessState.ALLOWED, AccessState.QUARANTINED): "puts {n} allowed {devices} in quarantine",
    (AccessState.ALLOWED, AccessState.BLOCKED): "blocks {n} allowed",
    (AccessState.BLOCKED, AccessState.ALLOWED): "unblocks {n}",
    (AccessState.BLOCKED, AccessState.QUARANTINED): "moves {n} blocked {devices} to quarantine",
    (AccessState.DEVICE_DISCOVERY, AccessState.ALLOWED): "allows {n} {devices} in discovery",
    (AccessState.DEVICE_DISCOVERY, AccessState.BLOCKED): "blocks {n} {devices} in discovery",
    (AccessState.DEVICE_DISCOVERY, AccessState.QUARANTINED): (
        "puts {n} {devices} in discovery in quarantine"
    ),
}


def describe_counts(counts: Counter) -> list[str]:
    """{(from, to): n} as phrases: ['releases 12 quarantined devices', ...]."""
    phrases = []
    for (before, after), n in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        if not n or before == after:
            continue
        devices = "device" if n == 1 else "devices"
        template = _TRANSITION_VERBS.get((before, after))
        if template is None:
            phrases.append(
                f"moves {n} {devices} from {_STATE_WORDS.get(before, before)} "
                f"to {_STATE_WORDS.get(after, after)}"
            )
        elif "{devices}" in template:
            phrases.append(template.format(n=n, devices=devices))
        else:
            phrases.append(f"{template.format(n=n)} {devices}")
    return phrases


def sentence(phrases: list[str], *, none: str = "changes no existing device") -> str:
    if not phrases:
        return none
    if len(phrases) == 1:
        return phrases[0]
    return ", ".join(phrases[:-1]) + " and " + phrases[-1]


def transition_words(transitions, device_pk=None) -> str:
    """'Quarantined -> Allowed' for one device's transition, or 'no change'."""
    for t in transitions:
        if device_pk is None or t.device_pk == device_pk:
            return f"{t.from_state} -> {t.to_state}"
    return ""


def device_label(device) -> str:
    """'iPhone ABC123': the family (or model) and the DeviceId."""
    kind = device.device_type or device.device_model or "Device"
    return f"{kind} {device.device_id}"
