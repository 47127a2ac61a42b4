"""Version rules ("iOS < 17") in the decision engine, table-driven and with hypothesis,
without a database: reading versions from what real devices send, parsing query
strings, and their place in the precedence (devices.access)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices import access
from devices.access import (
    DeviceFacts,
    QueryStringError,
    Rule,
    RuleSet,
    parse_version_query,
    read_version,
    version_key,
)
from devices.choices import AccessLevel, Characteristic

OS, UA = Characteristic.DEVICE_OS, Characteristic.USER_AGENT
MODEL, TYPE = Characteristic.DEVICE_MODEL, Characteristic.DEVICE_TYPE
ALLOW, BLOCK, QUARANTINE = AccessLevel.ALLOW, AccessLevel.BLOCK, AccessLevel.QUARANTINE

# (characteristic, family, value as the device sends it, the version read, or None)
READS = [
    (OS, "iOS", "iOS 17.1.2 21B101", "17.1.2"),
    (OS, "iOS", "iOS 16.7.10 20H350", "16.7.10"),
    (OS, "ios", "IOS 17.0", "17.0"),
    (OS, "iOS", "iPadOS 17.4", None),  # another family
    (OS, "iPadOS", "iPadOS 17.4", "17.4"),
    (OS, "iPadOS", "iPadOS 16.7.8 20H343", "16.7.8"),
    (OS, "Android", "Android 14", "14"),
    (OS, "Android", "Android 13.0.0", "13.0.0"),
    (OS, "Android", "Android 12L", "12"),  # letters after the number are ignored
    (OS, "Android", "SAMSUNG SM-G991B/Android 13", "13"),
    (OS, "Android", "SAMSUNG SM-S918B/Android 14 OneUI 6.1", "14"),
    (OS, "OneUI", "SAMSUNG SM-S918B/Android 14 OneUI 6.1", "6.1"),
    (OS, "One UI", "Android 13 (One UI 5.1)", "5.1"),
    (OS, "Windows Phone", "Windows Phone 8.10.14219", "8.10.14219"),
    (OS, "Windows Phone", "Windows  Phone 8.0", "8.0"),
    (OS, "Windows", "Windows Phone 8.10.14219", None),  # "Phone" is not a version
    (OS, "Windows", "Windows 10.0.19045", "10.0.19045"),
    (OS, "Android", "Androidx 14", None),  # whole words only
    (OS, "Android", "Android", None),
    (OS, "Android", "", None),
    (OS, "iOS", "iOS \u00b2", None),  # "²".isdigit(), but it is no version
    (OS, "iOS", "iOS \u0661\u0667", None),  # Arabic-Indic digits: no version either
    (OS, "iOS", "iOS 17\u00b2", "17"),
    (OS, "iOS", "iOS " + "9" * 5000, None),  # no version has it; int() would refuse it
    (UA, "Apple-iPhone15C2", "Apple-iPhone15C2/2104.61", "2104.61"),
    (UA, "apple-iphone15c2", "APPLE-IPHONE15C2/2104.61", "2104.61"),
    (UA, "Apple-iPhone", "Apple-iPhone15C2/2104.61", None),  # the whole product name
    (UA, "iPhone15C2", "Apple-iPhone15C2/2104.61", None),
    (UA, "Outlook-iOS-Android", "Outlook-iOS-Android/1.0", "1.0"),
    (UA, "SAMSUNG-SM-G991B", "SAMSUNG-SM-G991B/101.1301", "101.1301"),
    (UA, "MSFT-WIN-3", "MSFT-WIN-3/10.0.19045", "10.0.19045"),
    (UA, "Android", "Mozilla/5.0 (Linux; Android 14)", None),  # no "/" after it
    (UA, "Android-Mail", "Mozilla/5.0 (Android-Mail/7.5; x)", "7.5"),
]


@pytest.mark.parametrize("characteristic, family, value, expected", READS)
def test_it_reads_versions_as_real_devices_send_them(characteristic, family, value, expected):
    read = read_version(characteristic, family, value)
    assert (read[0] if read else None) == expected


@pytest.mark.parametrize(
    "text, key",
    [("17", (17,)), ("17.0", (17,)), ("17.0.0", (17,)), ("16.7.10", (16, 7, 10)),
     ("8.10", (8, 10)), ("0", ())],
)  # fmt: skip
def test_versions_compare_as_numbers_and_trailing_zeros_do_not_count(text, key):
    assert version_key(text) == key


# (rule, value, matches?)
COMPARISONS = [
    ("iOS < 17", "iOS 16.7.10 20H350", True),
    ("iOS < 17", "iOS 17.0", False),
    ("iOS < 17", "iOS 17.1.2 21B101", False),
    ("iOS <= 17", "iOS 17.0", True),
    ("iOS <= 17", "iOS 17.0.1", False),
    ("iOS > 16.7", "iOS 16.7.10 20H350", True),
    ("iOS >= 17.0", "iOS 17", True),
    ("IOS < 17", "ios 16.4", True),  # the family matches in any case
    ("iOS < 17", "iPadOS 16.4", False),
    ("iPadOS < 17", "iPadOS 16.4", True),
    ("Android <= 12", "Android 12L", True),
    ("Android < 12", "Android 12L", False),
    ("Android < 13", "SAMSUNG SM-G991B/Android 13", False),
    ("Android < 14", "SAMSUNG SM-G991B/Android 13", True),
    ("Android >= 13", "Android 13.0.0", True),
    ("OneUI < 6", "SAMSUNG SM-S918B/Android 14 OneUI 5.1", True),
    ("Windows Phone < 8.10.15000", "Windows Phone 8.10.14219", True),
    ("Windows Phone < 8.9", "Windows Phone 8.10.14219", False),  # 10 > 9
]
UA_COMPARISONS = [
    ("Apple-iPhone15C2 < 2105", "Apple-iPhone15C2/2104.61", True),
    ("Apple-iPhone15C2 > 2104.6", "Apple-iPhone15C2/2104.61", True),  # 61 > 6
    ("Outlook-iOS-Android >= 2", "Outlook-iOS-Android/1.0", False),
]


@pytest.mark.parametrize("query, value, matches", COMPARISONS)
def test_deviceos_version_rules_compare_part_by_part(query, value, matches):
    rules = RuleSet([Rule(1, OS, query, BLOCK)])
    assert (rules.match(DeviceFacts(device_os=value)) is not None) is matches


@pytest.mark.parametrize("query, value, matches", UA_COMPARISONS)
def test_useragent_version_rules_compare_the_products_version(query, value, matches):
    rules = RuleSet([Rule(1, UA, query, BLOCK)])
    assert (rules.match(DeviceFacts(user_agent=value)) is not None) is matches


@pytest.mark.parametrize(
    "typed, saved",
    [
        ("iOS < 17", "iOS < 17"),
        ("ios<17", "ios < 17"),
        ("  Android   <=12.1 ", "Android <= 12.1"),
        ("Windows   Phone >= 8.10", "Windows Phone >= 8.10"),
    ],
)
def test_a_comparison_is_saved_in_one_form(typed, saved):
    assert str(parse_version_query(OS, typed)) == saved


@pytest.mark.parametrize("query", ["iPhone", "iOS 17*", "*", "iOS 17.1.2 21B101", "a-b"])
def test_exact_and_glob_query_strings_are_not_comparisons(query):
    assert parse_version_query(OS, query) is None


@pytest.mark.parametrize(
    "characteristic, query, says",
    [
        (OS, "iOS =< 17", "'=<' is not a version operator"),
        (OS, "iOS => 17", "'=>' is not a version operator"),
        (OS, "iOS << 17", "'<<' is not a version operator"),
        (OS, "iOS <> 17", "'<>' is not a version operator"),
        (OS, "iOS == 17", "'==' is not a version operator"),
        (OS, "iOS = 17", "'=' is not a version operator"),
        (OS, "iOS != 17", "'!=' is not a version operator"),
        (OS, "iOS \u2264 17", "write <= for"),
        (OS, "< 17", "names a family before the operator"),
        (OS, "iOS <", "a version must follow the operator"),
        (OS, "iOS < 17a", "'17a' is not a version"),
        (OS, "iOS < 17.", "'17.' is not a version"),
        (OS, "iOS < seventeen", "'seventeen' is not a version"),
        (OS, "iOS < \u0661\u0667", "is not a version"),
        (OS, "iOS < 1.2.3.4.5.6.7.8.9", "is not a version"),
        (OS, "iOS < 17 < 18", "has one operator"),
        (OS, "iOS* < 17", "cannot hold *"),
        (OS, "i(OS) < 17", "is not a family name"),
        (OS, "Windows 10 < 22", "ends in a number"),
        (UA, "Outlook iOS < 4", "one product, without spaces"),
        (MODEL, "SM-G991B < 3", "DeviceOS and UserAgent only"),
        (TYPE, "iPhone >= 15", "DeviceOS and UserAgent only"),
    ],
)
def test_bad_comparisons_are_refused_with_a_clear_message(characteristic, query, says):
    with pytest.raises(QueryStringError) as refused:
        parse_version_query(characteristic, query)
    assert says in str(refused.value)


# Precedence: within a characteristic the most restrictive level wins, exact, glob or
# version alike; at one level the exact rule, then the glob, then the version rule is
# recorded. Characteristics keep their order (UserAgent before DeviceOS ...).
IOS16 = DeviceFacts(
    device_type="iPhone",
    device_model="iPhone14C2",
    device_os="iOS 16.7.10 20H350",
    user_agent="Apple-iPhone14C2/2006.1",
    info_received=True,
)


@pytest.mark.parametrize(
    "rules, winner",
    [
        ([(1, OS, "iOS 16.7.10 20H350", ALLOW), (2, OS, "iOS < 17", BLOCK)], 2),
        ([(1, OS, "iOS < 17", ALLOW), (2, OS, "iOS 16*", QUARANTINE)], 2),
        ([(1, OS, "iOS < 17", BLOCK), (2, OS, "iOS 16*", BLOCK)], 2),  # glob before version
        ([(1, OS, "iOS < 17", BLOCK), (2, OS, "iOS 16.7.10 20H350", BLOCK)], 2),
        ([(1, OS, "iOS < 18", QUARANTINE), (2, OS, "iOS < 17", QUARANTINE)], 1),  # lower id
        ([(1, OS, "iOS >= 16", ALLOW), (2, OS, "iOS < 17", QUARANTINE)], 2),
        ([(1, OS, "iOS < 17", BLOCK), (2, UA, "Apple-iPhone14C2/*", ALLOW)], 2),  # UA first
        ([(1, UA, "Apple-iPhone14C2 < 2100", QUARANTINE), (2, OS, "iOS < 17", BLOCK)], 1),
        ([(1, OS, "iOS < 16", BLOCK), (2, TYPE, "iPhone", QUARANTINE)], 2),  # no match: on
        ([(1, OS, "iOS < 17", ALLOW), (2, MODEL, "iPhone14C2", BLOCK)], 1),
    ],
)
def test_version_rules_take_their_place_in_the_precedence(rules, winner):
    ruleset = RuleSet(Rule(*r) for r in rules)
    assert ruleset.match(IOS16).id == winner


def test_a_version_rule_on_deviceos_counts_for_device_discovery():
    assert RuleSet([Rule(1, OS, "iOS < 17", BLOCK)]).has_model_or_os_rules


def test_it_explains_a_version_match():
    rule = Rule(7, OS, "iOS < 17", BLOCK)
    assert access.describe_match(rule, "iOS 16.7.10 20H350") == (
        "DeviceOS 'iOS 16.7.10 20H350' is below 17: rule 'iOS < 17'"
    )
    rules = RuleSet([rule])
    assert access.version_verdicts(rules, OS, "iOS 17.1.2 21B101") == [
        "DeviceOS 'iOS 17.1.2 21B101' (iOS 17.1.2) is not below 17: rule 'iOS < 17'"
    ]


def test_a_stored_rule_that_no_longer_parses_stays_exact():
    # Saved before version rules existed: "<" was plain text then.
    rules = RuleSet([Rule(1, TYPE, "Foo<3", BLOCK)])
    assert rules.match(DeviceFacts(device_type="foo<3")).id == 1


def test_the_version_memo_is_bounded_and_answers_as_a_fresh_read(monkeypatch):
    monkeypatch.setattr(access, "VERSION_MEMO_SIZE", 3)
    rules = RuleSet([Rule(1, OS, "iOS < 17", BLOCK)])
    for minor in range(10):
        for _ in range(2):
            device = DeviceFacts(device_os=f"iOS 16.{minor}")
            assert rules.match(device).id == 1
    assert rules.match(DeviceFacts(device_os="iOS 17.1")) is None
    assert len(rules._index[OS].versions._memo) <= 3


# Hypothesis: versions as real devices format them, against the comparison of the
# numbers themselves.
versions = st.lists(st.integers(0, 30000), min_size=1, max_size=4)
ops = st.sampled_from(["<", "<=", ">", ">="])
OS_FORMATS = [
    ("iOS", "iOS {v} 21B{b}"),
    ("iOS", "iOS {v}"),
    ("iPadOS", "iPadOS {v}"),
    ("Android", "Android {v}"),
    ("Android", "SAMSUNG SM-G{b}B/Android {v}"),
    ("OneUI", "SAMSUNG SM-S{b}B/Android 14 OneUI {v}"),
    ("Windows Phone", "Windows Phone {v}"),
]
UA_FORMATS = [("Apple-iPhone15C2", "Apple-iPhone15C2/{v}"), ("MSFT-WIN-3", "MSFT-WIN-3/{v}")]


def expected(op: str, device: list[int], bound: list[int]) -> bool:
    def key(parts):
        parts = list(parts)
        while parts and parts[-1] == 0:
            parts.pop()
        return tuple(parts)

    return access.VERSION_OPERATORS[op](key(device), key(bound))


@settings(max_examples=300, deadline=None)
@given(
    fmt=st.sampled_from(OS_FORMATS + UA_FORMATS),
    device=versions,
    bound=versions,
    op=ops,
    build=st.integers(0, 999),
    family_case=st.sampled_from([str.lower, str.upper, str]),
)
def test_a_version_rule_matches_exactly_when_the_numbers_compare(
    fmt, device, bound, op, build, family_case
):
    family, template = fmt
    characteristic = UA if "/{v}" in template else OS
    value = template.format(v=".".join(map(str, device)), b=build)
    query = f"{family_case(family)} {op} {'.'.join(map(str, bound))}"
    rules = RuleSet([Rule(1, characteristic, query, BLOCK)])
    field = "user_agent" if characteristic == UA else "device_os"
    matched = rules.match(DeviceFacts(**{field: value})) is not None
    assert matched is expected(op, device, bound)


@settings(max_examples=300, deadline=None)
@given(query=st.text(max_size=40), characteristic=st.sampled_from([OS, UA, MODEL, TYPE]))
def test_parsing_any_text_either_succeeds_round_trips_or_says_why(query, characteristic):
    try:
        parsed = parse_version_query(characteristic, query)
    except QueryStringError as e:
        assert str(e)
        return
    if parsed is not None:
        assert parse_version_query(characteristic, str(parsed)) == parsed


@settings(max_examples=500, deadline=None)
@given(
    value=st.text(max_size=60)
    | st.lists(
        st.sampled_from(["iOS", "Windows", "Phone", "Apple-iPhone15C2/", " ", "/", "(", "17",
                         ".", "0", "\u00b2", "\u0661", "L", "Android"]),
        max_size=12,
    ).map("".join)
)  # fmt: skip
def test_any_device_value_is_decided_without_error(value):
    rules = RuleSet(
        [
            Rule(1, OS, "iOS < 17", BLOCK),
            Rule(2, OS, "Windows Phone >= 8", QUARANTINE),
            Rule(3, UA, "Apple-iPhone15C2 < 2105", ALLOW),
        ]
    )
    rules.match(DeviceFacts(device_os=value, user_agent=value))


@settings(max_examples=300, deadline=None)
@given(
    rules=st.lists(
        st.tuples(ops, st.lists(st.integers(0, 4), min_size=1, max_size=3),
                  st.sampled_from([ALLOW, BLOCK, QUARANTINE])),
        min_size=1, max_size=12,
    ),
    device=st.lists(st.integers(0, 4), min_size=1, max_size=3),
)  # fmt: skip
def test_many_version_rules_on_one_family_decide_as_one_by_one_would(rules, device):
    # The reference: every rule that holds, the most restrictive level, then the lowest id.
    compiled = [
        Rule(i + 1, OS, f"iOS {op} {'.'.join(map(str, bound))}", level)
        for i, (op, bound, level) in enumerate(rules)
    ]
    holding = [
        r for r, (op, bound, _) in zip(compiled, rules, strict=True) if expected(op, device, bound)
    ]
    order = {BLOCK: 0, QUARANTINE: 1, ALLOW: 2}
    want = min(holding, key=lambda r: (order[r.access_level], r.id)) if holding else None
    value = f"iOS {'.'.join(map(str, device))} 21A329"
    assert RuleSet(compiled).match(DeviceFacts(device_os=value)) == want


def test_a_number_no_version_has_matches_no_version_rule():
    rules = RuleSet([Rule(1, OS, "iOS > 1", BLOCK), Rule(2, UA, "Foo > 1", BLOCK)])
    huge = "9" * 5000
    assert rules.match(DeviceFacts(device_os=f"iOS {huge}", user_agent=f"Foo/{huge}")) is None
