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
   (exact, glob and version rules alike; at one level an exact rule is
   recorded before a glob, a glob before a version comparison)
5. no DeviceInformation yet, rules on DeviceModel or DeviceOS exist or the
   default is Quarantine, inside the discovery window -> DeviceDiscovery
6. the default level                          -> level / Global
   (the mailbox's access policy's level when it has one, else the org's)

Rules are indexed so that a decision costs a dict lookup per characteristic
for exact query strings, plus the few globs that share the value's first or
last characters, plus (DeviceOS and UserAgent only, when they have version
rules) a read of the value's version, remembered per value, and a bisect among
its family's bounds: the cost barely grows with the number of rules.

Version rules ("FAMILY OP VERSION", e.g. "iOS < 17"; OP one of <, <=, >, >=):
the device's version is the first number that follows the family in its
value, the family matched case-insensitively as whole words.
- DeviceOS: words are separated by spaces, "/" and brackets; the family's words,
  then a word that starts with a number. "iOS 16.7.10 20H350" is iOS 16.7.10,
  "SAMSUNG SM-G991B/Android 13" is Android 13, "Windows Phone 8.10.14219" is
  Windows Phone 8.10.14219; "iPadOS 17.4" is not iOS.
- UserAgent: RFC 9110's product/version, the family being a whole product
  name: "Apple-iPhone15C2/2104.61" is Apple-iPhone15C2 2104.61 (the mail
  client's build, not the iOS version: compare iOS versions on DeviceOS).
Versions compare as integers part by part, missing parts counting as 0 (17.0
equals 17, 8.10 is above 8.9), and letters after a number are ignored (Android
"12L" is 12).
"""

import operator
import re
from bisect import bisect_left
from collections.abc import Iterable, Iterator
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


class QueryStringError(ValueError):
    """A query string that reads as a version comparison but is not a valid one."""


VERSION_CHARACTERISTICS = (Characteristic.DEVICE_OS, Characteristic.USER_AGENT)
VERSION_OPERATORS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
OPERATOR_WORDS = {"<": "below", "<=": "at most", ">": "above", ">=": "at least"}
_MAX_PARTS, _MAX_DIGITS = 8, 9

# Anything with <, >, <=-like signs, or "FAMILY = 17"-like, is meant as a comparison.
_LOOKS_LIKE = re.compile(r"[<>\u2264\u2265]|(?:^|\s)(?:==?|!=)\s*\d")
_COMPARISON = re.compile(
    r"(?P<family>[^<>=!\u2264\u2265]*?)\s*(?P<op>[<>=!\u2264\u2265]+)\s*(?P<version>.*)", re.S
)
_FAMILY = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9 ._-]*[A-Za-z0-9])?")
_VERSION = re.compile(r"[0-9]+(?:\.[0-9]+)*")
_EXAMPLE = "for example 'iOS < 17' or 'Android <= 12.1'"


def version_key(text: str) -> tuple[int, ...]:
    """'16.7.10' -> (16, 7, 10); trailing zeros dropped, so that 17.0 == 17."""
    parts = [int(p) for p in text.split(".")]
    while parts and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


_NUMBER_KEYS: dict[str, tuple[int, ...] | None] = {}  # a few hundred in a fleet; bounded
_UNREAD = object()


def _number_key(word: str) -> tuple[int, ...] | None:
    """The version a word starting with a number holds: '13.0.0' -> (13,), '12l' -> (12,)."""
    key = _NUMBER_KEYS.get(word, _UNREAD)
    if key is _UNREAD:
        key = _read_number(word)
        if len(_NUMBER_KEYS) >= 4096:
            _NUMBER_KEYS.clear()
        _NUMBER_KEYS[word] = key
    return key


def _read_number(word: str) -> tuple[int, ...] | None:
    """None for a number no version has (and int() would refuse past 4,300 digits)."""
    digits = word.replace(".", "")
    if not (digits.isdecimal() and digits.isascii()) or word.endswith(".") or ".." in word:
        word = _NUMBER.match(word).group()
    parts = word.split(".")
    if len(parts) > 4 * _MAX_PARTS or any(len(p) > 2 * _MAX_DIGITS for p in parts):
        return None
    return version_key(word)


@dataclass(frozen=True)
class VersionQuery:
    """A parsed version rule, "FAMILY OP VERSION"."""

    family: str  # as typed, runs of spaces made one
    operator: str  # one of VERSION_OPERATORS
    version: str  # as typed, e.g. "17" or "16.4.1"

    def __str__(self) -> str:
        """The canonical query string, stored for the rule: 'iOS < 17'."""
        return f"{self.family} {self.operator} {self.version}"

    @property
    def bound(self) -> tuple[int, ...]:
        return version_key(self.version)

    def holds(self, version: tuple[int, ...]) -> bool:
        """Not on the hot path: _FamilyRules works the answers out in advance."""
        return VERSION_OPERATORS[self.operator](version, self.bound)


def parse_version_query(characteristic: str, query_string: str) -> VersionQuery | None:
    """The version comparison in a query string; None when it is not meant as one.

    Raises QueryStringError, with a message for the person who typed it, when it
    looks like a comparison (it holds <, > or a lone =) but is not a valid one.
    """
    query = query_string.strip()
    if not _LOOKS_LIKE.search(query):
        return None
    if characteristic not in VERSION_CHARACTERISTICS:
        raise QueryStringError(
            f"{query!r}: version comparisons work on DeviceOS and UserAgent only, "
            f"not on {characteristic}."
        )
    m = _COMPARISON.fullmatch(query)
    if m is None:
        raise QueryStringError(
            f"{query!r} is not a version rule: write FAMILY OP VERSION, {_EXAMPLE}."
        )
    family, op, version = " ".join(m["family"].split()), m["op"], m["version"].strip()
    if op not in VERSION_OPERATORS:
        hint = {"\u2264": " (write <= for \u2264)", "\u2265": " (write >= for \u2265)"}.get(op, "")
        raise QueryStringError(
            f"{op!r} is not a version operator{hint}: use <, <=, > or >=, {_EXAMPLE}."
        )
    if not family:
        raise QueryStringError(
            f"{query!r}: a version rule names a family before the operator, {_EXAMPLE}."
        )
    if "*" in family:
        raise QueryStringError(
            f"{query!r}: a version rule cannot hold *; name one family, {_EXAMPLE}."
        )
    if not _FAMILY.fullmatch(family):
        raise QueryStringError(
            f"{family!r} is not a family name: use letters, digits, spaces and - _ ., "
            "for example iOS, Android, Windows Phone."
        )
    if characteristic == Characteristic.DEVICE_OS and family.split()[-1][0].isdigit():
        raise QueryStringError(
            f"{family!r} ends in a number, but the number after the family is the version: "
            f"name the family by its words alone, {_EXAMPLE}."
        )
    if characteristic == Characteristic.USER_AGENT and " " in family:
        raise QueryStringError(
            f"{family!r}: a UserAgent version rule names one product, without spaces, as "
            "the user agent writes it before its '/', for example 'Outlook-iOS-Android < 4'."
        )
    if not version:
        raise QueryStringError(f"{query!r}: a version must follow the operator, {_EXAMPLE}.")
    if any(c in version for c in "<>=!\u2264\u2265"):
        raise QueryStringError(f"{query!r}: a version rule has one operator, {_EXAMPLE}.")
    parts = version.split(".")
    if (
        not _VERSION.fullmatch(version)
        or len(parts) > _MAX_PARTS
        or any(len(p) > _MAX_DIGITS for p in parts)
    ):
        raise QueryStringError(
            f"{version!r} is not a version: use numbers separated by dots "
            f"(at most {_MAX_PARTS} of them), {_EXAMPLE}."
        )
    return VersionQuery(family, op, version)


def parse_version_query_or_none(characteristic: str, query_string: str) -> VersionQuery | None:
    """The comparison a saved rule makes; None for exact and glob rules (and oddities)."""
    try:
        return parse_version_query(characteristic, query_string)
    except QueryStringError:
        return None  # saved before version rules existed: it stays an exact/glob rule


def _version_query(rule: Rule) -> VersionQuery | None:
    return parse_version_query_or_none(rule.characteristic, rule.query_string)


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


def _first(a: Rule | None, b: Rule | None) -> Rule | None:
    """The rule that comes first in rule order (lowest id); either may be None."""
    if a is None or (b is not None and _rule_order(b) < _rule_order(a)):
        return b
    return a


# Reading a version from a lower-cased value: split it into words (str.translate and
# str.split; the only regex looks for a rare separator). DeviceOS words are separated
# by spaces, "/" and brackets, and a family is one or more whole words followed by a
# word that starts with a number. A UserAgent is split at spaces and brackets into
# products, and a family is a whole product name followed by "/" and a number.
_OS_SEPARATORS = str.maketrans({c: " " for c in "/()[];,:"})
_UA_SEPARATORS = str.maketrans({c: " " for c in "()[];,"})
_OTHER_OS_SEPARATORS = re.compile(r"[)\[\];,:]")
_UA_SEPARATOR = re.compile(r"[()\[\];,]")
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)*")


def _os_sites(value: str) -> Iterator[tuple[str, str, list[str], int]]:
    """(last word, the number after it, the words, the number's place), wherever a word
    starts with a number."""
    if "/" in value or "(" in value or _OTHER_OS_SEPARATORS.search(value):
        value = value.translate(_OS_SEPARATORS)
    words = value.split()
    for i in range(1, len(words)):
        if "0" <= words[i][0] <= "9":  # ASCII only: "²".isdigit(), and int("²") fails
            yield words[i - 1], words[i], words, i


def _ua_sites(value: str) -> Iterator[tuple[str, str, list[str], int]]:
    for product in value.translate(_UA_SEPARATORS).split():
        name, slash, version = product.partition("/")
        if slash and "0" <= version[:1] <= "9":
            yield name, version, [name], 1


def _family_words(characteristic: str, family: str) -> tuple[str, ...]:
    if characteristic == Characteristic.USER_AGENT:
        return (family.lower(),)
    return tuple(family.lower().translate(_OS_SEPARATORS).split())


_SITES = {Characteristic.DEVICE_OS: _os_sites, Characteristic.USER_AGENT: _ua_sites}


def read_version(
    characteristic: str, family: str, value: str
) -> tuple[str, tuple[int, ...]] | None:
    """The first version that follows `family` in `value`, as ('16.7.10', (16, 7, 10)),
    or None. For explanations and tests; _VersionIndex does the same for many families."""
    sites = _SITES.get(characteristic)
    words = _family_words(characteristic, family) if sites else ()
    if not words:
        return None
    n = len(words)
    for last, number, value_words, i in sites(value.lower()):
        if last == words[-1] and tuple(value_words[i - n : i]) == words:
            text = _NUMBER.match(number).group()
            version = _number_key(number)
            return (text, version) if version is not None else None
    return None


class _FamilyRules:
    """The version rules on one family, answered by bisecting their bounds.

    The bounds cut the versions into regions (below the first bound, equal to it,
    between it and the next, ...); in each region every rule either holds or does
    not, so the first rule of each level that holds is worked out once, here.
    """

    def __init__(self, words: tuple[str, ...]):
        self.words = words
        self.rules: list[tuple[VersionQuery, Rule]] = []  # in rule order

    def freeze(self) -> None:
        """Region 2i lies strictly between bounds[i - 1] and bounds[i], region 2i + 1 is
        bounds[i] itself. A "<" or "<=" rule holds in the regions below some end, a ">"
        or ">=" rule in those from some start on: running minimums over ends and starts
        give every region's first rule per level in one pass (no rules x regions)."""
        self.bounds = sorted({query.bound for query, _ in self.rules})
        position = {bound: j for j, bound in enumerate(self.bounds)}
        n = 2 * len(self.bounds) + 1
        self.regions = [{} for _ in range(n)]
        for level in LEVEL_ORDER:
            ending: list[Rule | None] = [None] * (n + 1)  # holds in regions < index
            starting: list[Rule | None] = [None] * (n + 1)  # holds in regions >= index
            for query, rule in self.rules:  # rule order: the first in a slot is its best
                if rule.access_level != level:
                    continue
                j = position[query.bound]
                slots, at = {
                    "<": (ending, 2 * j + 1),
                    "<=": (ending, 2 * j + 2),
                    ">": (starting, 2 * j + 2),
                    ">=": (starting, 2 * j + 1),
                }[query.operator]
                if slots[at] is None:
                    slots[at] = rule
            best = [None] * n
            running = None
            for r in range(n - 1, -1, -1):  # rules ending above r hold in r
                running = _first(running, ending[r + 1])
                best[r] = running
            running = None
            for r in range(n):  # rules starting at or below r hold in r
                running = _first(running, starting[r])
                rule = _first(best[r], running)
                if rule is not None:
                    self.regions[r][level] = rule

    def match(self, version: tuple[int, ...]) -> dict[str, Rule]:
        i = bisect_left(self.bounds, version)
        if i < len(self.bounds) and self.bounds[i] == version:
            return self.regions[2 * i + 1]
        return self.regions[2 * i]


# Version reads remembered per value: a fleet reports a few thousand distinct OS and
# user-agent strings, and reading one costs more than the rest of a decision. Bounded
# (a device chooses its user agent): full, it starts again. 0 turns it off (bench/).
VERSION_MEMO_SIZE = 4096


class _VersionIndex:
    """The version rules of one characteristic, by family, looked up by its last word."""

    def __init__(self, characteristic: str):
        self.characteristic = characteristic
        self.by_word: dict[str, list[_FamilyRules]] = {}  # last word -> families
        self._memo: dict[str, dict[str, Rule] | None] = {}

    def add(self, query: VersionQuery, rule: Rule) -> None:
        words = _family_words(self.characteristic, query.family)
        families = self.by_word.setdefault(words[-1], [])
        for family in families:
            if family.words == words:
                break
        else:
            family = _FamilyRules(words)
            families.append(family)
        family.rules.append((query, rule))

    def freeze(self) -> None:
        for families in self.by_word.values():
            for family in families:
                family.freeze()

    def match(self, value: str) -> dict[str, Rule] | None:
        """level -> the first (lowest id) version rule of that level that holds for value."""
        found = self._memo.get(value, _UNREAD)
        if found is _UNREAD:
            found = self._read(value)
            if VERSION_MEMO_SIZE:
                if len(self._memo) >= VERSION_MEMO_SIZE:
                    self._memo.clear()
                self._memo[value] = found
        return found

    def _read(self, value: str) -> dict[str, Rule] | None:
        # _os_sites / _ua_sites, inlined: this runs for every value not yet remembered.
        by_word = self.by_word
        if self.characteristic == Characteristic.USER_AGENT:
            if "/" not in value:
                return None
            if _UA_SEPARATOR.search(value):
                value = value.translate(_UA_SEPARATORS)
            sites = []
            for product in value.split():
                name, slash, version = product.partition("/")
                if slash and name in by_word and "0" <= version[:1] <= "9":
                    sites.append((by_word[name], version, None, 0))
        else:
            if "/" in value or "(" in value or _OTHER_OS_SEPARATORS.search(value):
                value = value.translate(_OS_SEPARATORS)
            words = value.split()
            sites = [
                (by_word[words[i - 1]], words[i], words, i)
                for i in range(1, len(words))
                if words[i - 1] in by_word and "0" <= words[i][0] <= "9"
            ]
        found = None
        seen = []  # families read: only the first number after a family counts
        for families, number, words, i in sites:
            for family in families:
                n = len(family.words)
                if family in seen or (n > 1 and tuple(words[i - n : i]) != family.words):
                    continue
                seen.append(family)
                version = _number_key(number)
                hit = family.match(version) if version is not None else None
                if not hit:
                    continue
                if found is None:
                    found = hit  # shared, never changed: copied below before merging
                else:
                    found = dict(found)
                    for level, rule in hit.items():
                        if level not in found or _rule_order(rule) < _rule_order(found[level]):
                            found[level] = rule
        return found


@dataclass
class _CharacteristicIndex:
    characteristic: str
    exact: dict[str, dict[str, Rule]] = field(default_factory=dict)  # value -> level -> rule
    globs: dict[str, _GlobIndex] = field(default_factory=dict)  # level -> globs
    versions: _VersionIndex | None = None

    def add(self, rule: Rule) -> None:
        level = rule.access_level
        query = _version_query(rule)
        if query is not None:
            if self.versions is None:
                self.versions = _VersionIndex(self.characteristic)
            self.versions.add(query, rule)
        elif rule.is_glob:
            self.globs.setdefault(level, _GlobIndex()).add(_Glob.of(rule))
        else:
            by_level = self.exact.setdefault(rule.query_string.lower(), {})
            # Two rules can only share a value when rule data is inconsistent;
            # keep the first (lowest id) so decisions stay deterministic.
            by_level.setdefault(level, rule)

    def freeze(self) -> None:
        """After the last add: the levels in order of restriction, with their globs."""
        self._levels = tuple((level, self.globs.get(level)) for level in LEVEL_ORDER)
        if self.versions is not None:
            self.versions.freeze()
        self.empty = not self.exact and not self.globs and self.versions is None

    def match(self, value: str) -> Rule | None:
        """The most restrictive rule matching value; at one level exact, then glob, then version."""
        if not value or self.empty:
            return None
        value = value.lower()
        exact = self.exact.get(value)
        versions = self.versions.match(value) if self.versions is not None else None
        for level, globs in self._levels:
            if exact and level in exact:
                return exact[level]
            if globs is not None:
                rule = globs.match(value)
                if rule is not None:
                    return rule
            if versions and level in versions:
                return versions[level]
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
        self._index = {c: _CharacteristicIndex(c) for c in CHARACTERISTIC_ORDER}
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


def describe_match(rule: Rule, value: str) -> str:
    """Why `rule` matches `value`, in one line, e.g.
    "DeviceOS 'iOS 16.7.10 20H350' is below 17: rule 'iOS < 17'"."""
    query = _version_query(rule)
    if query is None:
        how = "matches" if rule.is_glob else "equals"
        return f"{rule.characteristic} '{value}' {how} rule '{rule.query_string}'"
    words = OPERATOR_WORDS[query.operator]
    return f"{rule.characteristic} '{value}' is {words} {query.version}: rule '{rule.query_string}'"


def version_verdicts(rules: "RuleSet", characteristic: str, value: str) -> list[str]:
    """Every version rule on `characteristic` whose family `value` names, and what it
    says: "DeviceOS 'iOS 17.1' (iOS 17.1) is not below 17: rule 'iOS < 17'"."""
    out = []
    for rule in rules.rules:
        query = _version_query(rule) if rule.characteristic == characteristic else None
        read = read_version(characteristic, query.family, value) if query else None
        if read is None:
            continue
        verdict = "is" if query.holds(read[1]) else "is not"
        out.append(
            f"{characteristic} '{value}' ({query.family} {read[0]}) {verdict} "
            f"{OPERATOR_WORDS[query.operator]} {query.version}: rule '{rule.query_string}'"
        )
    return out


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
