"""The quarantine list, the device list, the device page and the actions on devices."""

import html
from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.utils import timezone

from devices import actions
from devices.models import AccessState, AuditEvent, DeviceStateChange, MobileDevice

from .conftest import SETUP, state_of


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


def _rows(response):
    return [d.device_id for d in response.context["page"]]


def test_quarantine_lists_quarantined_devices_waiting_longest_first(world, hd):
    MobileDevice.objects.filter(pk=world.bob_phone.pk).update(
        state_changed_at=timezone.now() - timedelta(days=3)
    )
    response = hd.get("/devices/quarantine/")
    assert response.status_code == 200
    rows = _rows(response)
    assert rows[0] == "BOBANDROID1"
    assert set(rows) == {"ALICEIPHONE1", "ALICEIPAD1", "BOBANDROID1", "CAROLIPHONE1"}
    page = response.content.decode()
    for column in ("User", "DeviceType", "Model", "OS", "User agent", "First seen", "Waiting"):
        assert f">{column}<" in page
    assert "3\xa0days" in page


def test_quarantine_search_filters_and_sorting(world, hd):
    assert _rows(hd.get("/devices/quarantine/?q=carol")) == ["CAROLIPHONE1"]
    assert _rows(hd.get("/devices/quarantine/?q=Alice+Archer&sort=model")) == [
        "ALICEIPAD1",
        "ALICEIPHONE1",
    ]
    assert set(_rows(hd.get("/devices/quarantine/?device_type=iphone"))) == {
        "ALICEIPHONE1",
        "CAROLIPHONE1",
    }
    assert _rows(hd.get("/devices/quarantine/?device_model=SM-S918B")) == ["BOBANDROID1"]
    MobileDevice.objects.filter(pk=world.carol_phone.pk).update(
        state_changed_at=timezone.now() - timedelta(days=8)
    )
    assert _rows(hd.get("/devices/quarantine/?age=7d")) == ["CAROLIPHONE1"]
    assert _rows(hd.get("/devices/quarantine/?sort=user"))[:2] == ["ALICEIPAD1", "ALICEIPHONE1"]
    # Nonsense in the query string is ignored, never an error.
    assert len(_rows(hd.get("/devices/quarantine/?sort=password&age=x&per_page=7"))) == 4


def test_quarantine_paginates(world, hd):
    first = hd.get("/devices/quarantine/?per_page=25")
    assert first.context["page"].paginator.per_page == 25
    page = hd.get("/devices/quarantine/?page=99")  # out of range: the last page
    assert page.status_code == 200 and page.context["page"].number == 1


def test_device_list_filters_by_state(world, hd, admin):
    admin.post(f"/devices/{world.bob_phone.pk}/allow")
    assert _rows(hd.get("/devices/?state=Allowed")) == ["BOBANDROID1"]
    assert len(_rows(hd.get("/devices/"))) == 4


def test_the_device_lists_share_the_api_filters(world, hd, admin):
    """devices.filters.DeviceFilterSet: the API's parameters work on the pages too."""
    assert set(_rows(hd.get("/devices/quarantine/?mailbox=ALICE"))) == {
        "ALICEIPHONE1",
        "ALICEIPAD1",
    }
    assert _rows(hd.get("/devices/quarantine/?mailbox=bob@example.org")) == ["BOBANDROID1"]
    assert _rows(hd.get("/devices/?device_id=aliceiphone1")) == ["ALICEIPHONE1"]
    assert len(_rows(hd.get("/devices/?newer_than_days=1"))) == 4
    assert _rows(hd.get("/devices/?older_than_days=1")) == []
    # The rule list's "deciding now" link, and a filter without a field survives "Apply".
    rule = actions.create_rule(
        SETUP, characteristic="DeviceType", query_string="iPad", access_level="Block"
    ).obj
    response = hd.get(f"/devices/?rule={rule.pk}&mailbox=alice")
    assert _rows(response) == ["ALICEIPAD1"]
    page = response.content.decode()
    assert f'<input type="hidden" name="rule" value="{rule.pk}">' in page
    assert '<input type="hidden" name="mailbox" value="alice">' in page
    assert "Clear filters" in page
    assert "Clear filters" not in hd.get("/devices/").content.decode()


def test_allow_from_the_quarantine_list(world, hd):
    response = hd.post(
        f"/devices/{world.alice_phone.pk}/allow", {"next": "/devices/quarantine/"}, follow=True
    )
    assert response.redirect_chain[-1] == ("/devices/quarantine/", 302)
    assert _messages(response) == [
        "Allowed iPhone ALICEIPHONE1 for alice: was quarantined, now allowed"
    ]
    assert "ALICEIPHONE1" not in _rows(response)
    assert state_of(world.alice_phone) == AccessState.ALLOWED
    event = AuditEvent.objects.filter(action="device.allow").get()
    assert (event.actor_name, event.source, event.client_ip) == ("hd", "ui", "127.0.0.1")
    assert event.request_id


def test_block_and_the_message_says_what_happened(world, hd):
    response = hd.post(f"/devices/{world.bob_phone.pk}/block", follow=True)
    assert response.redirect_chain[-1] == (f"/devices/{world.bob_phone.pk}/", 302)
    assert _messages(response) == [
        "Blocked Android BOBANDROID1 for bob: was quarantined, now blocked"
    ]
    again = hd.post(f"/devices/{world.bob_phone.pk}/block", follow=True)
    assert _messages(again) == ["Blocked Android BOBANDROID1 for bob: no change, already blocked"]


def test_unsafe_next_is_ignored(world, hd):
    response = hd.post(
        f"/devices/{world.bob_phone.pk}/allow", {"next": "https://evil.example/phish"}
    )
    assert response["Location"] == f"/devices/{world.bob_phone.pk}/"
    response = hd.post(f"/devices/{world.bob_phone.pk}/block", {"next": "//evil.example/"})
    assert response["Location"] == f"/devices/{world.bob_phone.pk}/"


def test_remove(world, hd):
    pk = world.carol_phone.pk
    response = hd.post(f"/devices/{pk}/remove", {"next": f"/devices/{pk}/"}, follow=True)
    assert response.redirect_chain[-1] == ("/devices/quarantine/", 302)
    assert _messages(response) == [
        "Removed the partnership of iPhone CAROLIPHONE1 for carol. "
        "If the device syncs again it starts over as a new device."
    ]
    assert not MobileDevice.objects.filter(pk=pk).exists()
    assert hd.post(f"/devices/{pk}/remove").status_code == 404


def test_bulk_allow(world, hd):
    ids = [world.alice_phone.pk, world.bob_phone.pk]
    response = hd.post(
        "/devices/bulk",
        {"action": "allow", "ids": [str(i) for i in ids], "next": "/devices/quarantine/"},
        follow=True,
    )
    assert response.redirect_chain[-1] == ("/devices/quarantine/", 302)
    (message,) = _messages(response)
    assert message.startswith("Allowed 2 devices: ")
    assert "iPhone ALICEIPHONE1 for alice" in message and "Android BOBANDROID1 for bob" in message
    assert message.endswith("2 devices from quarantined to allowed.")
    assert set(_rows(response)) == {"ALICEIPAD1", "CAROLIPHONE1"}


def test_bulk_block_accepts_a_comma_separated_list(world, hd):
    hd.post("/devices/bulk", {"action": "block", "ids": f"{world.alice_tablet.pk},999999"})
    assert state_of(world.alice_tablet) == AccessState.BLOCKED


@pytest.mark.parametrize(
    "data",
    [
        {"action": "allow"},
        {"action": "allow", "ids": "x"},
        {"action": "delete", "ids": "1"},
        {"ids": "1"},
    ],
)
def test_bad_bulk_requests_change_nothing(world, hd, data):
    before = AuditEvent.objects.count()
    response = hd.post("/devices/bulk", data, follow=True)
    assert _messages(response)[0].startswith("Nothing was changed")
    assert AuditEvent.objects.count() == before


def test_device_page(world, hd):
    hd.post(f"/devices/{world.alice_phone.pk}/allow")
    response = hd.get(f"/devices/{world.alice_phone.pk}/")
    page = response.content.decode()
    for text in ("ALICEIPHONE1", "iPhone15,2", "iOS 17.4", "alice@example.org"):
        assert text in page
    assert "Allowed because its DeviceId is on the allowed list of the mailbox alice." in page
    # The history says who did what, and when.
    history = list(DeviceStateChange.objects.filter(device=world.alice_phone))
    assert [(h.from_state, h.to_state) for h in history] == [
        ("Unknown", "Quarantined"),
        ("Quarantined", "Allowed"),
    ]
    assert "by hd in the control panel" in page


def test_device_page_names_the_deciding_rule(world, admin):
    from devices import actions

    from .conftest import SETUP

    rule = actions.create_rule(
        SETUP, characteristic="DeviceType", query_string="iPad", access_level="Block"
    ).obj
    page = html.unescape(admin.get(f"/devices/{world.alice_tablet.pk}/").content.decode())
    assert 'Blocked by the rule "iPad" on DeviceType (Block).' in page
    assert f'href="/rules/{rule.pk}/edit"' in page


def test_help_desk_sees_create_a_rule_disabled_with_the_reason(world, hd, admin):
    reason = "Only Organization Management can create or change device access rules."
    for url in ("/devices/quarantine/", f"/devices/{world.alice_phone.pk}/"):
        page = hd.get(url).content.decode()
        assert reason in page
        assert "/rules/new?device=" not in page
        page = admin.get(url).content.decode()
        assert f"/rules/new?device={world.alice_phone.pk}" in page
        assert reason not in page


def test_a_device_blocked_by_policy_points_at_its_mailbox(world, admin):
    admin.post(
        f"/mailboxes/{world.alice_box.pk}/", {"op": "activesync", "activesync_enabled": "false"}
    )
    page = html.unescape(admin.get(f"/devices/{world.alice_phone.pk}/").content.decode())
    assert "Blocked because ActiveSync is turned off for the mailbox alice." in page
    assert "ActiveSync is off for" in page
    assert f'action="/devices/{world.alice_phone.pk}/allow"' not in page


def test_the_history_says_who_in_words(world, hd):
    hd.post(f"/devices/{world.alice_phone.pk}/allow")
    page = html.unescape(hd.get(f"/devices/{world.alice_phone.pk}/").content.decode())
    assert "by hd in the control panel" in page
    assert "when the device synced" in page  # the gate's first decision
    assert "via activesync gate" not in page and "via control panel" not in page
