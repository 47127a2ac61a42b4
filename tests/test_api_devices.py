"""Devices: the shared filters, detail, allow / block / remove through devices.actions."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from devices.filters import DeviceFilterSet
from devices.models import AuditEvent, AuditSource, MailboxDeviceId, MobileDevice
from tests import test_api_support as support

cast, client_for = support.cast, support.client_for  # the shared fixtures

DEVICES = "/api/v1/devices"


@pytest.fixture
def org(client_for):
    return client_for("org")


def ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [d["device_id"] for d in response.json()["results"]]


# ---------------------------------------------------------------------------
# the list and its filters


def test_a_device_has_the_cli_keys(cast, org):
    device = org.get(f"{DEVICES}/{cast['devices']['alice-iphone'].pk}").json()
    assert device["mailbox"] == "alice"
    assert device["device_id"] == "AliceIphone1"
    assert device["access_state"] == "Quarantined"
    assert device["access_state_reason"] == "Global"
    assert device["access_rule"] is None
    for key in ("device_type", "device_model", "device_os", "user_agent", "first_seen"):
        assert key in device


def test_the_quarantine_list_waiting_longest_first(cast, org):
    MobileDevice.objects.filter(device_id="BobIphone1").update(
        state_changed_at=timezone.now() - timedelta(days=3)
    )
    response = org.get(DEVICES, {"state": "Quarantined", "sort": "waiting"})
    assert ids(response)[0] == "BobIphone1"
    assert response.json()["count"] == 3


@pytest.mark.parametrize(
    "params,expected",
    [
        ({"q": "liddell"}, {"AliceIphone1", "AliceDroid1"}),
        ({"q": "droid"}, {"AliceDroid1"}),
        ({"mailbox": "BOB"}, {"BobIphone1"}),
        ({"mailbox": "bob@example.org"}, {"BobIphone1"}),
        ({"mailbox": "CONTOSO\\bob"}, {"BobIphone1"}),
        ({"device_id": "aliceiphone1"}, {"AliceIphone1"}),
        ({"device_type": "android"}, {"AliceDroid1"}),
        ({"device_model": "pixel 8"}, {"AliceDroid1"}),
        ({"older_than_days": 10}, {"BobIphone1"}),
        ({"newer_than_days": 10}, {"AliceIphone1", "AliceDroid1"}),
        ({"age": "7d"}, {"BobIphone1"}),
        ({"state": "Allowed"}, set()),
    ],
)
def test_filters(cast, org, params, expected):
    long_ago = timezone.now() - timedelta(days=20)
    MobileDevice.objects.filter(device_id="BobIphone1").update(
        first_seen=long_ago, state_changed_at=long_ago
    )
    assert set(ids(org.get(DEVICES, params))) == expected


@pytest.mark.parametrize(
    "params,field",
    [
        ({"state": "Sleeping"}, "state"),
        ({"older_than_days": "-1"}, "older_than_days"),
        ({"newer_than_days": "a week"}, "newer_than_days"),
        ({"sort": "colour"}, "sort"),
        ({"age": "1y"}, "age"),
    ],
)
def test_a_bad_filter_is_400_naming_it(cast, org, params, field):
    response = org.get(DEVICES, params)
    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]


def test_pages_carry_a_count(cast, org):
    response = org.get(DEVICES, {"page_size": 2})
    assert response.json()["count"] == 3
    assert len(response.json()["results"]) == 2
    assert "page=2" in response.json()["next"]
    assert org.get(DEVICES, {"page_size": 2, "page": 9}).status_code == 404


def test_the_list_costs_the_same_queries_for_3_or_30_devices(cast, org):
    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert org.get(DEVICES).status_code == 200
        return len(queries)

    org.get("/api/v1/me")  # the token's first use writes last_used_at
    few = count()
    for i in range(27):
        support.contact(cast["mailboxes"]["bob"], f"Extra{i}")
    assert count() == few


def test_the_filterset_serves_a_page_too(cast):
    """The quarantine page hands it request.GET and its own default order."""
    filters = DeviceFilterSet(
        {"state": "Quarantined", "q": "alice"},
        MobileDevice.objects.all(),
        default_sort="waiting",
    )
    assert filters.is_valid()
    assert [d.device_id for d in filters.qs] == ["AliceIphone1", "AliceDroid1"]
    assert not DeviceFilterSet({"state": "nope"}, MobileDevice.objects.all()).is_valid()


# ---------------------------------------------------------------------------
# allow, block, remove


def test_allow_answers_with_the_change_and_is_audited_as_api(cast, org):
    device = cast["devices"]["alice-iphone"]
    response = org.post(
        f"{DEVICES}/{device.pk}/allow", HTTP_X_REQUEST_ID="ticket-4711", REMOTE_ADDR="10.1.2.3"
    )
    assert response.status_code == 200
    body = response.json()
    assert body["device"]["access_state"] == "Allowed"
    assert body["device"]["access_state_reason"] == "Individual"
    assert body["changed"] == 1
    assert body["changes"] == [{"from": "Quarantined", "to": "Allowed", "count": 1}]
    assert "AliceIphone1 allowed" in body["message"]
    event = AuditEvent.objects.get(action="device.allow")
    assert event.source == AuditSource.API
    assert event.actor_name == "olivia"
    assert event.request_id == "ticket-4711"
    assert event.client_ip == "10.1.2.3"
    assert MailboxDeviceId.objects.get(device_id="AliceIphone1").list == "allowed"


def test_allowing_an_allowed_device_changes_nothing(cast, org):
    url = f"{DEVICES}/{cast['devices']['alice-iphone'].pk}/allow"
    org.post(url)
    again = org.post(url).json()
    assert again["changed"] == 0
    assert again["changes"] == []


def test_help_desk_blocks(cast, client_for):
    device = cast["devices"]["bob-iphone"]
    body = client_for("helpdesk").post(f"{DEVICES}/{device.pk}/block").json()
    assert body["device"]["access_state"] == "Blocked"
    assert body["changes"] == [{"from": "Quarantined", "to": "Blocked", "count": 1}]
    assert AuditEvent.objects.get(action="device.block").actor_name == "henry"


def test_remove_deletes_the_partnership(cast, client_for):
    device = cast["devices"]["bob-iphone"]
    response = client_for("helpdesk").delete(f"{DEVICES}/{device.pk}")
    assert response.status_code == 200
    assert response.json()["device"]["device_id"] == "BobIphone1"
    assert not MobileDevice.objects.filter(pk=device.pk).exists()
    event = AuditEvent.objects.get(action="device.remove")
    assert event.source == AuditSource.API
    assert client_for("helpdesk").delete(f"{DEVICES}/{device.pk}").status_code == 404


def test_an_end_user_cannot_allow_their_own_device(cast, client_for):
    device = cast["devices"]["alice-iphone"]
    response = client_for("alice").post(f"{DEVICES}/{device.pk}/allow")
    assert response.status_code == 403
    assert response.json()["message"] == "Ask the help desk to allow or block a device."
    device.refresh_from_db()
    assert device.access_state == "Quarantined"
    assert not AuditEvent.objects.filter(source=AuditSource.API).exists()


def test_someone_elses_device_does_not_exist_for_an_end_user(cast, client_for):
    device = cast["devices"]["alice-iphone"]
    bob = client_for("bob")
    assert bob.get(f"{DEVICES}/{device.pk}").status_code == 404
    assert bob.get(f"{DEVICES}/999999").status_code == 404  # the same answer
