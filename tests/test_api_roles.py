"""Every endpoint against every role: the status code each one gets.

Organization Management: everything. Help Desk: reads everything, allows,
blocks and removes devices, edits mailbox lists; rules and org settings are
read-only; no sent mail. End users (alice, bob): their own devices only, read
only; someone else's device is a 404. A login with no role: 403. Anonymous: 401.
"""

import pytest

from devices.models import AuditEvent, DeviceAccessRule
from notifications.models import Notification
from tests import test_api_support as support

cast, client_for = support.cast, support.client_for  # the shared fixtures
ROLES = support.ROLES


def expect(default: int, **by_role) -> dict:
    table = {role: default for role in ROLES}
    table["anon"] = 401
    table.update(by_role)
    return table


STAFF_READ = expect(403, org=200, helpdesk=200)
STAFF_WRITE = STAFF_READ
ORG_WRITE = expect(403, org=200)
OWN_DEVICE = expect(403, org=200, helpdesk=200, alice=200, bob=404)
OWN_DEVICE_CHANGE = expect(403, org=200, helpdesk=200, alice=403, bob=404)

RULE = {"characteristic": "DeviceModel", "query_string": "Pixel*", "access_level": "Block"}

# (method, url template, body, expected status by role)
MATRIX = [
    ("get", "/api/v1/me", None, expect(200)),
    ("get", "/api/v1/org-settings", None, STAFF_READ),
    ("patch", "/api/v1/org-settings", {"send_user_mail": False}, ORG_WRITE),
    ("get", "/api/v1/mailboxes", None, STAFF_READ),
    ("get", "/api/v1/mailboxes/{alice}", None, STAFF_READ),
    ("get", "/api/v1/mailboxes/{alice}/device-ids", None, STAFF_READ),
    ("patch", "/api/v1/mailboxes/{alice}/device-ids", {"add_allowed": ["New1"]}, STAFF_WRITE),
    ("get", "/api/v1/devices", None, expect(403, org=200, helpdesk=200, alice=200, bob=200)),
    ("get", "/api/v1/devices/{device}", None, OWN_DEVICE),
    ("post", "/api/v1/devices/{device}/allow", None, OWN_DEVICE_CHANGE),
    ("post", "/api/v1/devices/{device}/block", None, OWN_DEVICE_CHANGE),
    ("delete", "/api/v1/devices/{device}", None, OWN_DEVICE_CHANGE),
    ("get", "/api/v1/rules", None, STAFF_READ),
    ("post", "/api/v1/rules", RULE, expect(403, org=201)),
    ("post", "/api/v1/rules/preview", RULE, STAFF_READ),
    ("get", "/api/v1/rules/{rule}", None, STAFF_READ),
    ("put", "/api/v1/rules/{rule}", RULE, ORG_WRITE),
    ("patch", "/api/v1/rules/{rule}", {"access_level": "Quarantine"}, ORG_WRITE),
    ("delete", "/api/v1/rules/{rule}", None, ORG_WRITE),
    ("get", "/api/v1/audit-events", None, STAFF_READ),
    ("get", "/api/v1/audit-events/{event}", None, STAFF_READ),
    ("get", "/api/v1/notifications", None, ORG_WRITE),
    ("get", "/api/v1/notifications/{mail}", None, ORG_WRITE),
    ("post", "/api/v1/notifications/{mail}/resend", None, expect(403, org=202)),
    (
        "post",
        "/api/v1/access-check",
        {"mailbox": "alice", "device_id": "Hypo1", "device_type": "iPhone"},
        STAFF_READ,
    ),
]


def _cases():
    for method, url, body, table in MATRIX:
        for role in ROLES:
            yield pytest.param(
                method, url, body, role, table[role], id=f"{method.upper()} {url} as {role}"
            )


@pytest.mark.parametrize("method,url,body,role,status", list(_cases()))
def test_role_matrix(cast, client_for, method, url, body, role, status):
    rule = DeviceAccessRule.objects.create(
        characteristic="DeviceType", query_string="Android", access_level="Allow"
    )
    ids = {
        "alice": cast["mailboxes"]["alice"].pk,
        "device": cast["devices"]["alice-iphone"].pk,
        "rule": rule.pk,
        "event": AuditEvent.objects.values_list("pk", flat=True).first(),
        "mail": Notification.objects.values_list("pk", flat=True).first(),
    }
    client = client_for(role)
    response = getattr(client, method)(url.format(**ids), body, format="json")
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    if status >= 400:
        assert set(response.json()) == {"message", "errors"}
        assert response.json()["message"]


def test_every_endpoint_is_in_the_matrix(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    documented = {
        (method, path.replace("{id}", "{}"))
        for path, operations in schema["paths"].items()
        for method in operations
    }
    tested = {(method, _normalise(url)) for method, url, _, _ in MATRIX}
    assert documented == tested


def _normalise(url: str) -> str:
    for name in ("{alice}", "{device}", "{rule}", "{event}", "{mail}"):
        url = url.replace(name, "{}")
    return url


def test_an_end_user_lists_only_their_own_devices(cast, client_for):
    for role, mine in (("alice", {"AliceIphone1", "AliceDroid1"}), ("bob", {"BobIphone1"})):
        response = client_for(role).get("/api/v1/devices")
        assert {d["device_id"] for d in response.json()["results"]} == mine
        assert response.json()["count"] == len(mine)


def test_staff_list_every_device(cast, client_for):
    for role in ("org", "helpdesk"):
        assert client_for(role).get("/api/v1/devices").json()["count"] == 3


def test_a_login_with_no_role_sees_no_device_and_is_told_why(cast, client_for):
    response = client_for("norole").get("/api/v1/devices")
    assert response.status_code == 403
    assert "no role" in response.json()["message"]


def test_help_desk_is_told_rules_are_read_only(cast, client_for):
    response = client_for("helpdesk").post("/api/v1/rules", RULE, format="json")
    assert response.json()["message"] == (
        "Only Organization Management can create or change device access rules."
    )
    assert not DeviceAccessRule.objects.exists()


def test_me_tells_the_role(cast, client_for):
    assert client_for("helpdesk").get("/api/v1/me").json() == {
        "username": "henry",
        "role": "helpdesk",
        "can_manage_devices": True,
        "can_manage_rules": False,
        "can_manage_settings": False,
        "can_read_notifications": False,
    }
    assert client_for("alice").get("/api/v1/me").json()["role"] == "enduser"
