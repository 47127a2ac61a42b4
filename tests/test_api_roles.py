"""Every endpoint against every role: the status code each one gets.

Organization Management: everything. Help Desk: reads everything, allows,
blocks, replaces and removes devices, edits mailbox lists; rules, org settings,
access policies, org-wide DeviceIds, grandfathering and purge are read-only
(dry runs and previews allowed); no sent mail; another login's rule change
job is a 404. End users (alice, bob): their own devices only, read only, except
approving their own quarantined device where the organisation allows it;
someone else's device is a 404. A login with no role: 403. Anonymous: 401.
"""

import pytest

from devices import actions
from devices.audit import SYSTEM
from devices.models import AccessPolicy, AuditEvent, DeviceAccessRule, OrgDeviceId, RuleChangeJob
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
OWNER_ONLY = expect(404, alice=200, norole=403)  # self-approval: one's own device only
MINE_OR_ORG = expect(404, org=200)  # a rule change job asked for by olivia (org)

RULE = {"characteristic": "DeviceModel", "query_string": "Pixel*", "access_level": "Block"}
POLICY = {"name": "Sales", "default_access_level": "Allow", "domains": ["sales.example.org"]}

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
    ("post", "/api/v1/org-settings/preview", {"default_access_level": "Allow"}, STAFF_READ),
    ("patch", "/api/v1/mailboxes/{alice}", {"activesync_enabled": False}, ORG_WRITE),
    ("put", "/api/v1/mailboxes/{alice}/access-policy", {"access_policy": "{policy}"}, ORG_WRITE),
    ("get", "/api/v1/devices/{device}/history", None, OWN_DEVICE),
    ("post", "/api/v1/devices/{device}/replace", {"old": "{allowed}"}, OWN_DEVICE_CHANGE),
    ("post", "/api/v1/devices/{device}/approve", None, OWNER_ONLY),
    (
        "post",
        "/api/v1/devices/bulk",
        {"action": "allow", "ids": ["{device}"]},
        expect(403, org=200, helpdesk=200),
    ),
    ("post", "/api/v1/rules/{rule}/preview", {"access_level": "Block"}, STAFF_READ),
    ("get", "/api/v1/rules/{rule}/removal-preview", None, STAFF_READ),
    ("get", "/api/v1/rule-change-jobs", None, expect(200)),
    ("get", "/api/v1/rule-change-jobs/{job}", None, MINE_OR_ORG),
    ("get", "/api/v1/access-policies", None, STAFF_READ),
    ("post", "/api/v1/access-policies", POLICY, expect(403, org=201)),
    ("get", "/api/v1/access-policies/{policy}", None, STAFF_READ),
    ("put", "/api/v1/access-policies/{policy}", POLICY, ORG_WRITE),
    ("patch", "/api/v1/access-policies/{policy}", {"priority": 5}, ORG_WRITE),
    ("delete", "/api/v1/access-policies/{policy}", None, ORG_WRITE),
    ("get", "/api/v1/org-device-ids", None, STAFF_READ),
    (
        "post",
        "/api/v1/org-device-ids",
        {"device_id": "Loan7", "note": "shelf"},
        expect(403, org=201),
    ),
    ("get", "/api/v1/org-device-ids/{org_id}", None, STAFF_READ),
    ("delete", "/api/v1/org-device-ids/{org_id}", None, ORG_WRITE),
    ("get", "/api/v1/grandfather-devices", None, STAFF_READ),
    ("post", "/api/v1/grandfather-devices", None, ORG_WRITE),
    ("get", "/api/v1/purge-quarantined?older_than_days=0", None, STAFF_READ),
    ("post", "/api/v1/purge-quarantined", {"older_than_days": 0}, ORG_WRITE),
]


def _fill(body, ids: dict):
    """The body with "{name}" placeholders replaced by the ids (numbers, not strings)."""
    if isinstance(body, dict):
        return {key: _fill(value, ids) for key, value in body.items()}
    if isinstance(body, list):
        return [_fill(value, ids) for value in body]
    if isinstance(body, str) and body.startswith("{") and body.endswith("}"):
        return ids[body[1:-1]]
    return body


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
    policy = AccessPolicy.objects.create(name="Interns", default_access_level="Block")
    org_id = OrgDeviceId.objects.create(device_id="Loan1")
    job = RuleChangeJob.objects.create(
        kind=RuleChangeJob.Kind.CREATE,
        params=RULE,
        user=cast["users"]["org"],
        user_name="olivia",
        source="ui",
        devices_total=3,
    )
    allowed = cast["devices"]["alice-android"]
    actions.allow_device(SYSTEM, allowed.mailbox, allowed.device_id)  # replace needs one
    actions.set_org_settings(SYSTEM, self_approval="always")  # approve needs it
    ids = {
        "alice": cast["mailboxes"]["alice"].pk,
        "device": cast["devices"]["alice-iphone"].pk,
        "allowed": allowed.pk,
        "rule": rule.pk,
        "event": AuditEvent.objects.values_list("pk", flat=True).first(),
        "mail": Notification.objects.values_list("pk", flat=True).first(),
        "policy": policy.pk,
        "org_id": org_id.pk,
        "job": job.pk,
    }
    client = client_for(role)
    response = getattr(client, method)(url.format(**ids), _fill(body, ids), format="json")
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
    tested = {(method, _normalise(url).split("?")[0]) for method, url, _, _ in MATRIX}
    assert documented == tested


def _normalise(url: str) -> str:
    for name in (
        "{alice}",
        "{device}",
        "{rule}",
        "{event}",
        "{mail}",
        "{policy}",
        "{org_id}",
        "{job}",
    ):
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
