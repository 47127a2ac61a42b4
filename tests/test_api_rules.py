"""Rules: CRUD through devices.actions, each write answering with what it changed."""

import pytest

from devices.models import AuditEvent, AuditSource, DeviceAccessRule, MobileDevice
from tests import test_api_support as support

cast, client_for = support.cast, support.client_for  # the shared fixtures

RULES = "/api/v1/rules"
IPHONE = {"characteristic": "DeviceType", "query_string": "iPhone", "access_level": "Allow"}


@pytest.fixture
def org(client_for):
    return client_for("org")


def states() -> dict[str, str]:
    return dict(MobileDevice.objects.values_list("device_id", "access_state"))


def test_create_answers_with_the_devices_it_changed(cast, org):
    response = org.post(RULES, IPHONE)
    assert response.status_code == 201
    body = response.json()
    assert body["rule"]["name"] == "iPhone (DeviceType)"
    assert body["rule"]["device_count"] == 2
    assert body["rule"]["created_by"] == "olivia"
    assert body["changed"] == 2
    assert body["changes"] == [{"from": "Quarantined", "to": "Allowed", "count": 2}]
    assert states() == {
        "AliceIphone1": "Allowed",
        "BobIphone1": "Allowed",
        "AliceDroid1": "Quarantined",
    }
    event = AuditEvent.objects.get(action="rule.create")
    assert event.source == AuditSource.API
    assert event.actor_name == "olivia"


def test_choices_are_read_in_any_case(cast, org):
    response = org.post(
        RULES, {"characteristic": "devicemodel", "query_string": "Pixel*", "access_level": "block"}
    )
    assert response.status_code == 201
    assert response.json()["rule"]["characteristic"] == "DeviceModel"
    assert response.json()["rule"]["access_level"] == "Block"


def test_a_duplicate_is_409(cast, org):
    org.post(RULES, IPHONE)
    response = org.post(RULES, {**IPHONE, "query_string": "IPHONE", "access_level": "Block"})
    assert response.status_code == 409
    assert response.json() == {
        "message": "A rule for DeviceType 'IPHONE' already exists; edit that rule instead.",
        "errors": {},
    }
    assert DeviceAccessRule.objects.count() == 1


def test_changing_a_rule_into_a_duplicate_is_409(cast, org):
    org.post(RULES, IPHONE)
    other = org.post(RULES, {**IPHONE, "query_string": "Android"}).json()["rule"]
    response = org.patch(f"{RULES}/{other['id']}", {"query_string": "iphone"})
    assert response.status_code == 409


@pytest.mark.parametrize(
    "body,field",
    [
        ({**IPHONE, "characteristic": "Colour"}, "characteristic"),
        ({**IPHONE, "access_level": "Maybe"}, "access_level"),
        ({**IPHONE, "query_string": ""}, "query_string"),
        ({**IPHONE, "query_string": "x" * 257}, "query_string"),
        ({"characteristic": "DeviceType", "access_level": "Allow"}, "query_string"),
    ],
)
def test_bad_input_is_400_naming_the_field(cast, org, body, field):
    response = org.post(RULES, body)
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert response.json()["message"].startswith("Invalid input: ")
    assert not DeviceAccessRule.objects.exists()


def test_a_blank_query_string_is_refused_by_the_action(cast, org):
    response = org.post(RULES, {**IPHONE, "query_string": "   "})
    assert response.status_code == 400
    assert not DeviceAccessRule.objects.exists()


def test_update_answers_with_the_devices_it_changed(cast, org):
    rule = org.post(RULES, IPHONE).json()["rule"]
    response = org.patch(f"{RULES}/{rule['id']}", {"access_level": "Block"})
    assert response.status_code == 200
    assert response.json()["rule"]["access_level"] == "Block"
    assert response.json()["changes"] == [{"from": "Allowed", "to": "Blocked", "count": 2}]
    response = org.put(f"{RULES}/{rule['id']}", {**IPHONE, "query_string": "iPh*"})
    assert response.json()["rule"]["query_string"] == "iPh*"
    assert response.json()["changed"] == 2
    assert org.put(f"{RULES}/{rule['id']}", {"access_level": "Allow"}).status_code == 400


def test_delete_answers_with_the_devices_it_changed(cast, org):
    rule = org.post(RULES, IPHONE).json()["rule"]
    response = org.delete(f"{RULES}/{rule['id']}")
    assert response.status_code == 200
    assert response.json()["rule"]["name"] == "iPhone (DeviceType)"
    assert response.json()["changes"] == [{"from": "Allowed", "to": "Quarantined", "count": 2}]
    assert not DeviceAccessRule.objects.exists()
    assert org.delete(f"{RULES}/{rule['id']}").status_code == 404


def test_preview_tells_what_create_would_do_and_writes_nothing(cast, client_for):
    before = (AuditEvent.objects.count(), states())
    response = client_for("helpdesk").post(f"{RULES}/preview", IPHONE)
    assert response.status_code == 200
    assert response.json() == {
        "changed": 2,
        "changes": [{"from": "Quarantined", "to": "Allowed", "count": 2}],
    }
    assert (AuditEvent.objects.count(), states()) == before
    assert not DeviceAccessRule.objects.exists()


def test_list_and_filters(cast, org):
    org.post(RULES, IPHONE)
    org.post(
        RULES, {"characteristic": "DeviceOS", "query_string": "Android*", "access_level": "Block"}
    )
    assert org.get(RULES).json()["count"] == 2
    listed = org.get(RULES, {"characteristic": "DeviceOS"}).json()["results"]
    assert [r["query_string"] for r in listed] == ["Android*"]
    assert org.get(RULES, {"q": "phon"}).json()["count"] == 1
    assert org.get(RULES, {"access_level": "Never"}).status_code == 400


def test_a_version_rule_is_previewed_and_created(cast, org):
    # Every iPhone reports iOS 17.4, the Android Android 14.
    rule = {"characteristic": "DeviceOS", "query_string": "android<15", "access_level": "Block"}
    preview = org.post(f"{RULES}/preview", rule)
    assert preview.json() == {
        "changed": 1,
        "changes": [{"from": "Quarantined", "to": "Blocked", "count": 1}],
    }
    response = org.post(RULES, rule)
    assert response.status_code == 201
    assert response.json()["rule"]["name"] == "android < 15 (DeviceOS)"
    assert states()["AliceDroid1"] == "Blocked"
    patched = org.patch(f"{RULES}/{response.json()['rule']['id']}", {"query_string": "iOS >= 17.4"})
    assert patched.status_code == 200
    assert states() == {
        "AliceIphone1": "Blocked",
        "BobIphone1": "Blocked",
        "AliceDroid1": "Quarantined",
    }


@pytest.mark.parametrize(
    "query, says",
    [
        ("iOS =< 17", "'=<' is not a version operator"),
        ("iOS < 17.x", "'17.x' is not a version"),
        ("< 17", "names a family before the operator"),
    ],
)
def test_a_bad_version_rule_is_400_and_saves_nothing(cast, org, query, says):
    before = (AuditEvent.objects.count(), states())
    rule = {"characteristic": "DeviceOS", "query_string": query, "access_level": "Block"}
    for path in (RULES, f"{RULES}/preview"):
        response = org.post(path, rule)
        assert response.status_code == 400
        assert says in response.json()["message"]
    assert (AuditEvent.objects.count(), states()) == before
    assert not DeviceAccessRule.objects.exists()
