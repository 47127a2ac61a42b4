"""Access policies through the API, a mailbox's membership, its ActiveSync switch.

Every write goes through devices.actions: the answer says what it did to the
devices, the audit event is credited to the token's user with source api, and
bad input is a 400 (409 for a duplicate name) in the API's error shape that
changes nothing.
"""

import pytest

from devices import actions
from devices.audit import SYSTEM
from devices.models import AccessPolicy, AuditEvent, AuditSource, Mailbox, MobileDevice
from devices.permissions import ACTIVESYNC_READ_ONLY, POLICIES_READ_ONLY
from tests import test_api_support as support

cast, client_for = support.cast, support.client_for  # the shared fixtures

POLICIES = "/api/v1/access-policies"


@pytest.fixture
def org(client_for):
    return client_for("org")


def assert_error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"message", "errors"} and body["message"]
    return body


def states() -> dict:
    return dict(MobileDevice.objects.values_list("device_id", "access_state"))


def test_creating_a_policy_decides_its_mailboxes_devices_again(cast, org):
    response = org.post(
        POLICIES,
        {
            "name": "Staff",
            "default_access_level": "allow",
            "domains": ["@Example.org"],
            "directory_groups": ["CN=Sales, OU=Groups,DC=example,DC=org"],
            "priority": 10,
        },
        HTTP_X_REQUEST_ID="chg-1",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    policy = body["access_policy"]
    assert policy["name"] == "Staff"
    assert policy["default_access_level"] == "Allow"
    assert policy["domains"] == ["example.org"]
    assert policy["directory_groups"] == ["cn=sales, ou=groups,dc=example,dc=org"]
    assert policy["priority"] == 10
    assert policy["mailbox_count"] == 2 and policy["member_count"] == 0
    assert body["changed"] == 3
    assert body["changes"] == [{"from": "Quarantined", "to": "Allowed", "count": 3}]
    assert set(states().values()) == {"Allowed"}
    event = AuditEvent.objects.get(action="policy.create")
    assert (event.source, event.actor_name, event.request_id) == (
        AuditSource.API,
        "olivia",
        "chg-1",
    )
    assert event.message == body["message"]


def test_list_filters_and_pages(cast, client_for):
    for name, level, priority in (
        ("Sales", "Allow", 5),
        ("Interns", "Block", 1),
        ("Lab", "Allow", 9),
    ):
        actions.create_policy(SYSTEM, name=name, default_access_level=level, priority=priority)
    helpdesk = client_for("helpdesk")
    listed = helpdesk.get(POLICIES).json()
    assert [p["name"] for p in listed["results"]] == ["Interns", "Sales", "Lab"]  # priority
    assert listed["count"] == 3
    allow = helpdesk.get(POLICIES, {"default_access_level": "Allow"}).json()["results"]
    assert [p["name"] for p in allow] == ["Sales", "Lab"]
    assert [p["name"] for p in helpdesk.get(POLICIES, {"q": "ERN"}).json()["results"]] == [
        "Interns"
    ]
    page = helpdesk.get(POLICIES, {"page_size": 1, "page": 2}).json()
    assert [p["name"] for p in page["results"]] == ["Sales"]
    assert page["next"] and page["previous"]
    bad = assert_error(helpdesk.get(POLICIES, {"default_access_level": "Maybe"}), 400)
    assert set(bad["errors"]) == {"default_access_level"}


@pytest.mark.parametrize(
    "body,field,message",
    [
        ({"name": "", "default_access_level": "Allow"}, "name", None),
        ({"name": "X", "default_access_level": "Sometimes"}, "default_access_level", None),
        ({"name": "X", "default_access_level": "Allow", "priority": 10001}, "priority", None),
        ({"name": "X", "default_access_level": "Allow", "domains": "example.org"}, "domains", None),
        (
            {"name": "X", "default_access_level": "Allow", "domains": ["not a domain"]},
            None,
            "'not a domain' is not a valid mail domain.",
        ),
        (
            {"name": "X", "default_access_level": "Allow", "directory_groups": ["sales"]},
            None,
            "'sales' is not a directory group DN (cn=...,dc=...).",
        ),
    ],
)
def test_bad_input_is_400_and_creates_nothing(cast, org, body, field, message):
    before = states()
    error = assert_error(org.post(POLICIES, body), 400)
    if field:
        assert set(error["errors"]) == {field}
    if message:
        assert error["message"] == message
    assert not AccessPolicy.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="policy.").exists()
    assert states() == before


def test_a_duplicate_name_is_409(cast, org):
    actions.create_policy(SYSTEM, name="Sales", default_access_level="Allow")
    error = assert_error(
        org.post(POLICIES, {"name": "SALES", "default_access_level": "Block"}), 409
    )
    assert error["message"] == "An access policy named 'SALES' already exists."
    assert AccessPolicy.objects.get().default_access_level == "Allow"


def test_patch_changes_the_fields_given_and_put_replaces(cast, org):
    policy = actions.create_policy(
        SYSTEM, name="Sales", default_access_level="Block", domains=["example.org"], priority=7
    ).obj
    assert set(states().values()) == {"Blocked"}
    patched = org.patch(f"{POLICIES}/{policy.pk}", {"default_access_level": "Allow"}).json()
    assert patched["access_policy"]["domains"] == ["example.org"]
    assert patched["access_policy"]["priority"] == 7
    assert patched["changes"] == [{"from": "Blocked", "to": "Allowed", "count": 3}]
    put = org.put(f"{POLICIES}/{policy.pk}", {"name": "Sales", "default_access_level": "Allow"})
    assert put.status_code == 200, put.content
    assert put.json()["access_policy"]["domains"] == []
    assert put.json()["access_policy"]["priority"] == 100
    assert set(states().values()) == {"Quarantined"}  # nobody follows it now: org default


def test_a_bad_update_changes_nothing(cast, org):
    policy = actions.create_policy(SYSTEM, name="Sales", default_access_level="Block").obj
    actions.create_policy(SYSTEM, name="Lab", default_access_level="Allow")
    assert_error(org.patch(f"{POLICIES}/{policy.pk}", {"domains": ["-bad-"]}), 400)
    assert_error(org.patch(f"{POLICIES}/{policy.pk}", {"name": "lab"}), 409)
    policy.refresh_from_db()
    assert (policy.name, policy.domains) == ("Sales", [])
    assert not AuditEvent.objects.filter(action="policy.update").exists()


def test_delete_lets_the_mailboxes_follow_the_default_again(cast, org):
    policy = actions.create_policy(
        SYSTEM, name="Sales", default_access_level="Allow", domains=["example.org"]
    ).obj
    response = org.delete(f"{POLICIES}/{policy.pk}")
    assert response.status_code == 200, response.content
    assert response.json()["access_policy"]["name"] == "Sales"
    assert response.json()["changed"] == 3
    assert not AccessPolicy.objects.exists()
    assert set(states().values()) == {"Quarantined"}
    assert_error(org.delete(f"{POLICIES}/{policy.pk}"), 404)


def test_help_desk_reads_but_is_told_policies_are_read_only(cast, client_for):
    policy = actions.create_policy(SYSTEM, name="Sales", default_access_level="Allow").obj
    helpdesk = client_for("helpdesk")
    assert helpdesk.get(f"{POLICIES}/{policy.pk}").json()["name"] == "Sales"
    for response in (
        helpdesk.post(POLICIES, {"name": "X", "default_access_level": "Allow"}),
        helpdesk.patch(f"{POLICIES}/{policy.pk}", {"priority": 1}),
        helpdesk.delete(f"{POLICIES}/{policy.pk}"),
    ):
        assert assert_error(response, 403)["message"] == POLICIES_READ_ONLY
    assert AccessPolicy.objects.get().priority == 100


# ---------------------------------------------------------------------------
# a mailbox's membership, and its ActiveSync switch


def test_a_mailbox_joins_a_policy_and_follows_its_domain_again(cast, org):
    alice = cast["mailboxes"]["alice"]
    policy = actions.create_policy(SYSTEM, name="Execs", default_access_level="Allow").obj
    url = f"/api/v1/mailboxes/{alice.pk}/access-policy"
    joined = org.put(url, {"access_policy": policy.pk})
    assert joined.status_code == 200, joined.content
    body = joined.json()
    assert body["mailbox"]["access_policy"] == {
        "id": policy.pk,
        "name": "Execs",
        "default_access_level": "Allow",
    }
    assert body["mailbox"]["access_policy_pinned"] is True
    assert body["changes"] == [{"from": "Quarantined", "to": "Allowed", "count": 2}]
    assert states() == {
        "AliceIphone1": "Allowed",
        "AliceDroid1": "Allowed",
        "BobIphone1": "Quarantined",
    }
    assert AuditEvent.objects.get(action="mailbox.policy").source == AuditSource.API
    back = org.put(url, {"access_policy": None}).json()
    assert back["mailbox"]["access_policy"] is None
    assert back["mailbox"]["access_policy_pinned"] is False
    assert set(states().values()) == {"Quarantined"}


@pytest.mark.parametrize(
    "body,field", [({"access_policy": 424242}, "access_policy"), ({}, "access_policy")]
)
def test_a_bad_membership_is_400_and_changes_nothing(cast, org, body, field):
    alice = cast["mailboxes"]["alice"]
    error = assert_error(org.put(f"/api/v1/mailboxes/{alice.pk}/access-policy", body), 400)
    assert set(error["errors"]) == {field}
    alice.refresh_from_db()
    assert alice.access_policy is None and not alice.access_policy_pinned
    assert not AuditEvent.objects.filter(action="mailbox.policy").exists()


def test_help_desk_cannot_set_a_membership(cast, client_for):
    alice = cast["mailboxes"]["alice"]
    policy = actions.create_policy(SYSTEM, name="Execs", default_access_level="Allow").obj
    response = client_for("helpdesk").put(
        f"/api/v1/mailboxes/{alice.pk}/access-policy", {"access_policy": policy.pk}
    )
    assert assert_error(response, 403)["message"] == POLICIES_READ_ONLY
    assert Mailbox.objects.get(pk=alice.pk).access_policy is None


def test_turning_activesync_off_blocks_the_mailboxes_devices(cast, org, client_for):
    alice = cast["mailboxes"]["alice"]
    url = f"/api/v1/mailboxes/{alice.pk}"
    refused = client_for("helpdesk").patch(url, {"activesync_enabled": False})
    assert assert_error(refused, 403)["message"] == ACTIVESYNC_READ_ONLY
    assert_error(org.patch(url, {"activesync_enabled": "perhaps"}), 400)
    assert_error(org.patch(url, {}), 400)
    assert Mailbox.objects.get(pk=alice.pk).activesync_enabled is True
    body = org.patch(url, {"activesync_enabled": False}).json()
    assert body["mailbox"]["activesync_enabled"] is False
    assert body["changes"] == [{"from": "Quarantined", "to": "Blocked", "count": 2}]
    assert MobileDevice.objects.get(device_id="AliceIphone1").access_state_reason == "Policy"
