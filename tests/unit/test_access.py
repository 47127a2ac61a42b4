"""The decision engine (devices.access.decide), table-driven, without a database.

The decision order in DESIGN.md ("Access decision") is a contract: every step is
checked on its own and against each later step it must beat.
"""

import itertools
import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.access import (
    CHARACTERISTIC_ORDER,
    Decision,
    DeviceFacts,
    MailboxFacts,
    OrgFacts,
    Rule,
    RuleSet,
    decide,
)
from devices.choices import AccessLevel, AccessReason, AccessState, Characteristic

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)

UA = Characteristic.USER_AGENT
OS = Characteristic.DEVICE_OS
MODEL = Characteristic.DEVICE_MODEL
TYPE = Characteristic.DEVICE_TYPE

ALLOW, BLOCK, QUARANTINE = AccessLevel.ALLOW, AccessLevel.BLOCK, AccessLevel.QUARANTINE
ALLOWED, BLOCKED = AccessState.ALLOWED, AccessState.BLOCKED
QUARANTINED, DISCOVERY = AccessState.QUARANTINED, AccessState.DEVICE_DISCOVERY
POLICY, INDIVIDUAL = AccessReason.POLICY, AccessReason.INDIVIDUAL
DEVICE_RULE, GLOBAL = AccessReason.DEVICE_RULE, AccessReason.GLOBAL

IPHONE = {
    "device_id": "ApplF17ABC123",
    "device_type": "iPhone",
    "device_model": "iPhone14,2",
    "device_os": "iOS 17.1.2 21B101",
    "user_agent": "Apple-iPhone14C2/2104.100",
    "info_received": True,
    "first_seen": NOW - timedelta(days=3),
}


def rule(rule_id, characteristic, query, level):
    return Rule(id=rule_id, characteristic=characteristic, query_string=query, access_level=level)


def run(*, rules=(), mailbox=None, device=None, org=None, now=NOW):
    return decide(
        MailboxFacts(**(mailbox or {})),
        DeviceFacts(**{**IPHONE, **(device or {})}),
        RuleSet(rules),
        OrgFacts(**(org or {})),
        now,
    )


def outcome(decision):
    return decision.state, decision.reason, decision.rule_id


# ---------------------------------------------------------------------------
# the decision order, step by step and each step against the later ones

NEW_DEVICE = {"info_received": False, "first_seen": NOW - timedelta(minutes=1)}
ORDER_CASES = [
    # 1. ActiveSync disabled
    ("disabled", {"activesync_enabled": False}, {}, [], {}, (BLOCKED, POLICY, None)),
    (
        "disabled-beats-allowed-list",
        {"activesync_enabled": False, "allowed_ids": frozenset({"applf17abc123"})},
        {},
        [],
        {},
        (BLOCKED, POLICY, None),
    ),
    (
        "disabled-beats-blocked-list",
        {"activesync_enabled": False, "blocked_ids": frozenset({"applf17abc123"})},
        {},
        [],
        {},
        (BLOCKED, POLICY, None),
    ),
    (
        "disabled-beats-allow-rule",
        {"activesync_enabled": False},
        {},
        [rule(1, TYPE, "iPhone", ALLOW)],
        {},
        (BLOCKED, POLICY, None),
    ),
    (
        "disabled-beats-discovery",
        {"activesync_enabled": False},
        NEW_DEVICE,
        [],
        {"default_access_level": QUARANTINE},
        (BLOCKED, POLICY, None),
    ),
    # 2. blocked list
    (
        "blocked-list",
        {"blocked_ids": frozenset({"applf17abc123"})},
        {},
        [],
        {},
        (BLOCKED, INDIVIDUAL, None),
    ),
    (
        "blocked-list-beats-allow-rule",
        {"blocked_ids": frozenset({"applf17abc123"})},
        {},
        [rule(1, UA, "Apple-*", ALLOW), rule(2, TYPE, "iPhone", ALLOW)],
        {},
        (BLOCKED, INDIVIDUAL, None),
    ),
    (
        "blocked-list-beats-discovery",
        {"blocked_ids": frozenset({"applf17abc123"})},
        NEW_DEVICE,
        [],
        {"default_access_level": QUARANTINE},
        (BLOCKED, INDIVIDUAL, None),
    ),
    (
        "blocked-list-beats-default",
        {"blocked_ids": frozenset({"applf17abc123"})},
        {},
        [],
        {"default_access_level": ALLOW},
        (BLOCKED, INDIVIDUAL, None),
    ),
    # 3. allowed list
    (
        "allowed-list",
        {"allowed_ids": frozenset({"applf17abc123"})},
        {},
        [],
        {"default_access_level": BLOCK},
        (ALLOWED, INDIVIDUAL, None),
    ),
    (
        "allowed-list-beats-block-rule",
        {"allowed_ids": frozenset({"applf17abc123"})},
        {},
        [rule(1, UA, "*", BLOCK), rule(2, TYPE, "iPhone", BLOCK)],
        {},
        (ALLOWED, INDIVIDUAL, None),
    ),
    (
        "allowed-list-beats-discovery",
        {"allowed_ids": frozenset({"applf17abc123"})},
        NEW_DEVICE,
        [rule(1, MODEL, "Nokia*", BLOCK)],
        {"default_access_level": QUARANTINE},
        (ALLOWED, INDIVIDUAL, None),
    ),
    (
        "allowed-list-beats-quarantine-default",
        {"allowed_ids": frozenset({"applf17abc123"})},
        {},
        [],
        {"default_access_level": QUARANTINE},
        (ALLOWED, INDIVIDUAL, None),
    ),
    (
        "other-devices-on-the-lists-do-not-count",
        {"allowed_ids": frozenset({"other"}), "blocked_ids": frozenset({"another"})},
        {},
        [],
        {"default_access_level": QUARANTINE},
        (QUARANTINED, GLOBAL, None),
    ),
    # 4. rules
    ("rule-allow", {}, {}, [rule(7, TYPE, "iPhone", ALLOW)], {}, (ALLOWED, DEVICE_RULE, 7)),
    ("rule-block", {}, {}, [rule(7, TYPE, "iPhone", BLOCK)], {}, (BLOCKED, DEVICE_RULE, 7)),
    (
        "rule-quarantine",
        {},
        {},
        [rule(7, TYPE, "iPhone", QUARANTINE)],
        {},
        (QUARANTINED, DEVICE_RULE, 7),
    ),
    (
        "rule-beats-discovery",
        {},
        NEW_DEVICE,
        [rule(7, TYPE, "iPhone", ALLOW)],
        {"default_access_level": QUARANTINE},
        (ALLOWED, DEVICE_RULE, 7),
    ),
    (
        "rule-beats-block-default",
        {},
        {},
        [rule(7, OS, "iOS *", ALLOW)],
        {"default_access_level": BLOCK},
        (ALLOWED, DEVICE_RULE, 7),
    ),
    (
        "rule-beats-allow-default",
        {},
        {},
        [rule(7, MODEL, "iPhone14,2", QUARANTINE)],
        {"default_access_level": ALLOW},
        (QUARANTINED, DEVICE_RULE, 7),
    ),
    (
        "non-matching-rule-falls-through",
        {},
        {},
        [rule(7, TYPE, "Android", BLOCK)],
        {},
        (ALLOWED, GLOBAL, None),
    ),
    # 5. discovery
    (
        "discovery-beats-default",
        {},
        NEW_DEVICE,
        [],
        {"default_access_level": QUARANTINE},
        (DISCOVERY, GLOBAL, None),
    ),
    # 6. default
    ("default-allow", {}, {}, [], {"default_access_level": ALLOW}, (ALLOWED, GLOBAL, None)),
    ("default-block", {}, {}, [], {"default_access_level": BLOCK}, (BLOCKED, GLOBAL, None)),
    (
        "default-quarantine",
        {},
        {},
        [],
        {"default_access_level": QUARANTINE},
        (QUARANTINED, GLOBAL, None),
    ),
]


@pytest.mark.parametrize(
    "mailbox,device,rules,org,expected",
    [case[1:] for case in ORDER_CASES],
    ids=[case[0] for case in ORDER_CASES],
)
def test_decision_order(mailbox, device, rules, org, expected):
    assert outcome(run(mailbox=mailbox, device=device, rules=rules, org=org)) == expected


def test_the_default_records_no_rule():
    decision = run(rules=[rule(1, TYPE, "Android", BLOCK)])
    assert decision == Decision(ALLOWED, GLOBAL, None)
    assert decision.rule is None and decision.rule_id is None


def test_the_deciding_rule_is_recorded_on_the_decision():
    deciding = rule(42, MODEL, "iPhone1*", QUARANTINE)
    decision = run(rules=[rule(41, MODEL, "Pixel*", BLOCK), deciding, rule(43, TYPE, "x", ALLOW)])
    assert decision.rule == deciding
    assert decision.rule_id == 42
    assert decision == Decision(QUARANTINED, DEVICE_RULE, deciding)


# ---------------------------------------------------------------------------
# rule precedence between characteristics: UserAgent > DeviceOS > DeviceModel > DeviceType

DEVICE_VALUE = {
    UA: IPHONE["user_agent"],
    OS: IPHONE["device_os"],
    MODEL: IPHONE["device_model"],
    TYPE: IPHONE["device_type"],
}


def test_characteristic_order_is_the_contract():
    assert CHARACTERISTIC_ORDER == (UA, OS, MODEL, TYPE)


@pytest.mark.parametrize(
    "earlier,later,earlier_level,later_level",
    [
        (earlier, later, levels[0], levels[1])
        for earlier, later in itertools.combinations(CHARACTERISTIC_ORDER, 2)
        for levels in itertools.permutations((ALLOW, BLOCK, QUARANTINE), 2)
    ],
)
def test_the_earlier_characteristic_decides(earlier, later, earlier_level, later_level):
    # Exact and glob, in both id orders: neither restrictiveness nor id may matter.
    for earlier_query, later_query in [
        (DEVICE_VALUE[earlier], DEVICE_VALUE[later]),
        (DEVICE_VALUE[earlier][:3] + "*", "*"),
    ]:
        for ids in [(1, 2), (2, 1)]:
            winner = rule(ids[0], earlier, earlier_query, earlier_level)
            loser = rule(ids[1], later, later_query, later_level)
            decision = run(rules=[loser, winner])
            assert decision.rule == winner
            assert decision.reason == DEVICE_RULE


def test_an_allow_rule_on_useragent_beats_a_block_rule_on_devicetype():
    decision = run(rules=[rule(1, TYPE, "iPhone", BLOCK), rule(2, UA, "Apple-iPhone*", ALLOW)])
    assert outcome(decision) == (ALLOWED, DEVICE_RULE, 2)


def test_a_later_characteristic_decides_when_the_earlier_ones_do_not_match():
    rules = [
        rule(1, UA, "Outlook*", BLOCK),
        rule(2, OS, "Android*", BLOCK),
        rule(3, MODEL, "Pixel*", BLOCK),
        rule(4, TYPE, "iPhone", QUARANTINE),
    ]
    assert outcome(run(rules=rules)) == (QUARANTINED, DEVICE_RULE, 4)


# ---------------------------------------------------------------------------
# several matches inside one characteristic: Block > Quarantine > Allow

SAME_CHARACTERISTIC_CASES = [
    ("exact-allow+glob-block", [(1, "iPhone14,2", ALLOW), (2, "iPhone*", BLOCK)], 2),
    ("exact-block+glob-allow", [(1, "iPhone*", ALLOW), (2, "iPhone14,2", BLOCK)], 2),
    ("glob-quarantine+exact-allow", [(1, "iPhone14,2", ALLOW), (2, "*14,2", QUARANTINE)], 2),
    ("exact-quarantine+glob-allow", [(1, "*", ALLOW), (2, "IPHONE14,2", QUARANTINE)], 2),
    ("glob-block+glob-quarantine", [(1, "i*", QUARANTINE), (2, "*2", BLOCK)], 2),
    ("glob-quarantine+glob-allow", [(1, "*Phone*", QUARANTINE), (2, "i*", ALLOW)], 1),
    (
        "all-three",
        [(1, "iPhone14,2", ALLOW), (2, "iPhone*", QUARANTINE), (3, "*,2", BLOCK)],
        3,
    ),
    (
        "non-matching-block-does-not-count",
        [(1, "iPhone14,2", ALLOW), (2, "Pixel*", BLOCK), (3, "iPhone14,3", BLOCK)],
        1,
    ),
    ("same-level-exact-before-glob", [(1, "iPhone*", BLOCK), (2, "iPhone14,2", BLOCK)], 2),
    ("same-level-globs-lowest-id", [(5, "*2", BLOCK), (3, "i*", BLOCK)], 3),
]


@pytest.mark.parametrize(
    "rules,winner",
    [case[1:] for case in SAME_CHARACTERISTIC_CASES],
    ids=[case[0] for case in SAME_CHARACTERISTIC_CASES],
)
def test_the_most_restrictive_match_inside_a_characteristic_wins(rules, winner):
    decision = run(rules=[rule(i, MODEL, q, level) for i, q, level in rules])
    assert decision.rule_id == winner
    assert decision.reason == DEVICE_RULE


# ---------------------------------------------------------------------------
# case-insensitivity


@pytest.mark.parametrize("device_id", ["ApplF17ABC123", "APPLF17ABC123", "applf17abc123"])
def test_device_ids_compare_case_insensitively(device_id):
    listed = frozenset({"applf17abc123"})
    assert outcome(run(mailbox={"allowed_ids": listed}, device={"device_id": device_id})) == (
        ALLOWED,
        INDIVIDUAL,
        None,
    )
    assert outcome(run(mailbox={"blocked_ids": listed}, device={"device_id": device_id})) == (
        BLOCKED,
        INDIVIDUAL,
        None,
    )


@pytest.mark.parametrize(
    "characteristic,query,device",
    [
        (TYPE, "IPHONE", {}),
        (TYPE, "iphone", {}),
        (TYPE, "iPhone", {"device_type": "IPHONE"}),
        (MODEL, "IPHONE14,2", {"device_model": "iphone14,2"}),
        (OS, "ios 17*", {}),
        (OS, "*B101", {"device_os": "iOS 17.1.2 21b101"}),
        (UA, "APPLE-IPHONE*", {}),
        (UA, "*/2104.100", {"user_agent": "APPLE-IPHONE14C2/2104.100"}),
    ],
)
def test_rule_queries_and_device_values_compare_case_insensitively(characteristic, query, device):
    assert outcome(run(rules=[rule(1, characteristic, query, BLOCK)], device=device)) == (
        BLOCKED,
        DEVICE_RULE,
        1,
    )


# ---------------------------------------------------------------------------
# exact queries and globs

MATCHING = [
    # exact: the whole value, nothing else
    ("iPhone14,2", "iPhone14,2", True),
    ("iPhone14", "iPhone14,2", False),
    ("Phone14,2", "iPhone14,2", False),
    ("iPhone14,2 ", "iPhone14,2", False),
    # `*` anywhere
    ("iPhone*", "iPhone14,2", True),
    ("*14,2", "iPhone14,2", True),
    ("i*2", "iPhone14,2", True),
    ("*Phone1*", "iPhone14,2", True),
    ("iPhone*", "MyiPhone", False),
    ("*Phone", "iPhone14,2", False),
    ("iPhone*", "iPhone", True),  # `*` matches nothing too
    # several `*`
    ("a*b*c", "aXXbYYc", True),
    ("a*b*c", "abc", True),
    ("a*b*c", "acb", False),
    ("*a*b*", "xxaxxbxx", True),
    ("**", "anything", True),
    # `*` alone matches any non-empty value
    ("*", "x", True),
    ("*", "iPhone14,2", True),
    # regular expression metacharacters are literal
    ("iOS 17.*", "iOS 17.1", True),
    ("iOS 17.*", "iOS 1701", False),
    ("a.c", "abc", False),
    ("a.c", "a.c", True),
    ("a+", "aa", False),
    ("a+", "a+", True),
    ("(x", "(x", True),
    ("*(1)*", "v(1)z", True),
    ("*(1)*", "v1z", False),
    ("[ab]", "a", False),
    ("[ab]", "[ab]", True),
    ("^a$", "a", False),
    ("^a$", "^a$", True),
    ("a|b", "a", False),
    ("a|b", "a|b", True),
    ("a\\d", "a1", False),
    ("a\\d", "a\\d", True),
    ("{1}", "{1}", True),
    # `?` is literal, not a single-character wildcard
    ("x?", "xy", False),
    ("x?", "x?", True),
    ("i?hone*", "iPhone14,2", False),
    ("*?", "why?", True),
    # a value with a line break is still one value
    ("a*", "a\nb", True),
    ("a", "a\n", False),
]


@pytest.mark.parametrize("query,value,matches", MATCHING)
def test_query_string_matching(query, value, matches):
    decision = run(rules=[rule(1, MODEL, query, BLOCK)], device={"device_model": value})
    expected = (BLOCKED, DEVICE_RULE, 1) if matches else (ALLOWED, GLOBAL, None)
    assert outcome(decision) == expected


@pytest.mark.parametrize("characteristic", CHARACTERISTIC_ORDER)
@pytest.mark.parametrize("query", ["*", "**", ""])
def test_empty_device_values_never_match(characteristic, query):
    empty = {"user_agent": "", "device_os": "", "device_model": "", "device_type": ""}
    decision = run(rules=[rule(1, characteristic, query or "*", BLOCK)], device=empty)
    assert outcome(decision) == (ALLOWED, GLOBAL, None)


def test_an_empty_value_does_not_stop_later_characteristics():
    device = {"user_agent": "", "device_os": ""}
    rules = [rule(1, UA, "*", BLOCK), rule(2, OS, "*", BLOCK), rule(3, TYPE, "iPhone", ALLOW)]
    assert outcome(run(rules=rules, device=device)) == (ALLOWED, DEVICE_RULE, 3)


# ---------------------------------------------------------------------------
# DeviceDiscovery

DISCOVERY_CASES = [
    # (id, device, rules, org, inside discovery?)
    ("model-rule", NEW_DEVICE, [rule(1, MODEL, "Pixel*", BLOCK)], {}, True),
    ("os-rule", NEW_DEVICE, [rule(1, OS, "Android*", ALLOW)], {}, True),
    ("default-quarantine", NEW_DEVICE, [], {"default_access_level": QUARANTINE}, True),
    (
        "first-seen-none-is-inside",
        {"info_received": False, "first_seen": None},
        [rule(1, MODEL, "Pixel*", BLOCK)],
        {},
        True,
    ),
    (
        "window-expired",
        {"info_received": False, "first_seen": NOW - timedelta(minutes=16)},
        [],
        {"default_access_level": QUARANTINE},
        False,
    ),
    (
        "window-just-expired",
        {"info_received": False, "first_seen": NOW - timedelta(minutes=15)},
        [],
        {"default_access_level": QUARANTINE},
        False,
    ),
    (
        "just-inside-the-window",
        {"info_received": False, "first_seen": NOW - timedelta(minutes=14, seconds=59)},
        [],
        {"default_access_level": QUARANTINE},
        True,
    ),
    (
        "longer-window",
        {"info_received": False, "first_seen": NOW - timedelta(minutes=50)},
        [],
        {"default_access_level": QUARANTINE, "discovery_window": timedelta(hours=1)},
        True,
    ),
    (
        "zero-window",
        {"info_received": False, "first_seen": NOW},
        [],
        {"default_access_level": QUARANTINE, "discovery_window": timedelta(0)},
        False,
    ),
    (
        "info-arrived",
        {"info_received": True, "first_seen": NOW - timedelta(minutes=1)},
        [rule(1, MODEL, "Pixel*", BLOCK)],
        {"default_access_level": QUARANTINE},
        False,
    ),
    (
        "only-type-and-useragent-rules-default-allow",
        NEW_DEVICE,
        [rule(1, TYPE, "Android", BLOCK), rule(2, UA, "Outlook*", BLOCK)],
        {"default_access_level": ALLOW},
        False,
    ),
    ("no-rules-default-allow", NEW_DEVICE, [], {"default_access_level": ALLOW}, False),
    ("no-rules-default-block", NEW_DEVICE, [], {"default_access_level": BLOCK}, False),
]


@pytest.mark.parametrize(
    "device,rules,org,inside",
    [case[1:] for case in DISCOVERY_CASES],
    ids=[case[0] for case in DISCOVERY_CASES],
)
def test_device_discovery(device, rules, org, inside):
    decision = run(device=device, rules=rules, org=org)
    default = org.get("default_access_level", ALLOW)
    if inside:
        assert outcome(decision) == (DISCOVERY, GLOBAL, None)
    else:
        expected_state = {ALLOW: ALLOWED, BLOCK: BLOCKED, QUARANTINE: QUARANTINED}[default]
        assert outcome(decision) == (expected_state, GLOBAL, None)


# ---------------------------------------------------------------------------
# a large rule set


def test_ten_thousand_rules_still_decide_correctly():
    def characteristic_of(i):
        return CHARACTERISTIC_ORDER[i % 4]

    def level_of(i):
        return (ALLOW, QUARANTINE, BLOCK)[i % 3]

    def query_of(i):
        return f"Model{i:05d}" if i % 2 else f"Family{i:05d}-*"

    rules = [rule(i, characteristic_of(i), query_of(i), level_of(i)) for i in range(1, 10_001)]
    rules.append(rule(20_001, MODEL, "Z*", ALLOW))
    rules.append(rule(20_002, MODEL, "*-final", BLOCK))
    rule_set = RuleSet(reversed(rules))
    assert len(rule_set) == 10_002

    def decide_for(**device):
        device.setdefault("info_received", True)
        return outcome(decide(MailboxFacts(), DeviceFacts(**device), rule_set, OrgFacts(), NOW))

    def expected(i):
        return STATE_FOR[level_of(i)], DEVICE_RULE, i

    # odd ids are exact (DeviceOS or DeviceType), even ids globs (UserAgent or DeviceModel)
    assert [characteristic_of(i) for i in (9_997, 9_999, 10_000, 2)] == [OS, TYPE, UA, MODEL]
    assert decide_for(device_os="MODEL09997") == expected(9_997)
    assert decide_for(device_type="model09999") == expected(9_999)
    assert decide_for(user_agent="family10000-Outlook") == expected(10_000)
    assert decide_for(device_model="Family00002-17.1") == expected(2)
    # UserAgent beats DeviceType and DeviceModel, even across 10,000 rules
    assert decide_for(device_type="model09999", user_agent="Family10000-x") == expected(10_000)
    assert decide_for(device_model="Zed-final", user_agent="Family09996-x") == expected(9_996)
    # the two late DeviceModel globs both match: Block wins
    assert decide_for(device_model="Zed-final") == (BLOCKED, DEVICE_RULE, 20_002)
    assert decide_for(device_model="Zed") == (ALLOWED, DEVICE_RULE, 20_001)
    # exact queries do not match longer values, globs keep their prefix
    assert decide_for(device_os="Model099970") == (ALLOWED, GLOBAL, None)
    assert decide_for(device_model="xFamily00002-1") == (ALLOWED, GLOBAL, None)
    # DeviceModel rules exist: a device without DeviceInformation is in discovery
    assert decide_for(device_type="Nothing", info_received=False, first_seen=NOW) == (
        DISCOVERY,
        GLOBAL,
        None,
    )


# ---------------------------------------------------------------------------
# property: the indexed engine agrees with a plain scan over all rules

SEVERITY = {BLOCK: 0, QUARANTINE: 1, ALLOW: 2}
STATE_FOR = {ALLOW: ALLOWED, BLOCK: BLOCKED, QUARANTINE: QUARANTINED}


def reference_matches(query: str, value: str) -> bool:
    if not value:
        return False
    if "*" not in query:
        return query.lower() == value.lower()
    pattern = ".*".join(re.escape(part) for part in query.lower().split("*"))
    return re.fullmatch(pattern, value.lower(), re.DOTALL) is not None


def reference_decide(mailbox, device, rules, org, now):
    """The decision order of DESIGN.md, written as plainly as possible."""
    if not mailbox.activesync_enabled:
        return BLOCKED, POLICY, None
    device_id = device.device_id.lower()
    if device_id in {i.lower() for i in mailbox.blocked_ids}:
        return BLOCKED, INDIVIDUAL, None
    if device_id in {i.lower() for i in mailbox.allowed_ids}:
        return ALLOWED, INDIVIDUAL, None
    values = {
        UA: device.user_agent,
        OS: device.device_os,
        MODEL: device.device_model,
        TYPE: device.device_type,
    }
    for characteristic in (UA, OS, MODEL, TYPE):
        hits = [
            r
            for r in rules
            if r.characteristic == characteristic
            and reference_matches(r.query_string, values[characteristic])
        ]
        if hits:
            # most restrictive; then exact before glob; then the oldest rule
            best = min(hits, key=lambda r: (SEVERITY[r.access_level], "*" in r.query_string, r.id))
            return STATE_FOR[best.access_level], DEVICE_RULE, best.id
    model_or_os = any(r.characteristic in (MODEL, OS) for r in rules)
    if (
        not device.info_received
        and (model_or_os or org.default_access_level == QUARANTINE)
        and (device.first_seen is None or now - device.first_seen < org.discovery_window)
    ):
        return DISCOVERY, GLOBAL, None
    return STATE_FOR[org.default_access_level], GLOBAL, None


# Few, short pieces, so that random queries and values actually meet: values from a
# small pool or random text, queries that are a pool value (exact, any case), pieces
# joined with `*` (globs, `*` alone, several `*`), or random text.
PIECES = ["", "a", "A", "b", "ab", ".", "+", "(", "?", "\\", " "]
POOL = ["a", "A", "ab", "aB", "a.b", "a+b", "(a)", "a?b", "a\\b", "b a", "ba"]
values = st.one_of(st.sampled_from(["", *POOL]), st.text(alphabet="aAbB.+(?\\ ", max_size=5))
queries = st.one_of(
    st.sampled_from(POOL).flatmap(lambda v: st.sampled_from([v, v.upper(), v.lower()])),
    st.lists(st.sampled_from(PIECES), min_size=2, max_size=4).map("*".join),
    st.text(alphabet="aAbB.+(?\\*", min_size=1, max_size=5),
)
device_ids = st.sampled_from(["dev1", "DEV1", "Dev2", "dev3"])
levels_st = st.sampled_from([ALLOW, BLOCK, QUARANTINE])


@st.composite
def rule_sets(draw, characteristics=CHARACTERISTIC_ORDER, max_size=8):
    specs = draw(
        st.lists(st.tuples(st.sampled_from(characteristics), queries, levels_st), max_size=max_size)
    )
    ids = draw(st.permutations(range(1, len(specs) + 1)))
    return [rule(i, c, q, level) for i, (c, q, level) in zip(ids, specs, strict=True)]


mailboxes = st.builds(
    MailboxFacts,
    activesync_enabled=st.sampled_from([True, True, True, False]),
    allowed_ids=st.frozensets(st.sampled_from(["dev1", "dev2"]), max_size=2),
    blocked_ids=st.frozensets(st.sampled_from(["dev2", "dev3"]), max_size=2),
)
devices = st.builds(
    DeviceFacts,
    device_id=device_ids,
    device_type=values,
    device_model=values,
    device_os=values,
    user_agent=values,
    info_received=st.booleans(),
    first_seen=st.one_of(
        st.none(), st.integers(min_value=0, max_value=12).map(lambda m: NOW - timedelta(minutes=m))
    ),
)
orgs = st.builds(
    OrgFacts,
    default_access_level=levels_st,
    discovery_window=st.integers(min_value=0, max_value=10).map(lambda m: timedelta(minutes=m)),
)


@settings(max_examples=1000, deadline=None)
@given(mailbox=mailboxes, device=devices, rules=rule_sets(), org=orgs)
def test_decide_agrees_with_a_plain_scan_over_all_rules(mailbox, device, rules, org):
    expected = reference_decide(mailbox, device, rules, org, NOW)
    assert outcome(decide(mailbox, device, RuleSet(rules), org, NOW)) == expected


@settings(max_examples=300, deadline=None)
@given(device=devices, rules=rule_sets())
def test_rule_matching_agrees_with_a_plain_scan(device, rules):
    # Mailbox and org out of the way: only the rule index is exercised.
    mailbox = MailboxFacts()
    org = OrgFacts(default_access_level=ALLOW)
    device = DeviceFacts(**{**device.__dict__, "info_received": True})
    expected = reference_decide(mailbox, device, rules, org, NOW)
    assert outcome(decide(mailbox, device, RuleSet(rules), org, NOW)) == expected


@settings(max_examples=500, deadline=None)
@given(value=values, rules=rule_sets(characteristics=(MODEL,), max_size=12))
def test_matching_inside_one_characteristic_agrees_with_a_plain_scan(value, rules):
    # Every rule competes for one value: restrictiveness, exact vs glob, ids.
    device = DeviceFacts(device_id="d", device_model=value, info_received=True)
    org = OrgFacts(default_access_level=ALLOW)
    expected = reference_decide(MailboxFacts(), device, rules, org, NOW)
    assert outcome(decide(MailboxFacts(), device, RuleSet(rules), org, NOW)) == expected
