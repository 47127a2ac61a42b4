"""The access decision engine: a pure function of its inputs, no database.

Order, first hit wins (DESIGN.md, "Access decision"):
1. mailbox has ActiveSync disabled          -> Blocked / Policy
2. DeviceId on the mailbox's blocked list    -> Blocked / Individual
3. DeviceId on the mailbox's allowed list    -> Allowed / Individual
4. rules, characteristic by characteristic (UserAgent, DeviceOS, DeviceModel,
   DeviceType); the first characteristic with a match decides, the most
   restrictive level inside it wins          -> level / DeviceRule
5. no DeviceInformation yet, rules on DeviceModel or DeviceOS exist or the
   default is Quarantine, inside the discovery window -> DeviceDiscovery
6. the default level                          -> level / Global

Rules are indexed so that a decision costs a dict lookup per characteristic
plus one combined regular expression per (characteristic, level) for the
globs, however many rules there are.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .choices import STATE_FOR_LEVEL, AccessLevel, AccessReason, AccessState, Characteristic

# Tried in this order; the first characteristic with a matching rule decides.
CHARACTERISTIC_ORDER = (
    Characteristic.USER_AGENT,
    Characteristic.DEVICE_OS,
    Characteristic.DEVICE_MODEL,
    Characteristic.DEVICE_TYPE,
)
# Most restrictive first.
LEVEL_ORDER = (AccessLevel.BLOCK, AccessLevel.QUARANTINE, AccessLevel.ALLOW)


@dataclass(frozen=True)
class Rule:
    id: int | None
    characteristic: str
    query_string: str
    access_level: str

    @property
    def is_glob(self) -> bool:
        return "*" in self.query_string


@dataclass(frozen=True)
class MailboxFacts:
    activesync_enabled: bool = True
    allowed_ids: frozenset[str] = frozenset()  # lower-cased
    blocked_ids: frozenset[str] = frozenset()  # lower-cased


@dataclass(frozen=True)
class DeviceFacts:
    device_id: str = ""
    device_type: str = ""
    device_model: str = ""
    device_os: str = ""
    user_agent: str = ""
    info_received: bool = False
    first_seen: datetime | None = None  # None: first contact, now


@dataclass(frozen=True)
class OrgFacts:
    default_access_level: str = AccessLevel.ALLOW
    discovery_window: timedelta = timedelta(minutes=15)


@dataclass(frozen=True)
class Decision:
    state: str
    reason: str
    rule: Rule | None = None

    @property
    def rule_id(self) -> int | None:
        return self.rule.id if self.rule else None


def glob_to_regex(query: str) -> str:
    """A query string with `*` as the only wildcard, as a regex fragment."""
    return ".*".join(re.escape(part) for part in query.lower().split("*"))


@dataclass
class _CharacteristicIndex:
    exact: dict[str, dict[str, Rule]] = field(default_factory=dict)  # value -> level -> rule
    globs: dict[str, list[Rule]] = field(default_factory=dict)  # level -> rules
    glob_regex: dict[str, re.Pattern] = field(default_factory=dict)  # level -> combined

    def add(self, rule: Rule) -> None:
        level = rule.access_level
        if rule.is_glob:
            self.globs.setdefault(level, []).append(rule)
        else:
            by_level = self.exact.setdefault(rule.query_string.lower(), {})
            # Two rules can only share a value when rule data is inconsistent;
            # keep the first (lowest id) so decisions stay deterministic.
            by_level.setdefault(level, rule)

    def compile(self) -> None:
        for level, rules in self.globs.items():
            pattern = "|".join(f"(?:{glob_to_regex(r.query_string)})" for r in rules)
            self.glob_regex[level] = re.compile(pattern, re.DOTALL)

    def match(self, value: str) -> Rule | None:
        """The most restrictive rule matching value, exact before glob."""
        if not value:
            return None
        value = value.lower()
        exact = self.exact.get(value, {})
        for level in LEVEL_ORDER:
            if level in exact:
                return exact[level]
            regex = self.glob_regex.get(level)
            if regex is not None and regex.fullmatch(value):
                return next(
                    r
                    for r in self.globs[level]
                    if re.fullmatch(glob_to_regex(r.query_string), value, re.DOTALL)
                )
        return None


class RuleSet:
    """Device access rules, indexed for matching."""

    def __init__(self, rules: Iterable[Rule] = ()):
        self.rules = sorted(rules, key=lambda r: (r.id is None, r.id or 0))
        self._index = {c: _CharacteristicIndex() for c in CHARACTERISTIC_ORDER}
        for rule in self.rules:
            self._index[rule.characteristic].add(rule)
        for index in self._index.values():
            index.compile()
        self.has_model_or_os_rules = any(
            r.characteristic in (Characteristic.DEVICE_MODEL, Characteristic.DEVICE_OS)
            for r in self.rules
        )

    def __len__(self) -> int:
        return len(self.rules)

    def match(self, device: DeviceFacts) -> Rule | None:
        values = {
            Characteristic.USER_AGENT: device.user_agent,
            Characteristic.DEVICE_OS: device.device_os,
            Characteristic.DEVICE_MODEL: device.device_model,
            Characteristic.DEVICE_TYPE: device.device_type,
        }
        for characteristic in CHARACTERISTIC_ORDER:
            rule = self._index[characteristic].match(values[characteristic])
            if rule is not None:
                return rule
        return None


def in_discovery(device: DeviceFacts, rules: RuleSet, org: OrgFacts, now: datetime) -> bool:
    if device.info_received:
        return False
    if not (rules.has_model_or_os_rules or org.default_access_level == AccessLevel.QUARANTINE):
        return False
    if device.first_seen is None:
        return True
    return now - device.first_seen < org.discovery_window


def decide(
    mailbox: MailboxFacts,
    device: DeviceFacts,
    rules: RuleSet,
    org: OrgFacts,
    now: datetime,
) -> Decision:
    if not mailbox.activesync_enabled:
        return Decision(AccessState.BLOCKED, AccessReason.POLICY)
    key = device.device_id.lower()
    if key in mailbox.blocked_ids:
        return Decision(AccessState.BLOCKED, AccessReason.INDIVIDUAL)
    if key in mailbox.allowed_ids:
        return Decision(AccessState.ALLOWED, AccessReason.INDIVIDUAL)
    rule = rules.match(device)
    if rule is not None:
        return Decision(STATE_FOR_LEVEL[rule.access_level], AccessReason.DEVICE_RULE, rule)
    if in_discovery(device, rules, org, now):
        return Decision(AccessState.DEVICE_DISCOVERY, AccessReason.GLOBAL)
    return Decision(STATE_FOR_LEVEL[org.default_access_level], AccessReason.GLOBAL)
