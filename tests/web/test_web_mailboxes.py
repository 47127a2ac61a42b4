"""Mailboxes: the list, and "edit mobile mailbox" (lists and ActiveSync)."""

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from devices.models import AccessState, MailboxDeviceId

from .conftest import state_of


@pytest.fixture
def hd(world):
    client = Client()
    client.force_login(world.helpdesk)
    return client


@pytest.fixture
def admin(world):
    client = Client()
    client.force_login(world.org)
    return client


def _messages(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_mailbox_list_searches_and_counts(world, hd):
    response = hd.get("/mailboxes/")
    rows = {m.alias: (m.n_devices, m.n_quarantined) for m in response.context["page"]}
    assert rows == {"alice": (2, 2), "bob": (1, 1), "carol": (1, 1)}
    assert [m.alias for m in hd.get("/mailboxes/?q=Baker").context["page"]] == ["bob"]


def test_mailbox_page_shows_partnerships_and_lists(world, hd):
    hd.post(f"/devices/{world.alice_phone.pk}/allow")
    response = hd.get(f"/mailboxes/{world.alice_box.pk}/")
    assert [d.device_id for d in response.context["devices"]] == ["ALICEIPAD1", "ALICEIPHONE1"]
    assert [e.device_id for e in response.context["allowed"]] == ["ALICEIPHONE1"]
    assert response.context["blocked"] == []
    assert 'for="add-device_id"' in response.content.decode()


def test_add_and_remove_device_ids(world, hd):
    url = f"/mailboxes/{world.alice_box.pk}/"
    response = hd.post(
        url, {"op": "add", "list": "allowed", "device_id": "aliceipad1"}, follow=True
    )
    assert response.redirect_chain[-1] == (url, 302)
    assert _messages(response) == [
        "Added aliceipad1 to the allowed list of alice: 1 device from quarantined to allowed."
    ]
    assert state_of(world.alice_tablet) == AccessState.ALLOWED

    response = hd.post(
        url, {"op": "add", "list": "blocked", "device_id": "aliceipad1"}, follow=True
    )
    assert state_of(world.alice_tablet) == AccessState.BLOCKED
    assert MailboxDeviceId.objects.get(mailbox=world.alice_box).list == "blocked"

    response = hd.post(
        url, {"op": "remove", "list": "blocked", "device_id": "aliceipad1"}, follow=True
    )
    assert _messages(response)[-1] == (
        "Removed aliceipad1 from the blocked list of alice: 1 device from blocked to quarantined."
    )
    assert not MailboxDeviceId.objects.exists()


@pytest.mark.parametrize(
    "data",
    [
        {"op": "add", "list": "allowed", "device_id": "has space"},
        {"op": "add", "list": "allowed", "device_id": ""},
        {"op": "add", "list": "grey", "device_id": "X1"},
        {"op": "add", "list": "allowed", "device_id": "X" * 65},
        {"op": "rename"},
    ],
)
def test_bad_list_changes_change_nothing(world, hd, data):
    response = hd.post(f"/mailboxes/{world.alice_box.pk}/", data, follow=True)
    if data["op"] == "add":
        # The page comes back with the error beside the field and summarised at the top.
        assert response.status_code == 200 and not response.redirect_chain
        assert "nothing was changed" in response.content.decode()
        assert response.context["add_form"].errors
    else:
        assert _messages(response)[0].startswith("Unknown change")
    assert not MailboxDeviceId.objects.exists()


def test_activesync_off_blocks_every_device_of_the_mailbox(world, admin):
    url = f"/mailboxes/{world.alice_box.pk}/"
    response = admin.post(url, {"op": "activesync", "activesync_enabled": "false"}, follow=True)
    assert _messages(response) == [
        "ActiveSync turned off for alice: 2 devices from quarantined to blocked."
    ]
    assert state_of(world.alice_phone) == state_of(world.alice_tablet) == AccessState.BLOCKED
    admin.post(url, {"op": "activesync", "activesync_enabled": "true"})
    assert state_of(world.alice_phone) == AccessState.QUARANTINED


def test_help_desk_edits_lists_but_not_activesync(world, hd):
    url = f"/mailboxes/{world.alice_box.pk}/"
    text = hd.get(url).content.decode()
    assert "Only Organization Management can turn ActiveSync on or off." in text
    assert hd.post(url, {"op": "activesync", "activesync_enabled": "false"}).status_code == 403
    world.alice_box.refresh_from_db()
    assert world.alice_box.activesync_enabled


def test_unknown_mailbox_is_404(world, hd):
    assert hd.get("/mailboxes/999999/").status_code == 404
