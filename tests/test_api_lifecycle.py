"""Organisation-wide DeviceIds, grandfathering and the purge of stale quarantine, and the
organisation settings' lifecycle fields, through the API."""

from datetime import timedelta

import pytest
from django.utils import timezone

from devices import actions
from devices.audit import SYSTEM
from devices.models import (
    AuditEvent,
    AuditSource,
    MailboxDeviceId,
    MobileDevice,
    OrgDeviceId,
    OrgSettings,
)
from devices.permissions import ORG_DEVICE_IDS_READ_ONLY
from tests import test_api_support as support

cast, client_for = support.cast, support.client_for  # the shared fixtures

ORG_IDS = "/api/v1/org-device-ids"
GRANDFATHER = "/api/v1/grandfather-devices"
PURGE = "/api/v1/purge-quarantined"


@pytest.fixture
def org(client_for):
    return client_for("org")


def assert_error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"message", "errors"} and body["message"]
    return body


def state(device_id: str) -> str:
    return MobileDevice.objects.get(device_id=device_id).access_state


# ---------------------------------------------------------------------------
# organisation-wide DeviceIds


def test_adding_a_device_id_allows_it_in_every_mailbox(cast, org):
    support.contact(cast["mailboxes"]["bob"], "LOAN1")
    response = org.post(ORG_IDS, {"device_id": "Loan1", "note": " shelf 3 "})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["org_device_id"]["device_id"] == "Loan1"
    assert body["org_device_id"]["note"] == "shelf 3"
    assert body["org_device_id"]["device_count"] == 1
    assert body["changes"] == [{"from": "Quarantined", "to": "Allowed", "count": 1}]
    assert state("LOAN1") == "Allowed"
    event = AuditEvent.objects.get(action="org_device_id.add")
    assert (event.source, event.actor_name) == (AuditSource.API, "olivia")


@pytest.mark.parametrize(
    "body,status,field",
    [
        ({"device_id": "has space"}, 400, None),
        ({"device_id": ""}, 400, "device_id"),
        ({"device_id": "x" * 65}, 400, "device_id"),
        ({"note": "no id"}, 400, "device_id"),
        ({"device_id": "LOAN0"}, 409, None),  # already there, in another case
    ],
)
def test_a_bad_device_id_is_refused_and_adds_nothing(cast, org, body, status, field):
    OrgDeviceId.objects.create(device_id="Loan0")
    error = assert_error(org.post(ORG_IDS, body), status)
    if field:
        assert set(error["errors"]) == {field}
    assert list(OrgDeviceId.objects.values_list("device_id", flat=True)) == ["Loan0"]
    assert not AuditEvent.objects.filter(action="org_device_id.add").exists()


def test_the_list_searches_and_removing_decides_the_devices_again(cast, client_for):
    support.contact(cast["mailboxes"]["alice"], "Loan2")
    actions.add_org_device_id(SYSTEM, "Loan2", note="pool")
    actions.add_org_device_id(SYSTEM, "Spare9", note="front desk")
    helpdesk, org = client_for("helpdesk"), client_for("org")
    listed = helpdesk.get(ORG_IDS).json()
    assert [e["device_id"] for e in listed["results"]] == ["Loan2", "Spare9"]
    assert [e["device_count"] for e in listed["results"]] == [1, 0]
    assert [e["device_id"] for e in helpdesk.get(ORG_IDS, {"q": "DESK"}).json()["results"]] == [
        "Spare9"
    ]
    entry = OrgDeviceId.objects.get(device_id="Loan2")
    refused = helpdesk.delete(f"{ORG_IDS}/{entry.pk}")
    assert assert_error(refused, 403)["message"] == ORG_DEVICE_IDS_READ_ONLY
    assert state("Loan2") == "Allowed"
    removed = org.delete(f"{ORG_IDS}/{entry.pk}")
    assert removed.status_code == 200, removed.content
    assert removed.json()["org_device_id"]["device_id"] == "Loan2"
    assert removed.json()["changes"] == [{"from": "Allowed", "to": "Quarantined", "count": 1}]
    assert state("Loan2") == "Quarantined"
    assert_error(org.get(f"{ORG_IDS}/{entry.pk}"), 404)


# ---------------------------------------------------------------------------
# grandfathering


def test_grandfathering_counts_first_then_lists_the_devices(cast, client_for):
    actions.set_org_settings(SYSTEM, default_access_level="Allow")
    helpdesk, org = client_for("helpdesk"), client_for("org")
    assert helpdesk.get(GRANDFATHER).json() == {"count": 3}
    refused = helpdesk.post(GRANDFATHER)
    assert assert_error(refused, 403)["message"] == (
        "Only Organization Management can grandfather or purge devices."
    )
    assert not MailboxDeviceId.objects.exists()
    response = org.post(GRANDFATHER)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["count"] == 3
    assert body["changed"] == 0  # still Allowed, now by the mailbox's list
    assert "3 devices added" in body["message"]
    assert MailboxDeviceId.objects.filter(list="allowed").count() == 3
    assert set(MobileDevice.objects.values_list("access_state_reason", flat=True)) == {"Individual"}
    assert AuditEvent.objects.get(action="devices.grandfather").source == AuditSource.API
    assert org.get(GRANDFATHER).json() == {"count": 0}


def test_grandfather_first_then_switch_to_quarantine_in_one_request(cast, org):
    actions.set_org_settings(SYSTEM, default_access_level="Allow")
    response = org.patch(
        "/api/v1/org-settings", {"default_access_level": "Quarantine", "grandfather_first": True}
    )
    assert response.status_code == 200, response.content
    assert response.json()["grandfathered"] == 3
    assert response.json()["changed"] == 0
    assert set(MobileDevice.objects.values_list("access_state", flat=True)) == {"Allowed"}
    assert OrgSettings.load().default_access_level == "Quarantine"


def test_a_refused_switch_grandfathers_nothing(cast, org):
    actions.set_org_settings(SYSTEM, default_access_level="Allow")
    response = org.patch(
        "/api/v1/org-settings",
        {
            "default_access_level": "Quarantine",
            "grandfather_first": True,
            "admin_digest_minutes": 0,
        },
    )
    assert_error(response, 400)
    assert not MailboxDeviceId.objects.exists()
    assert OrgSettings.load().default_access_level == "Allow"


def test_the_default_level_preview_counts_without_saving(cast, client_for):
    response = client_for("helpdesk").post(
        "/api/v1/org-settings/preview", {"default_access_level": "allow"}
    )
    assert response.status_code == 200, response.content
    assert response.json() == {
        "changed": 3,
        "changes": [{"from": "Quarantined", "to": "Allowed", "count": 3}],
    }
    assert OrgSettings.load().default_access_level == "Quarantine"
    error = assert_error(
        client_for("helpdesk").post("/api/v1/org-settings/preview", {"default_access_level": "x"}),
        400,
    )
    assert set(error["errors"]) == {"default_access_level"}


def test_the_lifecycle_settings_are_read_and_written(cast, org):
    assert org.get("/api/v1/org-settings").json()["self_approval"] == "never"
    body = org.patch(
        "/api/v1/org-settings", {"purge_quarantined_after_days": 30, "self_approval": "First"}
    ).json()["org_settings"]
    assert (body["purge_quarantined_after_days"], body["self_approval"]) == (30, "first")
    off = org.patch("/api/v1/org-settings", {"purge_quarantined_after_days": None}).json()
    assert off["org_settings"]["purge_quarantined_after_days"] is None
    for bad in ({"purge_quarantined_after_days": 0}, {"self_approval": "sometimes"}):
        assert set(assert_error(org.patch("/api/v1/org-settings", bad), 400)["errors"]) == set(bad)
    assert OrgSettings.load().self_approval == "first"


# ---------------------------------------------------------------------------
# the purge of stale quarantine


def test_the_purge_dry_run_names_the_devices_and_removes_nothing(cast, client_for):
    MobileDevice.objects.filter(device_id="BobIphone1").update(
        state_changed_at=timezone.now() - timedelta(days=40)
    )
    helpdesk = client_for("helpdesk")
    stale = helpdesk.get(PURGE, {"older_than_days": 30}).json()
    assert stale["count"] == 1
    assert [d["device_id"] for d in stale["devices"]] == ["BobIphone1"]
    assert stale["older_than_days"] == 30
    assert helpdesk.get(PURGE, {"older_than_days": 0}).json()["count"] == 3
    assert MobileDevice.objects.count() == 3
    assert not AuditEvent.objects.filter(action="device.purge").exists()


def test_the_purge_removes_and_audits_each_device(cast, client_for):
    MobileDevice.objects.filter(device_id="BobIphone1").update(
        state_changed_at=timezone.now() - timedelta(days=40)
    )
    refused = client_for("helpdesk").post(PURGE, {"older_than_days": 30})
    assert_error(refused, 403)
    response = client_for("org").post(PURGE, {"older_than_days": 30})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["count"] == 1
    assert body["devices"][0]["device_id"] == "BobIphone1"
    assert body["message"] == "Removed 1 device after 30 days or more in quarantine"
    assert not MobileDevice.objects.filter(device_id="BobIphone1").exists()
    event = AuditEvent.objects.get(action="device.purge")
    assert (event.source, event.actor_name) == (AuditSource.API, "olivia")


@pytest.mark.parametrize(
    "method,data",
    [("get", {}), ("get", {"older_than_days": "x"}), ("post", {"older_than_days": -1})],
)
def test_a_bad_purge_is_400_and_removes_nothing(cast, org, method, data):
    call = org.get(PURGE, data) if method == "get" else org.post(PURGE, data)
    assert set(assert_error(call, 400)["errors"]) == {"older_than_days"}
    assert MobileDevice.objects.count() == 3
