"""Access states, reasons and previews in plain words, for the pages and messages."""

from collections import Counter

from django.utils import timezone
from django.utils.translation import gettext, pgettext_lazy

from .. import access
from ..models import AccessReason, AccessState, AuditSource

_STATE_WORDS = {
    AccessState.ALLOWED: "allowed",
    AccessState.BLOCKED: "blocked",
    AccessState.QUARANTINED: "quarantined",
    AccessState.DEVICE_DISCOVERY: "in device discovery",
    AccessState.UNKNOWN: "undecided",
}


# The same words translated, for the sentences that are translated whole.
_STATE_WORDS_T = STATE_WORDS = {
    AccessState.ALLOWED: pgettext_lazy("access state", "allowed"),
    AccessState.BLOCKED: pgettext_lazy("access state", "blocked"),
    AccessState.QUARANTINED: pgettext_lazy("access state", "quarantined"),
    AccessState.DEVICE_DISCOVERY: pgettext_lazy("access state", "in device discovery"),
    AccessState.UNKNOWN: pgettext_lazy("access state", "undecided"),
}


def plural(n: int, word: str = "device", many: str = "") -> str:
    return f"{n} {word if n == 1 else many or word + 's'}"


def rule_words(rule) -> str:
    """'the rule "iPhone" on DeviceType (Allow)'."""
    return f'the rule "{rule.query_string}" on {rule.characteristic} ({rule.access_level})'


def _version_read(device) -> str:
    """': its DeviceOS 'iOS 16.7.10 20H350' is below 17' when a version rule decided."""
    rule = device.access_rule
    query = access.parse_version_query_or_none(rule.characteristic, rule.query_string)
    value = getattr(device, "device_os" if rule.characteristic == "DeviceOS" else "user_agent")
    if query is None or access.read_version(rule.characteristic, query.family, value) is None:
        return ""
    words = access.OPERATOR_WORDS[query.operator]
    return gettext(": its %(characteristic)s '%(value)s' is %(words)s %(version)s") % {
        "characteristic": rule.characteristic,
        "value": value,
        "words": words,
        "version": query.version,
    }


def explain(device, *, org=None) -> str:
    """Why the device is in its access state, in one sentence."""
    state, reason = device.access_state, device.access_state_reason
    alias = device.mailbox.alias
    if state == AccessState.UNKNOWN:
        return gettext("Not decided yet: the device has not synced since it was recorded.")
    if state == AccessState.DEVICE_DISCOVERY:
        if org:
            return gettext(
                "Waiting for the device to report its model and operating system "
                "(up to %(n)s minutes) so that the rules can decide."
            ) % {"n": org.discovery_window_minutes}
        return gettext(
            "Waiting for the device to report its model and operating system "
            "(up to a few minutes) so that the rules can decide."
        )
    if reason == AccessReason.POLICY:
        return gettext("Blocked because ActiveSync is turned off for the mailbox %(alias)s.") % {
            "alias": alias
        }
    if reason == AccessReason.ACCOUNT_DISABLED:
        return gettext(
            "Blocked because the account of the mailbox %(alias)s is disabled or was removed"
            " in the directory."
        ) % {"alias": alias}
    # The state's label: "Allowed", "Blocked", "Quarantined" in English, as before.
    words = {"state": AccessState(state).label if state in AccessState.values else state}
    if reason == AccessReason.INDIVIDUAL:
        if state == AccessState.ALLOWED:
            text = gettext(
                "%(state)s because its DeviceId is on the allowed list of the mailbox %(alias)s."
            )
        else:
            text = gettext(
                "%(state)s because its DeviceId is on the blocked list of the mailbox %(alias)s."
            )
        return text % {**words, "alias": alias}
    if reason == AccessReason.DEVICE_RULE:
        rule = device.access_rule
        if rule is not None:
            return gettext(
                '%(state)s by the rule "%(query)s" on %(characteristic)s (%(level)s)%(version)s.'
            ) % {
                **words,
                "query": rule.query_string,
                "characteristic": rule.characteristic,
                "level": rule.access_level,
                "version": _version_read(device),
            }
        return gettext("%(state)s by a device access rule that has since been removed.") % words
    if reason == AccessReason.UPGRADE:
        return gettext("%(state)s while the device's details are brought up to date.") % words
    if reason == AccessReason.ORG_LIST:
        return (
            gettext("%(state)s because its DeviceId is on the organisation-wide allowed list.")
            % words
        )
    policy = getattr(device, "access_policy", None) if device.access_policy_id else None
    if policy is not None:
        return gettext(
            "%(state)s by the access policy %(policy)s of the mailbox %(alias)s "
            "(default access level %(level)s)."
        ) % {**words, "policy": policy.name, "alias": alias, "level": policy.default_access_level}
    return gettext("%(state)s by the organisation's default access level for new devices.") % words


_OWNER_CHARACTERISTIC = {
    "DeviceType": "devices of the kind",
    "DeviceModel": "devices of the model",
    "DeviceOS": "devices running",
    "UserAgent": "the mail app",
}
_OWNER_LEVEL = {
    "Allow": "lets {what} sync",
    "Block": "blocks {what}",
    "Quarantine": "holds {what} until the help desk approves them",
}


def explain_for_owner(device, *, org=None) -> str:
    """Why the device is in its state, for its owner: no engine terms, no other mailbox."""
    state, reason = device.access_state, device.access_state_reason
    if state in (AccessState.UNKNOWN, AccessState.DEVICE_DISCOVERY):
        return explain(device, org=org)
    if reason == AccessReason.POLICY:
        return gettext("Mobile sync (ActiveSync) is turned off for your mailbox.")
    if reason == AccessReason.ACCOUNT_DISABLED:
        return gettext("Your account is disabled or was removed in the directory.")
    if reason == AccessReason.INDIVIDUAL:
        if state == AccessState.ALLOWED:
            return gettext("This device was approved for your mailbox.")
        return gettext("This device was blocked for your mailbox.")
    if reason == AccessReason.DEVICE_RULE:
        rule = device.access_rule
        if rule is None:
            return gettext("%(state)s by a rule your organisation has since removed.") % {
                "state": AccessState(state).label
            }
        what = (
            f"{_OWNER_CHARACTERISTIC.get(rule.characteristic, 'devices like')} {rule.query_string}"
        )
        verb = _OWNER_LEVEL.get(rule.access_level, "decides about {what}").format(what=what)
        return f"Your organisation {verb}."
    if reason == AccessReason.UPGRADE:
        return gettext("The device's details are being brought up to date.")
    if reason == AccessReason.ORG_LIST:
        return gettext("Your organisation approved this device.")
    level = org.default_access_level if org else ""
    policy = getattr(device, "access_policy", None) if device.access_policy_id else None
    if policy is not None:
        level = policy.default_access_level
    verb = _OWNER_LEVEL.get(level, "decides about {what}").format(what="new devices")
    if policy is not None:
        return f"The access policy {policy.name}, which covers your mailbox, {verb}."
    return f"Your organisation {verb}."


_SOURCE_WORDS = {
    AuditSource.UI: "by {actor} in the control panel",
    AuditSource.CLI: "by {actor} on the command line",
    AuditSource.API: "by {actor} through the REST API",
    AuditSource.GATE: "when the device synced",
    AuditSource.SYSTEM: "automatically",
    AuditSource.SELF_SERVICE: "by {actor}, the device's owner",
    AuditSource.DIRECTORY: "by the directory sync",
    AuditSource.MAIL_LINK: "by {actor} through the link in a mail",
}


def change_words(event) -> str:
    """Who made a change, in words: 'by helpdesk in the control panel', 'when the device synced'."""
    if event is None:
        return "automatically"
    return _SOURCE_WORDS.get(event.source, "by {actor}").format(actor=event.actor_name)


def state_change_words(before: str, after: str) -> str:
    """'was quarantined, now allowed' for a message, never 'Quarantined -> Allowed'."""
    words = {
        "before": _STATE_WORDS_T.get(before, before),
        "after": _STATE_WORDS_T.get(after, after),
    }
    if before == after:
        return gettext("still %(after)s") % words
    return gettext("was %(before)s, now %(after)s") % words


# Sources where a person acted; the gate and the system decide by rules and defaults.
PEOPLE = frozenset(
    {
        AuditSource.UI,
        AuditSource.CLI,
        AuditSource.API,
        AuditSource.SELF_SERVICE,
        AuditSource.MAIL_LINK,
    }
)

_ALREADY = {
    AccessReason.GLOBAL: "the organisation default",
    AccessReason.DEVICE_RULE: "a rule",
    AccessReason.ORG_LIST: "the organisation-wide DeviceId list",
    AccessReason.INDIVIDUAL: "the mailbox's list",
    AccessReason.UPGRADE: "an upgrade",
}


def local_time(value) -> str:
    return timezone.localtime(value).strftime(
        "%Y-%m-%d %H:%M %Z"
    )  # the zone named (issue 17, point 6)


def decided_by(device, change) -> str:
    """Who or what let the device in (or kept it out), in one line.

    `change` is the DeviceStateChange that put the device into its present state
    and reason (with its audit event), or None. "Approved by helpdesk (Control
    panel) on 2026-11-28 06:12, from Quarantined." when a person put it on the
    mailbox's list; otherwise the rule, policy, default or list that decides.
    """
    state, reason = device.access_state, device.access_state_reason
    if state not in (AccessState.ALLOWED, AccessState.BLOCKED) or reason in (
        AccessReason.POLICY,
        AccessReason.ACCOUNT_DISABLED,
    ):
        return ""
    event = change.event if change is not None else None
    person = event is not None and event.source in PEOPLE
    if reason == AccessReason.INDIVIDUAL:
        listed = "allowed" if state == AccessState.ALLOWED else "blocked"
        if not person:
            since = f" since {local_time(change.time)}" if change is not None else ""
            return f"{state} by the mailbox's {listed} list{since}."
        verb = "Approved" if state == AccessState.ALLOWED else "Blocked"
        text = (
            f"{verb} by {event.actor_name} ({event.get_source_display()}) "
            f"on {local_time(change.time)}"
        )
        if change.from_state != change.to_state:
            return f"{text}, from {AccessState(change.from_state).label}."
        already = _ALREADY.get(change.from_reason, change.from_reason)
        return f"{text}, when it was already {state.lower()} by {already}."
    if reason == AccessReason.DEVICE_RULE:
        rule = device.access_rule
        what = f"rule {rule.query_string} ({rule.characteristic})" if rule else "a removed rule"
    elif reason == AccessReason.ORG_LIST:
        what = "the organisation-wide DeviceId list"
    elif reason == AccessReason.GLOBAL and device.access_policy_id and device.access_policy:
        what = f"policy {device.access_policy.name}"
    elif reason == AccessReason.GLOBAL:
        what = "the organisation default"
    else:
        what = "an upgrade"
    text = f"{state} by {what}"
    if change is not None:
        text += f" since {local_time(change.time)}"
        if person:
            text += f", after a change by {event.actor_name} ({event.get_source_display()})"
    return text + "."


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
        if device.access_state_reason == AccessReason.ACCOUNT_DISABLED:
            return "Your account is disabled in the directory. Ask the help desk if you need it."
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
    """'was quarantined, now allowed' for one device's transition, or ''."""
    for t in transitions:
        if device_pk is None or t.device_pk == device_pk:
            return state_change_words(t.from_state, t.to_state)
    return ""


def device_label(device) -> str:
    """'iPhone ABC123': the family (or model) and the DeviceId."""
    kind = device.device_type or device.device_model or "Device"
    return f"{kind} {device.device_id}"


# Audit actions in words, beside their code (the filters and the API use the code).
ACTION_WORDS = {
    "api_token.create": "API token created",
    "api_token.revoke": "API token revoked",
    "demo.seed": "Demo data loaded",
    "device.allow": "Device allowed",
    "device.block": "Device blocked",
    "device.purge": "Stale quarantined device removed",
    "device.remove": "Partnership removed",
    "device.replace": "Device allowed, replacing an old one",
    "device.self_approve": "Device approved by its owner",
    "device.confirm": "Device confirmed by its owner",
    "device.not_mine": "Device blocked: not its owner's",
    "device.undo": "Allow or Block undone",
    "device.update": "Device details changed",
    "devices.discovery_ended": "Device discovery ended",
    "devices.grandfather": "Existing devices grandfathered",
    "devices.import": "Devices imported",
    "directory.sync": "Directory synchronised",
    "mailbox.create": "Mailbox created",
    "mailbox.policy": "Mailbox's access policy changed",
    "mailbox.update": "Mailbox changed",
    "mailboxes.import": "Mailboxes imported",
    "notification.resend": "Mail sent again",
    "org_device_id.add": "Organisation-wide DeviceId added",
    "org_device_id.remove": "Organisation-wide DeviceId removed",
    "org_settings.update": "Organisation settings changed",
    "policy.create": "Access policy created",
    "policy.delete": "Access policy deleted",
    "policy.update": "Access policy changed",
    "rule.create": "Rule created",
    "rule.delete": "Rule deleted",
    "rule.update": "Rule changed",
    "user.roles": "Roles changed",
}


def action_words(action: str) -> str:
    """'Device details changed' for device.update; an unknown code reads as itself."""
    return ACTION_WORDS.get(action, action)
