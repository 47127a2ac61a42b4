"""The quarantine page's other buttons through the API (replace, the bulk allow / block),
the device page's history, an end user's self-approval, and the rule previews."""

import pytest

from devices import actions
from devices.audit import SYSTEM
from devices.models import AuditEvent, AuditSource, DeviceAccessRule, MailboxDeviceId, MobileDevice
from tests import test_api_support as support

cast, client_for = support.cast, support.client_for  # the shared fixtures

DEVICES = "/api/v1/devices"


def assert_error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"message", "errors"} and body["message"]
    return body


def state(device_id: str) -> str:
    return MobileDevice.objects.get(device_id=device_id).access_state


@pytest.fixture
def old_phone(cast):
    """Alice's Android, approved: the new iPhone replaces it."""
    device = cast["devices"]["alice-android"]
    actions.allow_device(SYSTEM, device.mailbox, device.device_id)
    return device


# ---------------------------------------------------------------------------
# replace


def test_replace_allows_the_new_device_and_removes_the_old(cast, client_for, old_phone):
    new = cast["devices"]["alice-iphone"]
    response = client_for("helpdesk").post(f"{DEVICES}/{new.pk}/replace", {"old": old_phone.pk})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["device"]["access_state"] == "Allowed"
    assert body["changes"] == [{"from": "Quarantined", "to": "Allowed", "count": 1}]
    assert not MobileDevice.objects.filter(pk=old_phone.pk).exists()
    assert list(MailboxDeviceId.objects.values_list("device_id", flat=True)) == ["AliceIphone1"]
    assert AuditEvent.objects.get(action="device.replace").source == AuditSource.API


@pytest.mark.parametrize(
    "old,field,message",
    [
        ("bob", None, "A device can only replace another device of the same mailbox."),
        ("quarantined", None, "AliceDroid1 is not an approved device; nothing to replace."),
        (424242, "old", None),
        ("x", "old", None),
        (None, "old", None),
    ],
)
def test_a_bad_replacement_is_400_and_changes_nothing(cast, client_for, old, field, message):
    named = {
        "bob": cast["devices"]["bob-iphone"].pk,
        "quarantined": cast["devices"]["alice-android"].pk,
    }
    new = cast["devices"]["alice-iphone"]
    body = {} if old is None else {"old": named.get(old, old)}
    error = assert_error(client_for("org").post(f"{DEVICES}/{new.pk}/replace", body), 400)
    if field:
        assert set(error["errors"]) == {field}
    if message:
        assert error["message"] == message
    assert MobileDevice.objects.count() == 3
    assert state("AliceIphone1") == "Quarantined"
    assert not AuditEvent.objects.filter(source=AuditSource.API).exists()


def test_an_end_user_cannot_replace(cast, client_for, old_phone):
    new = cast["devices"]["alice-iphone"]
    assert_error(
        client_for("alice").post(f"{DEVICES}/{new.pk}/replace", {"old": old_phone.pk}), 403
    )
    assert MobileDevice.objects.filter(pk=old_phone.pk).exists()


# ---------------------------------------------------------------------------
# bulk


def test_bulk_allow_reports_done_and_missing(cast, client_for):
    pks = [cast["devices"]["alice-iphone"].pk, cast["devices"]["bob-iphone"].pk]
    response = client_for("helpdesk").post(
        f"{DEVICES}/bulk", {"action": "allow", "ids": [*pks, 424242, pks[0]]}
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["done"] == sorted(pks)
    assert body["failed"] == []
    assert body["missing"] == [424242]
    assert body["changed"] == 2
    assert body["changes"] == [{"from": "Quarantined", "to": "Allowed", "count": 2}]
    assert body["message"] == "Allowed 2 devices; 2 devices from quarantined to allowed"
    assert (state("AliceIphone1"), state("BobIphone1"), state("AliceDroid1")) == (
        "Allowed",
        "Allowed",
        "Quarantined",
    )
    assert AuditEvent.objects.filter(action="device.allow", source=AuditSource.API).count() == 2


@pytest.mark.parametrize(
    "body,field",
    [
        ({"action": "wipe", "ids": [1]}, "action"),
        ({"action": "allow", "ids": []}, "ids"),
        ({"action": "allow", "ids": ["a"]}, "ids.0"),
        ({"action": "block", "ids": list(range(1, 502))}, "ids"),
        ({"action": "block"}, "ids"),
    ],
)
def test_a_bad_bulk_request_is_400_and_changes_nothing(cast, client_for, body, field):
    error = assert_error(client_for("org").post(f"{DEVICES}/bulk", body), 400)
    assert field in error["errors"]
    assert set(MobileDevice.objects.values_list("access_state", flat=True)) == {"Quarantined"}


def test_an_end_user_cannot_bulk_allow_their_devices(cast, client_for):
    pk = cast["devices"]["alice-iphone"].pk
    assert_error(client_for("alice").post(f"{DEVICES}/bulk", {"action": "allow", "ids": [pk]}), 403)
    assert state("AliceIphone1") == "Quarantined"


# ---------------------------------------------------------------------------
# self-approval


def test_an_end_user_approves_their_own_device_when_allowed(cast, client_for):
    device = cast["devices"]["alice-iphone"]
    alice = client_for("alice")
    refused = assert_error(alice.post(f"{DEVICES}/{device.pk}/approve"), 400)
    assert refused["message"].startswith("Your organisation does not let users approve")
    assert state("AliceIphone1") == "Quarantined"
    actions.set_org_settings(SYSTEM, self_approval="first")
    response = alice.post(f"{DEVICES}/{device.pk}/approve")
    assert response.status_code == 200, response.content
    assert response.json()["device"]["access_state"] == "Allowed"
    event = AuditEvent.objects.get(action="device.self_approve")
    assert (event.actor_name, event.source) == ("alice", AuditSource.API)
    second = cast["devices"]["alice-android"]
    assert (
        "first device only"
        in assert_error(alice.post(f"{DEVICES}/{second.pk}/approve"), 400)["message"]
    )


def test_nobody_approves_someone_elses_device(cast, client_for):
    actions.set_org_settings(SYSTEM, self_approval="always")
    device = cast["devices"]["alice-iphone"]
    for role in ("bob", "org", "helpdesk"):
        assert_error(client_for(role).post(f"{DEVICES}/{device.pk}/approve"), 404)
    assert state("AliceIphone1") == "Quarantined"


# ---------------------------------------------------------------------------
# history


def test_the_history_says_who_changed_what_newest_first(cast, client_for):
    device = cast["devices"]["alice-iphone"]
    client_for("helpdesk").post(f"{DEVICES}/{device.pk}/allow")
    history = client_for("alice").get(f"{DEVICES}/{device.pk}/history")
    assert history.status_code == 200, history.content
    first, *rest = history.json()
    assert (first["from_state"], first["to_state"], first["to_reason"]) == (
        "Quarantined",
        "Allowed",
        "Individual",
    )
    assert first["actor"] == "henry"
    assert "AliceIphone1 allowed" in first["message"]
    assert rest and rest[-1]["to_state"] == "Quarantined"
    assert_error(client_for("bob").get(f"{DEVICES}/{device.pk}/history"), 404)


# ---------------------------------------------------------------------------
# the rule previews: changing and removing


def test_the_rule_previews_count_and_change_nothing(cast, client_for):
    rule = actions.create_rule(
        SYSTEM, characteristic="DeviceType", query_string="iPhone", access_level="Allow"
    ).obj
    helpdesk = client_for("helpdesk")
    change = helpdesk.post(f"/api/v1/rules/{rule.pk}/preview", {"access_level": "Block"})
    assert change.status_code == 200, change.content
    assert change.json() == {
        "changed": 2,
        "changes": [{"from": "Allowed", "to": "Blocked", "count": 2}],
    }
    removal = helpdesk.get(f"/api/v1/rules/{rule.pk}/removal-preview").json()
    assert removal["changes"] == [{"from": "Allowed", "to": "Quarantined", "count": 2}]
    bad = helpdesk.post(f"/api/v1/rules/{rule.pk}/preview", {"characteristic": "Colour"})
    assert set(assert_error(bad, 400)["errors"]) == {"characteristic"}
    assert DeviceAccessRule.objects.get().access_level == "Allow"
    assert state("AliceIphone1") == "Allowed"
