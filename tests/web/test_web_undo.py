"""Undo for one minute after Allow or Block, as a normal audited action (issue 17, point 3)."""

import html
import re
from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.utils import timezone

from devices.models import AccessState, AuditEvent, DeviceIdList, MailboxDeviceId

from .conftest import state_of


@pytest.fixture
def hd(world):
    client = Client()
    client.force_login(world.helpdesk)
    return client


def _messages(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def _token(response) -> str:
    match = re.search(r'name="token" value="([^"]+)"', response.content.decode())
    assert match, "no undo offered"
    return html.unescape(match.group(1))


def test_allow_offers_undo_and_undo_puts_the_device_back(world, hd):
    response = hd.post(
        f"/devices/{world.alice_phone.pk}/allow", {"next": "/devices/quarantine/"}, follow=True
    )
    page = html.unescape(response.content.decode())
    assert "Undo the Allow of iPhone ALICEIPHONE1" in page
    assert state_of(world.alice_phone) == AccessState.ALLOWED

    undone = hd.post("/devices/undo", {"token": _token(response)}, follow=True)
    assert _messages(undone) == [
        "Undid the Allow of iPhone ALICEIPHONE1: was allowed, now quarantined."
    ]
    assert state_of(world.alice_phone) == AccessState.QUARANTINED
    assert not MailboxDeviceId.objects.filter(device_key="aliceiphone1").exists()
    # A new audit event, after the Allow's: history is not rewritten.
    actions_done = list(
        AuditEvent.objects.filter(object_id=str(world.alice_phone.pk))
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions_done[-2:] == ["device.allow", "device.undo"]


def test_the_offer_is_shown_once(world, hd):
    hd.post(f"/devices/{world.alice_phone.pk}/allow")
    assert 'id="undo"' in hd.get("/devices/quarantine/").content.decode()
    assert 'id="undo"' not in hd.get("/devices/quarantine/").content.decode()


def test_undo_of_a_block_restores_the_allowed_list(world, hd):
    hd.post(f"/devices/{world.bob_phone.pk}/allow")
    response = hd.post(f"/devices/{world.bob_phone.pk}/block", follow=True)
    assert state_of(world.bob_phone) == AccessState.BLOCKED
    hd.post("/devices/undo", {"token": _token(response)})
    assert state_of(world.bob_phone) == AccessState.ALLOWED
    assert MailboxDeviceId.objects.get(device_key="bobandroid1").list == DeviceIdList.ALLOWED


def test_undo_is_refused_after_a_minute(world, hd, monkeypatch):
    response = hd.post(f"/devices/{world.alice_phone.pk}/allow", follow=True)
    token = _token(response)
    later = timezone.now() + timedelta(seconds=61)
    monkeypatch.setattr("django.core.signing.time.time", lambda: later.timestamp())
    undone = hd.post("/devices/undo", {"token": token}, follow=True)
    assert _messages(undone) == ["Too late to undo: undo is offered for 60 seconds."]
    assert state_of(world.alice_phone) == AccessState.ALLOWED


def test_only_the_person_who_acted_may_undo(world, hd):
    response = hd.post(f"/devices/{world.alice_phone.pk}/allow", follow=True)
    other = Client()
    other.force_login(world.org)
    undone = other.post("/devices/undo", {"token": _token(response)}, follow=True)
    assert _messages(undone) == ["Nothing to undo: that was not your change."]
    assert state_of(world.alice_phone) == AccessState.ALLOWED


def test_a_forged_token_undoes_nothing(world, hd):
    undone = hd.post("/devices/undo", {"token": "forged"}, follow=True)
    assert _messages(undone) == ["Nothing to undo."]


def test_bulk_block_offers_undo_for_all_of_them(world, hd):
    ids = [world.alice_phone.pk, world.bob_phone.pk]
    response = hd.post("/devices/bulk", {"action": "block", "ids": ids}, follow=True)
    assert "Undo the Block of 2 devices" in html.unescape(response.content.decode())
    assert state_of(world.alice_phone) == state_of(world.bob_phone) == AccessState.BLOCKED
    undone = hd.post("/devices/undo", {"token": _token(response)}, follow=True)
    assert _messages(undone) == [
        "Undid the Block of 2 devices: 2 devices from blocked to quarantined."
    ]
    assert state_of(world.alice_phone) == state_of(world.bob_phone) == AccessState.QUARANTINED
    assert AuditEvent.objects.filter(action="device.undo").count() == 2
