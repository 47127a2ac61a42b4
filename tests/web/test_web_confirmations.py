"""Destructive buttons carry a confirmation with their counts (issue 17, point 3)."""

import html

import pytest
from django.test import Client

from devices import actions
from devices.models import MobileDevice

from .conftest import SETUP


@pytest.fixture
def hd(world):
    client = Client()
    client.force_login(world.helpdesk)
    return client


def _page(response) -> str:
    return html.unescape(response.content.decode())


def test_block_buttons_ask_first(world, hd):
    page = _page(hd.get("/devices/quarantine/"))
    assert (
        'data-confirm="Block 1 device (BOBANDROID1) of 1 user (bob)?'
        ' It stops syncing mail at once."' in page
    )
    assert 'data-confirm-bulk="Block {devices} of {users}?' in page
    assert f'data-mailbox="{world.bob_box.pk}"' in page
    page = _page(hd.get(f"/devices/{world.bob_phone.pk}/"))
    assert 'data-confirm="Block 1 device (BOBANDROID1) of 1 user (bob)?' in page


def test_removing_an_allowed_device_id_asks_with_its_count(world, hd):
    actions.allow_device(SETUP, world.alice_box, "ALICEIPAD1")
    actions.allow_device(SETUP, world.alice_box, "UNUSEDID1")
    page = _page(hd.get(f"/mailboxes/{world.alice_box.pk}/"))
    assert (
        "Take ALICEIPAD1 off the allowed list of alice? 1 device of 1 user is decided again"
        " and may stop syncing." in page
    )
    assert (
        "Take UNUSEDID1 off the allowed list of alice? No device of this mailbox uses it now."
        in page
    )


def test_allow_and_remove_the_old_one_asks_first(world, hd):
    actions.allow_device(SETUP, world.alice_box, "ALICEIPHONE1")
    old = MobileDevice.objects.get(device_id="ALICEIPHONE1")
    MobileDevice.objects.create(
        mailbox=world.alice_box,
        device_id="ALICEIPHONE2",
        device_type=old.device_type,
        device_model=old.device_model,
        user_agent=old.user_agent,
        access_state="Quarantined",
    )
    page = _page(hd.get("/devices/quarantine/"))
    assert "Allow ALICEIPHONE2 and remove the old partnership ALICEIPHONE1 of alice?" in page
