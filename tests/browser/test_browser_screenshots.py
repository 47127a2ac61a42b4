"""Screenshots of the main pages against demo data, and the checks every page must pass:
no horizontal scrolling at phone width, a label on every form field.

The PNGs go to a temporary directory; to refresh the ones in the README run
    ECP_SCREENSHOTS=docs/screenshots .venv/bin/python -m pytest tests/browser -k screenshots
"""

import os
from pathlib import Path

import pytest

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture's need_service() reports it
    expect = None

from .conftest import DESKTOP, PHONE, sign_in

UNLABELLED = """() => Array.from(document.querySelectorAll(
    'main input:not([type=hidden]), main select, main textarea'))
  .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                && !el.getAttribute('aria-labelledby'))
  .map(el => el.name || el.id || el.outerHTML)"""

pytestmark = pytest.mark.browser


@pytest.fixture
def shots(tmp_path):
    target = Path(os.environ.get("ECP_SCREENSHOTS") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    return target


def _check(page, viewport):
    assert page.evaluate(UNLABELLED) == [], page.url
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport["width"], f"{page.url} scrolls sideways: {width}px"


def test_screenshots_of_the_main_pages(demo, new_page, shots):
    device = max(demo.quarantined, key=lambda d: d.first_seen)
    ipad = next(d for d in demo.quarantined if d.device_type == "iPad")
    admin = new_page(DESKTOP)
    sign_in(admin, "admin", demo.password)
    for name, url in (
        ("dashboard", "/"),
        ("quarantine", "/devices/quarantine/"),
        ("device", f"/devices/{demo.approved.pk}/"),
        ("rule-for-similar-devices", f"/rules/new?device={ipad.pk}"),
        ("rules", "/rules/"),
        ("mailbox", f"/mailboxes/{device.mailbox_id}/"),
    ):
        admin.goto(url)
        _check(admin, DESKTOP)
        admin.screenshot(path=shots / f"{name}.png")
    admin.goto("/rules/test?device_type=iPhone&device_model=iPhone15C2&info_received=on")
    expect(admin.locator("#test-result")).to_be_visible()
    admin.goto("/settings/")
    admin.get_by_label("Allow", exact=True).check()
    admin.get_by_role("button", name="Save settings").click()
    expect(admin.locator("#level-confirm")).to_be_visible()
    _check(admin, DESKTOP)
    admin.screenshot(path=shots / "settings.png")

    user = new_page(DESKTOP)
    sign_in(user, "anna.berg", demo.password)
    _check(user, DESKTOP)
    user.screenshot(path=shots / "my-devices.png")

    phone = new_page(PHONE)
    sign_in(phone, "helpdesk", demo.password)
    for name, url in (
        ("quarantine-phone", "/devices/quarantine/"),
        (None, "/"),
        (None, f"/devices/{device.pk}/"),
        (None, f"/mailboxes/{device.mailbox_id}/"),
        (None, "/devices/"),
        (None, "/rules/"),
        (None, "/settings/"),
    ):
        phone.goto(url)
        _check(phone, PHONE)
        if name:
            phone.screenshot(path=shots / f"{name}.png")
    for name in ("dashboard", "quarantine", "device", "settings", "my-devices"):
        assert (shots / f"{name}.png").stat().st_size < 400_000
