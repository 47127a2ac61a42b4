"""The audit log: filters, oldest first, cursor pages."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from devices.models import AuditEvent
from tests import test_api_support as support

cast, client_for = support.cast, support.client_for  # the shared fixtures

URL = "/api/v1/audit-events"


@pytest.fixture
def helpdesk(client_for):
    return client_for("helpdesk")


def actions_of(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [e["action"] for e in response.json()["results"]]


def test_oldest_first_with_the_cli_keys(cast, helpdesk):
    events = helpdesk.get(URL).json()["results"]
    assert events[0]["action"] == "mailbox.create"
    times = [e["time"] for e in events]
    assert times == sorted(times)
    for key in ("time", "actor", "source", "action", "object_type", "object_repr", "message"):
        assert key in events[0]
    assert "before" in events[0] and "after" in events[0]


def test_newest_first_on_request(cast, helpdesk):
    times = [e["time"] for e in helpdesk.get(URL, {"ordering": "-time"}).json()["results"]]
    assert times == sorted(times, reverse=True)


def test_an_api_change_is_found_by_actor_source_and_action(cast, client_for, helpdesk):
    client_for("org").post(f"/api/v1/devices/{cast['devices']['alice-iphone'].pk}/allow")
    assert actions_of(helpdesk.get(URL, {"actor": "OLIVIA"})) == ["device.allow"]
    assert actions_of(helpdesk.get(URL, {"source": "api"})) == ["device.allow"]
    assert actions_of(helpdesk.get(URL, {"action": "device.allow"})) == ["device.allow"]
    assert set(actions_of(helpdesk.get(URL, {"action": "device.*"}))) == {
        "device.create",
        "device.allow",
    }
    assert actions_of(helpdesk.get(URL, {"q": "AliceIphone1 allowed"})) == ["device.allow"]


def test_since_and_until(cast, helpdesk):
    old = AuditEvent.objects.create(  # the log is append-only: an old event is made, not aged
        time=timezone.now() - timedelta(days=40),
        actor_name="olivia",
        source="ui",
        action="rule.create",
        object_type="DeviceAccessRule",
        message="An old change",
    )
    cutoff = (timezone.now() - timedelta(days=1)).isoformat()
    before = helpdesk.get(URL, {"until": cutoff}).json()["results"]
    assert [e["id"] for e in before] == [old.pk]
    after = helpdesk.get(URL, {"since": cutoff}).json()["results"]
    assert old.pk not in [e["id"] for e in after]
    response = helpdesk.get(URL, {"since": "last tuesday"})
    assert response.status_code == 400
    assert "since" in response.json()["errors"]


def test_any_offset_python_reads_is_compared_in_utc(cast, helpdesk):
    """PostgreSQL refuses offsets beyond 15:59; Python reads up to 23:59 (was a 500)."""
    old = AuditEvent.objects.create(
        time=datetime(2026, 1, 13, 20, 0, tzinfo=UTC),
        actor_name="olivia",
        source="ui",
        action="rule.create",
        object_type="DeviceAccessRule",
        message="An old change",
    )
    # 07:02:04-18:54 is 01:56:04 UTC the next day: after the event.
    response = helpdesk.get(URL, {"until": "2026-01-13T07:02:04-18:54"})
    assert response.status_code == 200, response.content
    assert old.pk in [e["id"] for e in response.json()["results"]]
    response = helpdesk.get(URL, {"since": "0001-01-01T00:00:00+05:00"})
    assert response.status_code == 400
    assert response.json()["errors"]["since"] == ["Enter a time between the years 1 and 9999."]


def test_cursor_pages_walk_every_event_once(cast, helpdesk):
    seen, url, params = [], URL, {"page_size": 2}
    while url:
        body = helpdesk.get(url, params).json()
        seen += [e["id"] for e in body["results"]]
        url, params = body["next"], None
    assert seen == list(AuditEvent.objects.order_by("time", "id").values_list("pk", flat=True))
    assert helpdesk.get(URL, {"cursor": "bogus"}).status_code == 404


def test_one_event(cast, helpdesk):
    event = AuditEvent.objects.first()
    assert helpdesk.get(f"{URL}/{event.pk}").json()["id"] == event.pk
