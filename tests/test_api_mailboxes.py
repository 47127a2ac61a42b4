"""Mailboxes: list, detail, and their allowed / blocked DeviceId lists."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from devices import actions
from devices.audit import SYSTEM
from devices.models import AuditEvent, AuditSource, MobileDevice
from tests import test_api_support as support

cast, client_for = support.cast, support.client_for  # the shared fixtures

MAILBOXES = "/api/v1/mailboxes"


@pytest.fixture
def helpdesk(client_for):
    return client_for("helpdesk")


def test_list_and_detail(cast, helpdesk):
    body = helpdesk.get(MAILBOXES).json()
    assert body["count"] == 2
    alice = body["results"][0]
    assert alice["alias"] == "alice"
    assert alice["primary_smtp_address"] == "alice@example.org"
    assert alice["login"] == "alice"
    assert alice["device_count"] == 2
    detail = helpdesk.get(f"{MAILBOXES}/{alice['id']}").json()
    assert detail == alice


@pytest.mark.parametrize(
    "params,aliases",
    [
        ({"q": "builder"}, ["bob"]),
        ({"alias": "ALICE"}, ["alice"]),
        ({"activesync_enabled": "false"}, []),
    ],
)
def test_filters(cast, helpdesk, params, aliases):
    results = helpdesk.get(MAILBOXES, params).json()["results"]
    assert [m["alias"] for m in results] == aliases


def test_the_lists_answer_and_change(cast, helpdesk):
    alice = cast["mailboxes"]["alice"]
    url = f"{MAILBOXES}/{alice.pk}/device-ids"
    response = helpdesk.patch(url, {"add_allowed": ["AliceIphone1"], "add_blocked": ["Lost1"]})
    assert response.status_code == 200
    body = response.json()
    assert body["mailbox"]["allowed_device_ids"] == ["AliceIphone1"]
    assert body["mailbox"]["blocked_device_ids"] == ["Lost1"]
    assert body["changes"] == [{"from": "Quarantined", "to": "Allowed", "count": 1}]
    assert helpdesk.get(url).json() == {
        "allowed_device_ids": ["AliceIphone1"],
        "blocked_device_ids": ["Lost1"],
    }
    event = AuditEvent.objects.get(action="mailbox.update")
    assert event.source == AuditSource.API
    assert event.actor_name == "henry"

    response = helpdesk.patch(url, {"add_blocked": ["aliceiphone1"], "remove_blocked": ["Lost1"]})
    assert response.json()["mailbox"]["allowed_device_ids"] == []
    assert response.json()["mailbox"]["blocked_device_ids"] == ["AliceIphone1"]  # moved
    assert MobileDevice.objects.get(device_id="AliceIphone1").access_state == "Blocked"


@pytest.mark.parametrize(
    "body,message",
    [
        ({"add_allowed": ["X1"], "add_blocked": ["x1"]}, "cannot be both allowed and blocked"),
        ({"add_allowed": ["has space"]}, "is not a valid DeviceId"),
    ],
)
def test_refused_by_the_action_is_400(cast, helpdesk, body, message):
    response = helpdesk.patch(f"{MAILBOXES}/{cast['mailboxes']['alice'].pk}/device-ids", body)
    assert response.status_code == 400
    assert message in response.json()["message"]
    assert not AuditEvent.objects.filter(source=AuditSource.API).exists()


def test_a_wrong_shape_is_400_naming_the_item(cast, helpdesk):
    response = helpdesk.patch(
        f"{MAILBOXES}/{cast['mailboxes']['alice'].pk}/device-ids",
        {"add_allowed": ["ok", "x" * 65]},
    )
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["add_allowed.1"]


def test_an_unknown_mailbox_is_404(cast, helpdesk):
    assert helpdesk.get(f"{MAILBOXES}/999").status_code == 404
    assert helpdesk.patch(f"{MAILBOXES}/999/device-ids", {"add_allowed": ["a"]}).status_code == 404


def test_the_list_costs_the_same_queries_for_2_or_12_mailboxes(cast, helpdesk):
    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert helpdesk.get(MAILBOXES).status_code == 200
        return len(queries)

    helpdesk.get("/api/v1/me")  # the token's first use writes last_used_at
    few = count()
    for i in range(10):
        mailbox = actions.create_mailbox(
            SYSTEM, alias=f"user{i}", email=f"user{i}@example.org", password="pw"
        ).obj
        actions.set_mailbox(SYSTEM, mailbox, add_allowed=[f"D{i}"], add_blocked=[f"B{i}"])
    assert count() == few
