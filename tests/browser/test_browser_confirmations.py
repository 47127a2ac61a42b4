"""Destructive actions ask first, with how many devices and users they hit (issue 17, point 3)."""

import re

import pytest

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture's need_service() reports it
    expect = None

from devices.models import AccessState, MobileDevice

from .conftest import DESKTOP, PHONE, sign_in

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("viewport", [None, PHONE], ids=["desktop", "phone"])
def test_block_selected_asks_with_the_counts(demo, new_page, viewport):
    page = new_page(viewport or DESKTOP)
    sign_in(page, "helpdesk", demo.password)
    page.goto("/devices/quarantine/")
    first, second = demo.quarantined[:2]
    page.locator(f"#select-{first.pk}").check()
    page.locator(f"#select-{second.pk}").check()
    users = len({first.mailbox_id, second.mailbox_id})
    questions = []

    def dismiss(dialog):
        questions.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    page.get_by_role("button", name="Block selected").click()
    expected = f"Block 2 devices of {users} user{'s' if users > 1 else ''}?"
    assert questions and questions[0].startswith(expected), questions
    assert MobileDevice.objects.get(pk=first.pk).access_state == AccessState.QUARANTINED

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Block selected").click()
    expect(page.locator("#messages")).to_contain_text("Blocked 2 devices")
    assert MobileDevice.objects.get(pk=first.pk).access_state == AccessState.BLOCKED


@pytest.mark.parametrize("viewport", [None, PHONE], ids=["desktop", "phone"])
def test_block_on_a_row_asks_first(demo, new_page, viewport):
    page = new_page(viewport or DESKTOP)
    sign_in(page, "helpdesk", demo.password)
    page.goto("/devices/quarantine/")
    device = demo.quarantined[0]
    questions = []

    def dismiss(dialog):
        questions.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    page.locator(f"#device-{device.pk}").get_by_role("button", name="Block").click()
    assert questions == [
        f"Block 1 device ({device.device_id}) of 1 user ({device.mailbox.alias})?"
        " It stops syncing mail at once."
    ]
    assert MobileDevice.objects.get(pk=device.pk).access_state == AccessState.QUARANTINED


@pytest.mark.parametrize("viewport", [None, PHONE], ids=["desktop", "phone"])
def test_undo_after_allow(demo, new_page, viewport):
    page = new_page(viewport or DESKTOP)
    sign_in(page, "helpdesk", demo.password)
    page.goto("/devices/quarantine/")
    device = demo.quarantined[0]
    page.locator(f"#device-{device.pk}").get_by_role("button", name="Allow").click()
    expect(page.locator("#messages")).to_contain_text("was quarantined, now allowed")
    assert MobileDevice.objects.get(pk=device.pk).access_state == AccessState.ALLOWED
    page.get_by_role("button", name=re.compile(r"^Undo the Allow of ")).click()
    expect(page.locator("#messages")).to_contain_text("was allowed, now quarantined")
    assert MobileDevice.objects.get(pk=device.pk).access_state == AccessState.QUARANTINED
    expect(page.locator(f"#device-{device.pk}")).to_be_visible()
