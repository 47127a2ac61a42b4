"""The engine's lifecycle steps (devices.access.decide), without a database.

- The organisation-wide DeviceId list comes after the mailbox's own lists and
  before the rules: Allowed / OrgAllowList.
- A mailbox's access policy replaces the org default in the last step (reason
  stays Global, decision.policy_id names the policy), and the discovery step
  asks the policy's level, not the org's, whether quarantine is the default.
"""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.access import DeviceFacts, MailboxFacts, OrgFacts, Rule, RuleSet, decide
from devices.choices import AccessLevel, AccessReason, AccessState, Characteristic

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
ALLOW, BLOCK, QUARANTINE = AccessLevel.ALLOW, AccessLevel.BLOCK, AccessLevel.QUARANTINE
ALLOWED, BLOCKED = AccessState.ALLOWED, AccessState.BLOCKED
QUARANTINED, DISCOVERY = AccessState.QUARANTINED, AccessState.DEVICE_DISCOVERY
GLOBAL, INDIVIDUAL = AccessReason.GLOBAL, AccessReason.INDIVIDUAL
ORG_LIST, RULE, POLICY = AccessReason.ORG_LIST, AccessReason.DEVICE_RULE, AccessReason.POLICY

LOANER = "LoanPool0001"  # as the device sends it
LOANER_KEY = frozenset({"loanpool0001"})  # as the engine's inputs hold it (lower case)
KNOWN = {"info_received": True, "first_seen": NOW - timedelta(days=3)}
NEW = {"info_received": False, "first_seen": NOW - timedelta(minutes=1)}
POLICY_ID = 7


def rule(rule_id, characteristic, query, level):
    return Rule(id=rule_id, characteristic=characteristic, query_string=query, access_level=level)


BLOCK_IPHONES = rule(1, Characteristic.DEVICE_TYPE, "iPhone", BLOCK)
ALLOW_IPHONES = rule(2, Characteristic.DEVICE_TYPE, "iPhone", ALLOW)
MODEL_RULE = rule(3, Characteristic.DEVICE_MODEL, "SM-*", BLOCK)  # matches no iPhone


def run(*, mailbox=None, device=None, rules=(), org=None, now=NOW):
    return decide(
        MailboxFacts(**(mailbox or {})),
        DeviceFacts(
            **{
                "device_id": LOANER,
                "device_type": "iPhone",
                "device_model": "iPhone15,2",
                **KNOWN,
                **(device or {}),
            }
        ),
        RuleSet(rules),
        OrgFacts(**(org or {})),
        now,
    )


def outcome(decision):
    return decision.state, decision.reason, decision.rule_id, decision.policy_id


def policy(level):
    return {"policy_id": POLICY_ID, "policy_level": level}


# ---------------------------------------------------------------------------
# the organisation-wide list: after the mailbox's lists, before the rules

ORG_LIST_CASES = [
    ("on-the-list", {}, {}, [], {}, (ALLOWED, ORG_LIST, None, None)),
    (
        "disabled-mailbox-beats-it",
        {"activesync_enabled": False},
        {},
        [],
        {},
        (BLOCKED, POLICY, None, None),
    ),
    (
        "mailbox-blocked-list-beats-it",
        {"blocked_ids": LOANER_KEY},
        {},
        [],
        {},
        (BLOCKED, INDIVIDUAL, None, None),
    ),
    (
        "mailbox-allowed-list-comes-first",
        {"allowed_ids": LOANER_KEY},
        {},
        [],
        {},
        (ALLOWED, INDIVIDUAL, None, None),
    ),
    ("it-beats-a-block-rule", {}, {}, [BLOCK_IPHONES], {}, (ALLOWED, ORG_LIST, None, None)),
    (
        "it-beats-discovery",
        {},
        NEW,
        [MODEL_RULE],
        {"default_access_level": QUARANTINE},
        (ALLOWED, ORG_LIST, None, None),
    ),
    (
        "it-beats-the-default",
        {},
        {},
        [],
        {"default_access_level": BLOCK},
        (ALLOWED, ORG_LIST, None, None),
    ),
    (
        "it-beats-the-policy-level",
        policy(BLOCK),
        {},
        [],
        {"default_access_level": QUARANTINE},
        (ALLOWED, ORG_LIST, None, None),
    ),
]


@pytest.mark.parametrize(
    "mailbox, device, rules, org, expected",
    [case[1:] for case in ORG_LIST_CASES],
    ids=[case[0] for case in ORG_LIST_CASES],
)
def test_the_org_wide_list_sits_between_the_mailbox_lists_and_the_rules(
    mailbox, device, rules, org, expected
):
    org = {"allowed_ids": LOANER_KEY, **org}
    assert outcome(run(mailbox=mailbox, device=device, rules=rules, org=org)) == expected


def test_the_org_wide_list_compares_device_ids_in_any_case():
    for spelling in ("LOANPOOL0001", "loanpool0001", "LoanPool0001"):
        decision = run(device={"device_id": spelling}, org={"allowed_ids": LOANER_KEY})
        assert (decision.state, decision.reason) == (ALLOWED, ORG_LIST)


def test_a_device_off_the_org_wide_list_goes_on_to_the_rules():
    decision = run(
        device={"device_id": "SomeOtherPhone"},
        rules=[BLOCK_IPHONES],
        org={"allowed_ids": LOANER_KEY},
    )
    assert outcome(decision) == (BLOCKED, RULE, BLOCK_IPHONES.id, None)


# ---------------------------------------------------------------------------
# the mailbox's access policy: its level in place of the org default

POLICY_CASES = [
    # (id, org default, mailbox facts, device, rules, expected)
    ("policy-quarantines", ALLOW, policy(QUARANTINE), {}, [], (QUARANTINED, GLOBAL, POLICY_ID)),
    ("policy-allows", QUARANTINE, policy(ALLOW), {}, [], (ALLOWED, GLOBAL, POLICY_ID)),
    ("policy-blocks", ALLOW, policy(BLOCK), {}, [], (BLOCKED, GLOBAL, POLICY_ID)),
    ("no-policy", QUARANTINE, {}, {}, [], (QUARANTINED, GLOBAL, None)),
    (
        "a-policy-id-without-level-is-no-policy",
        BLOCK,
        {"policy_id": POLICY_ID, "policy_level": None},
        {},
        [],
        (BLOCKED, GLOBAL, None),
    ),
    (
        "a-rule-beats-the-policy",
        QUARANTINE,
        policy(ALLOW),
        {},
        [BLOCK_IPHONES],
        (BLOCKED, RULE, None),
    ),
    (
        "the-allowed-list-beats-the-policy",
        ALLOW,
        {**policy(BLOCK), "allowed_ids": LOANER_KEY},
        {},
        [],
        (ALLOWED, INDIVIDUAL, None),
    ),
    (
        "a-disabled-mailbox-beats-the-policy",
        ALLOW,
        {**policy(ALLOW), "activesync_enabled": False},
        {},
        [],
        (BLOCKED, POLICY, None),
    ),
    # Discovery: quarantine as the policy's level starts the window, not the org's.
    ("discovery-by-policy", ALLOW, policy(QUARANTINE), NEW, [], (DISCOVERY, GLOBAL, POLICY_ID)),
    ("no-discovery-by-policy", QUARANTINE, policy(ALLOW), NEW, [], (ALLOWED, GLOBAL, POLICY_ID)),
    (
        "model-rules-start-discovery-under-any-policy",
        QUARANTINE,
        policy(ALLOW),
        NEW,
        [MODEL_RULE],
        (DISCOVERY, GLOBAL, POLICY_ID),
    ),
    (
        "after-the-window-the-policy-level",
        ALLOW,
        policy(QUARANTINE),
        {"info_received": False, "first_seen": NOW - timedelta(hours=1)},
        [],
        (QUARANTINED, GLOBAL, POLICY_ID),
    ),
    (
        "first-contact-is-inside-the-window",
        ALLOW,
        policy(QUARANTINE),
        {"info_received": False, "first_seen": None},
        [],
        (DISCOVERY, GLOBAL, POLICY_ID),
    ),
    ("discovery-without-policy", QUARANTINE, {}, NEW, [], (DISCOVERY, GLOBAL, None)),
]


@pytest.mark.parametrize(
    "default, mailbox, device, rules, expected",
    [case[1:] for case in POLICY_CASES],
    ids=[case[0] for case in POLICY_CASES],
)
def test_the_policy_level_replaces_the_org_default(default, mailbox, device, rules, expected):
    decision = run(
        mailbox=mailbox, device=device, rules=rules, org={"default_access_level": default}
    )
    assert (decision.state, decision.reason, decision.policy_id) == expected
    if decision.reason != RULE:
        assert decision.rule is None


# ---------------------------------------------------------------------------
# properties over every combination

LEVELS = st.sampled_from([ALLOW, BLOCK, QUARANTINE])
STATE_FOR = {ALLOW: ALLOWED, BLOCK: BLOCKED, QUARANTINE: QUARANTINED}


@given(
    on_org_list=st.booleans(),
    listed=st.sampled_from(["", "allowed", "blocked"]),
    enabled=st.booleans(),
    default=LEVELS,
    policy_level=st.one_of(st.none(), LEVELS),
    rules=st.lists(st.sampled_from([BLOCK_IPHONES, ALLOW_IPHONES, MODEL_RULE]), unique=True),
    new=st.booleans(),
)
def test_every_combination_follows_the_order(
    on_org_list, listed, enabled, default, policy_level, rules, new
):
    mailbox = {
        "activesync_enabled": enabled,
        "allowed_ids": LOANER_KEY if listed == "allowed" else frozenset(),
        "blocked_ids": LOANER_KEY if listed == "blocked" else frozenset(),
        "policy_id": POLICY_ID if policy_level else None,
        "policy_level": policy_level,
    }
    org = {
        "default_access_level": default,
        "allowed_ids": LOANER_KEY if on_org_list else frozenset(),
    }
    decision = run(mailbox=mailbox, device=NEW if new else KNOWN, rules=rules, org=org)
    if not enabled or listed:
        assert decision.reason in (POLICY, INDIVIDUAL)
    elif on_org_list:
        assert (decision.state, decision.reason) == (ALLOWED, ORG_LIST)
    elif rules and any(r.characteristic == Characteristic.DEVICE_TYPE for r in rules):
        assert decision.reason == RULE  # every type rule here matches the iPhone
    else:
        level = policy_level or default
        expected = DISCOVERY if new and (rules or level == QUARANTINE) else STATE_FOR[level]
        assert (decision.state, decision.reason) == (expected, GLOBAL)
    # The policy is named exactly when its level decided.
    assert (decision.policy_id is not None) == (decision.reason == GLOBAL and bool(policy_level))
