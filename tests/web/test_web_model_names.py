"""Marketing names beside the model codes on the pages (issue 17, point 4)."""

import pytest
from django.test import Client

from devices.models import MobileDevice


@pytest.fixture
def hd(world):
    client = Client()
    client.force_login(world.helpdesk)
    return client


def test_the_quarantine_list_names_the_models(world, hd):
    page = hd.get("/devices/quarantine/").content.decode()
    assert (
        'iPhone 14 Pro <span class="text-body-secondary small ecp-model-code">(iPhone15,2)</span>'
        in page
    )
    assert "Galaxy S23 Ultra" in page and "(SM-S918B)" in page
    assert "iPad Air (4th generation)" in page


def test_the_device_page_names_the_model_beside_its_code(world, hd):
    page = hd.get(f"/devices/{world.bob_phone.pk}/").content.decode()
    assert "Galaxy S23 Ultra" in page
    assert "(SM-S918B)</span>" in page


def test_the_mailbox_page_names_the_models(world, hd):
    page = hd.get(f"/mailboxes/{world.alice_box.pk}/").content.decode()
    assert "iPhone 14 Pro" in page and "iPad Air (4th generation)" in page


def test_my_devices_names_the_model_beside_its_code(world):
    client = Client()
    client.force_login(world.alice)
    page = client.get("/my/devices/").content.decode()
    assert "iPhone 14 Pro (iPhone15,2)" in page


def test_an_unknown_model_is_shown_as_reported(world, hd):
    MobileDevice.objects.filter(pk=world.carol_phone.pk).update(device_model="Pixel 8")
    page = hd.get(f"/devices/{world.carol_phone.pk}/").content.decode()
    assert "<td>Pixel 8</td>" in page
