"""A rule change re-plans only the devices it can move, and moves exactly what a full
re-evaluation would (devices.actions.rules: _scope)."""

import pytest

from devices import actions
from devices.actions.reevaluation import reevaluate
from devices.audit import Actor
from devices.models import AuditSource, DeviceAccessRule, MobileDevice

ADMIN = Actor(source=AuditSource.CLI)
GATE = Actor(source=AuditSource.GATE)

# (DeviceType, model, OS, user agent, DeviceInformation reported)
DEVICES = [
    ("iPhone", "iPhone15C2", "iOS 17.4", "Apple-iPhone15C2/2104.61", True),
    ("iPhone", "", "", "Apple-iPhone14C2/2001.1", False),
    ("Outlook", "Outlook for iOS and Android", "", "Outlook-iOS-Android/1.0", True),
    ("outlook", "", "", "OUTLOOK-IOS-ANDROID/2.0", False),
    ("SAMSUNGSMG991B", "SM-G991B", "Android 14", "SAMSUNG-SM-G991B/101.1", True),
    ("Android", "Pixel 7", "Android 14", "Android-Pixel7/14.0", True),
    ("WindowsMail", "", "", "MSFT-WIN-3/10.0.19045", False),
    ("iPad", "iPad7C3", "iPadOS 16", "Apple-iPad7C3/2005.247", True),
    ("Androïd", "Pixèl", "", "Agent-Ünïcode/1", True),
]


# Version rules need versions to read: what real devices send.
VERSIONED = [
    ("iPhone", "iPhone12C1", "iOS 16.7.10 20H350", "Apple-iPhone12C1/2008.10", True),
    ("iPhone", "iPhone15C2", "iOS 17.1.2 21B101", "Apple-iPhone15C2/2104.61", True),
    ("iPad", "iPad13C1", "iPadOS 17.4", "Apple-iPad13C1/2104.61", True),
    ("SAMSUNGSMG991B", "SM-G991B", "SAMSUNG SM-G991B/Android 13", "SAMSUNG-SM-G991B/101.13", True),
    ("SAMSUNGSMS918B", "SM-S918B", "Android 14 OneUI 6.1", "SAMSUNG-SM-S918B/101.14", True),
    ("Android", "Pixel 6", "Android 12L", "Android-Pixel6/12.1", True),
    ("WP8", "Lumia 930", "Windows Phone 8.10.14219", "MSFT-WP/8.10.14219", True),
    ("Outlook", "Outlook for iOS and Android", "", "Outlook-iOS-Android/1.0", True),
]


def make_fleet(devices):
    actions.set_org_settings(ADMIN, default_access_level="Quarantine", discovery_window_minutes=15)
    boxes = [
        actions.create_mailbox(ADMIN, alias=a, email=f"{a}@contoso.com").obj for a in ("al", "bo")
    ]
    for i, (dtype, model, os, ua, info) in enumerate(devices * 2):
        actions.record_contact(
            GATE,
            boxes[i % 2],
            actions.Contact(
                device_id=f"DEV{i:02d}",
                device_type=dtype,
                user_agent=ua,
                info={"model": model, "os": os} if info else None,
            ),
        )
    return boxes


@pytest.fixture
def fleet(db):
    return make_fleet(DEVICES)


@pytest.fixture
def versioned_fleet(db):
    return make_fleet(DEVICES + VERSIONED)


def assert_nothing_left_to_move():
    assert reevaluate(MobileDevice.objects.all(), None) == []


def states():
    return sorted(MobileDevice.objects.values_list("device_id", "access_state", "access_rule_id"))


STEPS = [
    ("create", "DeviceType", "Outlook", "Allow"),
    ("create", "UserAgent", "outlook-ios-*", "Block"),
    ("create", "DeviceModel", "SM-*", "Block"),  # the first model rule: discovery changes
    ("create", "UserAgent", "Apple-*/2104*", "Allow"),
    ("create", "DeviceType", "*", "Quarantine"),  # every device
    ("create", "DeviceOS", "*14", "Allow"),
    ("create", "DeviceModel", "Pixèl", "Block"),  # not ASCII: every device
    ("create", "UserAgent", "*-iPad7C3/*", "Allow"),
]


def test_every_rule_change_moves_what_a_full_reevaluation_would(fleet):
    assert_nothing_left_to_move()
    for _, characteristic, query, level in STEPS:
        actions.create_rule(
            ADMIN, characteristic=characteristic, query_string=query, access_level=level
        )
        assert_nothing_left_to_move()
    for rule in DeviceAccessRule.objects.order_by("id"):
        level = {"Allow": "Block", "Block": "Quarantine", "Quarantine": "Allow"}[rule.access_level]
        actions.update_rule(ADMIN, rule, access_level=level)
        assert_nothing_left_to_move()
    model_rule = DeviceAccessRule.objects.get(query_string="SM-*")
    actions.update_rule(ADMIN, model_rule, characteristic="UserAgent", query_string="SAMSUNG-*")
    assert_nothing_left_to_move()  # the last model rule left: discovery changes again
    for rule in DeviceAccessRule.objects.order_by("-id"):
        actions.delete_rule(ADMIN, rule)
        assert_nothing_left_to_move()


def test_a_rule_moves_only_its_own_devices_and_previews_agree(fleet):
    before = states()
    preview = actions.preview_rule(
        characteristic="UserAgent", query_string="Outlook-iOS-Android/*", access_level="Block"
    )
    result = actions.create_rule(
        ADMIN,
        characteristic="UserAgent",
        query_string="Outlook-iOS-Android/*",
        access_level="Block",
    )
    names = dict(MobileDevice.objects.values_list("pk", "device_id"))
    moved = {names[t.device_pk] for t in result.transitions}
    assert moved == {"DEV02", "DEV03", "DEV11", "DEV12"}  # both cases of the agent
    assert sum(preview.values()) == sum(t.from_state != t.to_state for t in result.transitions)
    changed = {d for (d, *s), (_, *b) in zip(states(), before, strict=True) if s != b}
    assert changed == moved


VERSION_STEPS = [
    ("DeviceOS", "iOS < 17", "Block"),
    ("DeviceOS", "Android <= 13", "Quarantine"),
    ("DeviceOS", "android >= 12", "Allow"),  # Block/Quarantine still win where they match
    ("DeviceOS", "OneUI < 7", "Block"),
    ("DeviceOS", "Windows Phone < 8.10.15000", "Block"),
    ("DeviceOS", "iPadOS >= 17.4", "Allow"),
    ("UserAgent", "Apple-iPhone15C2 < 2105", "Quarantine"),
    ("UserAgent", "Outlook-iOS-Android >= 1", "Allow"),
]


def test_version_rule_changes_move_what_a_full_reevaluation_would(versioned_fleet):
    assert_nothing_left_to_move()
    for characteristic, query, level in VERSION_STEPS:
        actions.create_rule(
            ADMIN, characteristic=characteristic, query_string=query, access_level=level
        )
        assert_nothing_left_to_move()
    for rule in DeviceAccessRule.objects.order_by("id"):
        level = {"Allow": "Block", "Block": "Quarantine", "Quarantine": "Allow"}[rule.access_level]
        actions.update_rule(ADMIN, rule, access_level=level)
        assert_nothing_left_to_move()
    rule = DeviceAccessRule.objects.get(query_string="iOS < 17")
    actions.update_rule(ADMIN, rule, query_string="iOS < 17.2")  # now takes 17.1.2 too
    assert_nothing_left_to_move()
    actions.update_rule(ADMIN, rule, characteristic="UserAgent", query_string="MSFT-WP < 9")
    assert_nothing_left_to_move()
    for rule in DeviceAccessRule.objects.order_by("-id"):
        actions.delete_rule(ADMIN, rule)
        assert_nothing_left_to_move()


@pytest.mark.parametrize(
    "characteristic, query, scope, moved",
    [
        # scope: the devices re-planned (those holding the family's words); moved: the
        # devices the rule moves, in both mailboxes.
        ("DeviceOS", "iOS < 17", {"iOS 17.4", "iOS 16.7.10 20H350", "iOS 17.1.2 21B101"},
         {"iOS 16.7.10 20H350"}),
        ("DeviceOS", "iPadOS < 17", {"iPadOS 16", "iPadOS 17.4"}, {"iPadOS 16"}),
        ("DeviceOS", "Android < 13.1", {"Android 14", "SAMSUNG SM-G991B/Android 13",
                                        "Android 14 OneUI 6.1", "Android 12L"},
         {"SAMSUNG SM-G991B/Android 13", "Android 12L"}),
        ("DeviceOS", "Windows Phone >= 8.10", {"Windows Phone 8.10.14219"},
         {"Windows Phone 8.10.14219"}),
        ("UserAgent", "Apple-iPhone15C2 < 2105", {"iOS 17.4", "iOS 17.1.2 21B101"},
         {"iOS 17.4", "iOS 17.1.2 21B101"}),
    ],
)  # fmt: skip
def test_a_version_rule_re_plans_only_the_devices_of_its_family(
    versioned_fleet, characteristic, query, scope, moved
):
    from devices.actions.rules import _scope

    planned = set(_scope([(characteristic, query)], False).values_list("device_os", flat=True))
    assert planned == scope
    preview = actions.preview_rule(
        characteristic=characteristic, query_string=query, access_level="Block"
    )
    result = actions.create_rule(
        ADMIN, characteristic=characteristic, query_string=query, access_level="Block"
    )
    devices = dict(MobileDevice.objects.values_list("pk", "device_os"))
    assert {devices[t.device_pk] for t in result.transitions} == moved
    assert len(result.transitions) == 2 * len(moved)
    assert sum(preview.values()) == len(result.transitions)
    assert_nothing_left_to_move()
