"""The rule preview names the users and devices it releases or blocks (issue 17, point 1)."""

import csv
import html
import io

import pytest
from django.test import Client

from devices import actions
from devices.models import (
    AccessPolicy,
    AccessState,
    AuditEvent,
    DeviceAccessRule,
    MobileDevice,
    OrgSettings,
)
from notifications.models import Notification

from .conftest import SETUP, contact, state_of


@pytest.fixture
def admin(world):
    client = Client()
    client.force_login(world.org)
    return client


def _text(response) -> str:
    return html.unescape(response.content.decode())


def _csv(response) -> list[dict]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


def test_the_preview_lists_the_devices_with_links(world, admin):
    response = admin.post(
        "/rules/new",
        {
            "characteristic": "DeviceType",
            "query_string": "iPhone",
            "access_level": "Allow",
            "preview": "1",
        },
    )
    page = response.content.decode()
    preview = response.context["preview"]
    assert preview["total"] == 2
    assert {d.device_id for d in preview["first"]} == {"ALICEIPHONE1", "CAROLIPHONE1"}
    assert f'href="/devices/{world.alice_phone.pk}/"' in page
    assert f'href="/mailboxes/{world.alice_box.pk}/"' in page
    assert f'href="/devices/{world.carol_phone.pk}/"' in page
    assert "All 2 devices whose state changes" in _text(response)
    assert "Download all 2 as CSV" in page
    assert "/rules/preview.csv?characteristic=DeviceType&amp;query_string=iPhone" in page
    assert DeviceAccessRule.objects.count() == 1  # nothing saved
    assert state_of(world.alice_phone) == AccessState.QUARANTINED


def test_the_first_twenty_then_the_total_and_a_csv_of_all(world, admin):
    for i in range(23):
        contact(world.bob_box, f"BOBPHONE{i:02d}", "WindowsMail", "Lumia 950")
    response = admin.post(
        "/rules/new",
        {
            "characteristic": "DeviceType",
            "query_string": "WindowsMail",
            "access_level": "Block",
            "preview": "1",
        },
    )
    preview = response.context["preview"]
    assert (preview["total"], len(preview["first"]), preview["more"]) == (23, 20, 3)
    text = _text(response)
    assert "The first 20 of 23 devices whose state changes" in text
    assert "… and 3 more: 23 devices in all." in text

    download = admin.get(preview["csv_url"])
    assert download.status_code == 200
    assert download["Content-Type"].startswith("text/csv")
    rows = _csv(download)
    assert len(rows) == 23
    assert {r["mailbox"] for r in rows} == {"bob"}
    assert {(r["access_state"], r["access_state_after"]) for r in rows} == {
        ("Quarantined", "Blocked")
    }
    assert rows[0]["page"].startswith("http://testserver/devices/")
    assert MobileDevice.objects.filter(access_state=AccessState.BLOCKED).count() == 0


def test_the_csv_goes_through_the_one_csv_writer(world, admin):
    contact(world.bob_box, "=HYPERLINK(1)", "WindowsMail", "@SUM(A1)")
    url = "/rules/preview.csv?characteristic=DeviceType&query_string=WindowsMail&access_level=Block"
    (row,) = _csv(admin.get(url))
    assert row["device_id"] == "'=HYPERLINK(1)"
    assert row["device_model"] == "'@SUM(A1)"


def test_the_csv_of_an_edited_rule_previews_the_edit(world, admin):
    # The Block rule on SM-G9* matches nothing; widened to SM-*, it blocks Bob's phone.
    url = (
        f"/rules/preview.csv?characteristic=DeviceModel&query_string=SM-*&access_level=Block"
        f"&rule={world.rule.pk}"
    )
    rows = _csv(admin.get(url))
    assert [(r["device_id"], r["access_state_after"]) for r in rows] == [("BOBANDROID1", "Blocked")]


def test_a_bad_csv_request_is_refused(world, admin):
    response = admin.get("/rules/preview.csv?characteristic=Colour&query_string=x")
    assert response.status_code == 400


def test_the_similar_devices_preview_lists_them_too(world, admin):
    response = admin.get(f"/rules/new?device={world.alice_phone.pk}")
    assert {d.device_id for d in response.context["preview"]["first"]} == {
        "ALICEIPHONE1",
        "CAROLIPHONE1",
    }


def test_the_delete_preview_lists_the_devices(world, admin):
    rule = actions.create_rule(
        SETUP, characteristic="DeviceType", query_string="iPhone", access_level="Allow"
    ).obj
    response = admin.get(f"/rules/{rule.pk}/delete")
    page = response.content.decode()
    assert {d.device_id for d in response.context["preview"]["first"]} == {
        "ALICEIPHONE1",
        "CAROLIPHONE1",
    }
    assert f'href="/devices/{world.alice_phone.pk}/"' in page
    assert f'href="/rules/{rule.pk}/delete/preview.csv"' in page
    rows = _csv(admin.get(f"/rules/{rule.pk}/delete/preview.csv"))
    assert {(r["device_id"], r["access_state"], r["access_state_after"]) for r in rows} == {
        ("ALICEIPHONE1", "Allowed", "Quarantined"),
        ("CAROLIPHONE1", "Allowed", "Quarantined"),
    }


def test_no_list_when_nothing_changes(world, admin):
    response = admin.post(
        "/rules/new",
        {
            "characteristic": "DeviceType",
            "query_string": "Nokia",
            "access_level": "Allow",
            "preview": "1",
        },
    )
    assert response.context["preview"]["first"] == []
    assert 'id="preview-devices"' not in response.content.decode()
    assert response.context["preview"]["csv_url"] == ""


# --- the org default ---------------------------------------------------------------------------


def test_the_default_level_confirmation_lists_the_devices(world, admin):
    data = {
        "default_access_level": "Allow",
        "admin_mail_recipients": "it@example.org",
        "discovery_window_minutes": "15",
        "send_user_mail": "on",
        "admin_mail_mode": "each",
        "admin_digest_minutes": "15",
        "purge_quarantined_after_days": "30",
        "self_approval": "never",
    }
    response = admin.post("/settings/", data)
    preview = response.context["confirm"]["preview"]
    assert preview["total"] == 4
    assert {d.device_id for d in preview["first"]} == {
        "ALICEIPHONE1",
        "ALICEIPAD1",
        "BOBANDROID1",
        "CAROLIPHONE1",
    }
    page = response.content.decode()
    assert f'href="/devices/{world.bob_phone.pk}/"' in page
    assert 'href="/settings/preview.csv?default_access_level=Allow"' in page
    rows = _csv(admin.get("/settings/preview.csv?default_access_level=Allow"))
    assert len(rows) == 4
    assert {r["access_state_after"] for r in rows} == {"Allowed"}
    assert OrgSettings.load().default_access_level == "Quarantine"  # nothing saved


def test_a_bad_default_level_csv_is_refused(world, admin):
    assert admin.get("/settings/preview.csv?default_access_level=Maybe").status_code == 400


# --- access policies ---------------------------------------------------------------------------

POLICY = {
    "name": "Board",
    "default_access_level": "Block",
    "domains": "example.org",
    "priority": "5",
}


def test_the_policy_preview_lists_the_devices_and_saves_nothing(world, admin):
    events, mails = AuditEvent.objects.count(), Notification.objects.count()
    policies = AccessPolicy.objects.count()
    response = admin.post("/policies/new", {**POLICY, "preview": "1"})
    assert response.status_code == 200
    preview = response.context["preview"]
    assert preview["total"] == 4
    assert {(d.device_id, d.preview_from, d.preview_to) for d in preview["first"]} == {
        ("ALICEIPHONE1", "Quarantined", "Blocked"),
        ("ALICEIPAD1", "Quarantined", "Blocked"),
        ("BOBANDROID1", "Quarantined", "Blocked"),
        ("CAROLIPHONE1", "Quarantined", "Blocked"),
    }
    page = response.content.decode()
    assert f'href="/devices/{world.alice_phone.pk}/"' in page
    # A dry run, rolled back: no policy, no audit event, no mail, no state change.
    assert AccessPolicy.objects.count() == policies
    assert (AuditEvent.objects.count(), Notification.objects.count()) == (events, mails)
    assert state_of(world.alice_phone) == AccessState.QUARANTINED

    rows = _csv(admin.get(preview["csv_url"]))
    assert len(rows) == 4 and {r["access_state_after"] for r in rows} == {"Blocked"}
    assert AccessPolicy.objects.count() == policies


def test_the_policy_edit_preview_and_save(world, admin):
    policy = actions.create_policy(
        SETUP, name="Board", default_access_level="Allow", domains=["example.org"]
    ).obj
    assert state_of(world.alice_phone) == AccessState.ALLOWED
    response = admin.post(f"/policies/{policy.pk}/edit", {**POLICY, "preview": "1"})
    preview = response.context["preview"]
    assert preview["total"] == 4
    assert {d.preview_to for d in preview["first"]} == {"Blocked"}
    assert f"policy={policy.pk}" in preview["csv_url"]
    assert len(_csv(admin.get(preview["csv_url"]))) == 4
    assert state_of(world.alice_phone) == AccessState.ALLOWED  # nothing saved yet
    saved = admin.post(f"/policies/{policy.pk}/edit", POLICY)
    assert saved.status_code == 302
    assert state_of(world.alice_phone) == AccessState.BLOCKED
