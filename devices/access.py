"""The access decision engine: a pure function of its inputs, no database.

Order, first hit wins (DESIGN.md, "Access decision"):
0. account disabled/removed in the directory -> Blocked / AccountDisabled
1. mailbox has ActiveSync disabled          -> Blocked / Policy
2. DeviceId on the mailbox's blocked list    -> Blocked / Individual
3. DeviceId on the mailbox's allowed list    -> Allowed / Individual
   DeviceId on the organisation-wide list     -> Allowed / OrgAllowList
4. rules, characteristic by characteristic (UserAgent, DeviceOS, DeviceModel,
   DeviceType); the first characteristic with a match decides, the most
   restrictive level inside it wins          -> level / DeviceRule
5. no DeviceInformation yet, rules on DeviceModel or DeviceOS exist or the
   default is Quarantine, inside the discovery window -> DeviceDiscovery
6. the default level                          -> level / Global
   (the mailbox's access policy's level when it has one, else the org's)

Rules are indexed so that a decision costs a dict lookup per characteristic
for exact query strings, plus the few globs that share the value's first or
last characters: the cost barely grows with the number of rules.
"""

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
    policy_id: int | None = None  # the mailbox's access policy, if any ...
    policy_level: str | None = None  # ... and its default level, used in place of the org's
    account_disabled: bool = False  # disabled or removed in the directory


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
    allowed_ids: frozenset[str] = frozenset()  # organisation-wide, lower-cased


@dataclass(frozen=True)
class Decision:
    state: str
    reason: str
    rule: Rule | None = None
    policy_id: int | None = None  # the access policy whose level decided (reason Global)

    @property
    def rule_id(self) -> int | None:
        return self.rule.id if self.rule else None


_BUCKET = 3  # characters of a glob's literal head (or tail) used to bucket it


@dataclass(frozen=True)
class _Glob:
    """A query string with `*` as its only wildcard, matched without regexes.

    Splitting on `*` and finding the pieces left to right is linear in the
    value's length; a regex such as `.*a.*a.*b` can backtrack exponentially on
    a user agent the device chooses.
    """

    rule: Rule
    head: str
    middle: tuple[str, ...]
    tail: str
    min_length: int

    @classmethod
    def of(cls, rule: Rule) -> "_Glob":
        parts = rule.query_string.lower().split("*")
        head, *middle, tail = parts
        middle = tuple(p for p in middle if p)
        return cls(rule, head, middle, tail, len(head) + len(tail) + sum(map(len, middle)))

    def matches(self, value: str) -> bool:
        if len(value) < self.min_length:
            return False
        if not (value.startswith(self.head) and value.endswith(self.tail)):
            return False
        pos, end = len(self.head), len(value) - len(self.tail)
        for part in self.middle:
            found = value.find(part, pos, end)
            if found < 0:
                return False
            pos = found + len(part)
        return True


@dataclass
class _GlobIndex:
    """The globs of one characteristic and level, bucketed by literal head or tail."""

    by_head: dict[str, list[_Glob]] = field(default_factory=dict)
    by_tail: dict[str, list[_Glob]] = field(default_factory=dict)
    loose: list[_Glob] = field(default_factory=list)

    def add(self, glob: _Glob) -> None:
        """Rules arrive in rule order (RuleSet sorts them): every bucket stays sorted."""
        if len(glob.head) >= _BUCKET:
            self.by_head.setdefault(glob.head[:_BUCKET], []).append(glob)
        elif len(glob.tail) >= _BUCKET:
            self.by_tail.setdefault(glob.tail[-_BUCKET:], []).append(glob)
        else:
            self.loose.append(glob)

    def match(self, value: str) -> Rule | None:
        """The matching rule with the lowest id, or None."""
        best = None
        for bucket in (
            self.by_head.get(value[:_BUCKET], ()),
            self.by_tail.get(value[-_BUCKET:], ()),
            self.loose,
        ):
            for glob in bucket:  # sorted: the first match is the bucket's best
                if glob.matches(value):
                    if best is None or _rule_order(glob.rule) < _rule_order(best):
                        best = glob.rule
                    break
        return best


def _rule_order(rule: Rule) -> tuple[bool, int]:
    return (rule.id is None, rule.id or 0)


@dataclass
class _CharacteristicIndex:
    exact: dict[str, dict[str, Rule]] = field(default_factory=dict)  # value -> level -> rule
    globs: dict[str, _GlobIndex] = field(default_factory=dict)  # level -> globs

    def add(self, rule: Rule) -> None:
        level = rule.access_level
        if rule.is_glob:
            self.globs.setdefault(level, _GlobIndex()).add(_Glob.of(rule))
        else:
            by_level = self.exact.setdefault(rule.query_string.lower(), {})
            # Two rules can only share a value when rule data is inconsistent;
            # keep the first (lowest id) so decisions stay deterministic.
            by_level.setdefault(level, rule)

    def freeze(self) -> None:
        """After the last add: the levels in order of restriction, with their globs."""
        self._levels = tuple((level, self.globs.get(level)) for level in LEVEL_ORDER)
        self.empty = not self.exact and not self.globs

    def match(self, value: str) -> Rule | None:
        """The most restrictive rule matching value, exact before glob."""
        if not value or self.empty:
            return None
        value = value.lower()
        exact = self.exact.get(value)
        for level, globs in self._levels:
            if exact and level in exact:
                return exact[level]
            if globs is not None:
                rule = globs.match(value)
                if rule is not None:
                    return rule
        return None


_ATTRIBUTE = {
    Characteristic.USER_AGENT: "user_agent",
    Characteristic.DEVICE_OS: "device_os",
    Characteristic.DEVICE_MODEL: "device_model",
    Characteristic.DEVICE_TYPE: "device_type",
}


class RuleSet:
    """Device access rules, indexed for matching."""

    def __init__(self, rules: Iterable[Rule] = ()):
        self.rules = sorted(rules, key=_rule_order)
        self._index = {c: _CharacteristicIndex() for c in CHARACTERISTIC_ORDER}
        for rule in self.rules:
            self._index[rule.characteristic].add(rule)
        for index in self._index.values():
            index.freeze()
        # (index, DeviceFacts attribute) in CHARACTERISTIC_ORDER, empty indexes left out
        self._order = tuple(
            (self._index[c], _ATTRIBUTE[c])
            for c in CHARACTERISTIC_ORDER
            if not self._index[c].empty
        )
        self._decisions: dict[int, Decision] = {}  # id(rule) -> its Decision
        self.has_model_or_os_rules = any(
            r.characteristic in (Characteristic.DEVICE_MODEL, Characteristic.DEVICE_OS)
            for r in self.rules
        )

    def __len__(self) -> int:
        return len(self.rules)

    def match(self, device: DeviceFacts) -> Rule | None:
        for index, attribute in self._order:
            rule = index.match(getattr(device, attribute))
            if rule is not None:
                return rule
        return None

    def decision(self, rule: Rule) -> "Decision":
        """The (immutable, shared) decision a matching rule makes."""
        found = self._decisions.get(id(rule))
        if found is None:
            found = Decision(STATE_FOR_LEVEL[rule.access_level], AccessReason.DEVICE_RULE, rule)
            self._decisions[id(rule)] = found
        return found


def in_discovery(
    device: DeviceFacts, rules: RuleSet, org: OrgFacts, now: datetime, default_level: str
) -> bool:
    if device.info_received:
        return False
    if not (rules.has_model_or_os_rules or default_level == AccessLevel.QUARANTINE):
        return False
    if device.first_seen is None:
        return True
    return now - device.first_seen < org.discovery_window


# Decisions are immutable: the ones that name no rule or policy are made once.
_BLOCKED_POLICY = Decision(AccessState.BLOCKED, AccessReason.POLICY)
_BLOCKED_ACCOUNT = Decision(AccessState.BLOCKED, AccessReason.ACCOUNT_DISABLED)
_BLOCKED_INDIVIDUAL = Decision(AccessState.BLOCKED, AccessReason.INDIVIDUAL)
_ALLOWED_INDIVIDUAL = Decision(AccessState.ALLOWED, AccessReason.INDIVIDUAL)
_ALLOWED_ORG_LIST = Decision(AccessState.ALLOWED, AccessReason.ORG_LIST)
_DISCOVERY = Decision(AccessState.DEVICE_DISCOVERY, AccessReason.GLOBAL)
_GLOBAL = {level: Decision(STATE_FOR_LEVEL[level], AccessReason.GLOBAL) for level in AccessLevel}


def decide(
    mailbox: MailboxFacts,
    device: DeviceFacts,
    rules: RuleSet,
    org: OrgFacts,
    now: datetime,
) -> Decision:
    if mailbox.account_disabled:
        return _BLOCKED_ACCOUNT
    if not mailbox.activesync_enabled:
        return _BLOCKED_POLICY
    key = device.device_id.lower()
    if key in mailbox.blocked_ids:
        return _BLOCKED_INDIVIDUAL
    if key in mailbox.allowed_ids:
        return _ALLOWED_INDIVIDUAL
    if key in org.allowed_ids:
        return _ALLOWED_ORG_LIST
    rule = rules.match(device)
    if rule is not None:
        return rules.decision(rule)
    level = mailbox.policy_level or org.default_access_level
    policy_id = mailbox.policy_id if mailbox.policy_level else None
    if in_discovery(device, rules, org, now, level):
        if policy_id is None:
            return _DISCOVERY
        return Decision(AccessState.DEVICE_DISCOVERY, AccessReason.GLOBAL, policy_id=policy_id)
    if policy_id is None:
        return _GLOBAL[level]
    return Decision(STATE_FOR_LEVEL[level], AccessReason.GLOBAL, policy_id=policy_id)
