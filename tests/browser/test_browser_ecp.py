"""The ECP in a real browser: the help desk's, the admin's and the end user's paths."""

import re

import pytest

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture's need_service() reports it
    expect = None

from devices import actions
from devices.models import AccessState, MobileDevice, OrgSettings
from notifications.models import Kind, Notification

from .conftest import PHONE, sign_in
from .demo_data import ADMIN

pytestmark = pytest.mark.browser


def _row(page, device):
    return page.locator(f"#device-{device.pk}")


def test_help_desk_allows_a_quarantined_device_in_three_clicks(demo, new_page):
    page = new_page()
    sign_in(page, "helpdesk", demo.password)  # click 1: Sign in
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    nav = page.get_by_role("navigation", name="Main")
    nav.get_by_role("link", name=re.compile(r"^Quarantine")).click()  # click 2
    expect(page.get_by_role("heading", name="Quarantined devices")).to_be_visible()
    oldest = min(demo.quarantined, key=lambda d: (d.state_changed_at, d.pk))
    row = _row(page, oldest)
    expect(row).to_be_visible()
    row.get_by_role("button", name=re.compile(r"^Allow ")).click()  # click 3
    expect(page.locator("#messages")).to_contain_text(
        f"Allowed {oldest.device_type} {oldest.device_id} for {oldest.mailbox.alias}: "
        "was quarantined, now allowed"
    )
    expect(_row(page, oldest)).to_have_count(0)
    assert MobileDevice.objects.get(pk=oldest.pk).access_state == AccessState.ALLOWED


def test_help_desk_allows_several_at_once_on_a_phone(demo, new_page):
    page = new_page(PHONE)
    sign_in(page, "helpdesk", demo.password)
    page.goto("/devices/quarantine/")
    first, second = demo.quarantined[:2]
    allow_selected = page.get_by_role("button", name="Allow selected")
    expect(allow_selected).to_be_disabled()
    page.locator(f"#select-{first.pk}").check()
    page.locator(f"#select-{second.pk}").check()
    expect(page.locator("#selected-count")).to_have_text("2 selected")
    allow_selected.click()
    expect(page.locator("#messages")).to_contain_text("Allowed 2 devices")
    expect(_row(page, first)).to_have_count(0)
    expect(_row(page, second)).to_have_count(0)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_admin_creates_a_rule_for_similar_devices(demo, new_page):
    pixels = [d for d in demo.quarantined if d.device_type == "Android"]
    assert len(pixels) >= 2
    page = new_page()
    sign_in(page, "admin", demo.password)
    page.goto("/devices/quarantine/")
    _row(page, pixels[0]).get_by_role("link", name="Create a rule for similar devices").click()
    expect(page.get_by_role("heading", name="Create a rule for similar devices")).to_be_visible()
    expect(page.get_by_label("Device family (DeviceType)")).to_have_value("Android")
    expect(page.get_by_label("Model", exact=True)).to_have_value("Pixel 7")
    expect(page.locator("#rule-preview")).to_contain_text(
        f"Saving this rule releases {len(pixels)} quarantined devices."
    )
    page.get_by_role("button", name="Save rule").click()
    expect(page.get_by_role("heading", name="Quarantined devices")).to_be_visible()
    expect(page.locator("#messages")).to_contain_text(
        f'Created the rule "Android" on DeviceType (Allow): it releases {len(pixels)} '
        "quarantined devices."
    )
    for device in pixels:
        expect(_row(page, device)).to_have_count(0)
        assert MobileDevice.objects.get(pk=device.pk).access_state == AccessState.ALLOWED


def test_a_changed_rule_form_must_be_previewed_again(demo, new_page):
    device = demo.quarantined[0]
    page = new_page()
    sign_in(page, "admin", demo.password)
    page.goto(f"/rules/new?device={device.pk}")
    save = page.get_by_role("button", name="Save rule")
    expect(save).to_be_enabled()
    page.get_by_label("Access level").select_option("Block")
    expect(save).to_be_disabled()
    page.get_by_role("button", name="Preview again").click()
    expect(page.locator("#rule-preview")).to_contain_text("blocks")


def test_end_user_sees_only_their_devices(demo, new_page):
    page = new_page()
    sign_in(page, "anna.berg", demo.password)
    expect(page).to_have_url(re.compile(r"/my/devices/$"))
    own = MobileDevice.objects.filter(mailbox=demo.boxes["anna.berg"])
    cards = page.locator("#my-devices section.card")
    expect(cards).to_have_count(own.count())
    for device in own:
        expect(page.locator(f"#device-{device.pk}")).to_contain_text(device.device_id)
    expect(page.locator("#org-insert")).to_contain_text("Call extension 4357")
    expect(page.get_by_text("What to do:").first).to_be_visible()
    expect(page.get_by_role("link", name="Quarantine")).to_have_count(0)
    other = MobileDevice.objects.exclude(mailbox=demo.boxes["anna.berg"]).first()
    assert other.device_id not in page.content()
    response = page.goto(f"/devices/{other.pk}/")
    assert response.status == 404
    assert page.goto("/devices/quarantine/").status == 403


def test_admin_switches_the_default_level_after_confirming(demo, new_page):
    waiting = len(demo.quarantined)
    page = new_page()
    sign_in(page, "admin", demo.password)
    page.goto("/settings/")
    page.get_by_label("Allow", exact=True).check()
    page.get_by_role("button", name="Save settings").click()
    confirm = page.locator("#level-confirm")
    expect(confirm).to_contain_text(
        f"Switching to Allow releases {waiting} quarantined devices now."
    )
    assert OrgSettings.load().default_access_level == "Quarantine"
    page.get_by_role("button", name="Yes, switch to Allow and save").click()
    expect(page.locator("#messages")).to_contain_text(
        "Default access level changed from Quarantine to Allow."
    )
    assert OrgSettings.load().default_access_level == "Allow"
    assert not MobileDevice.objects.filter(access_state=AccessState.QUARANTINED).exists()


def test_end_user_approves_their_own_device_when_the_organisation_lets_them(demo, new_page):
    actions.set_org_settings(ADMIN, self_approval="always")
    waiting = MobileDevice.objects.filter(
        mailbox=demo.boxes["anna.berg"], access_state=AccessState.QUARANTINED
    ).order_by("id")
    device = waiting.first()
    assert device is not None
    page = new_page(PHONE)
    sign_in(page, "anna.berg", demo.password)
    card = page.locator(f"#device-{device.pk}")
    expect(card).to_contain_text("Quarantined")
    card.get_by_role("button", name="Approve this device").click()
    expect(page.locator("#messages")).to_contain_text(f"You approved {device.friendly_name}")
    card = page.locator(f"#device-{device.pk}")
    expect(card).to_contain_text("Allowed")
    expect(card.get_by_role("button", name="Approve this device")).to_have_count(0)
    assert MobileDevice.objects.get(pk=device.pk).access_state == AccessState.ALLOWED
    assert Notification.objects.filter(
        kind=Kind.ADMIN_SELF_APPROVED, recipient="helpdesk@example.com"
    ).exists()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
