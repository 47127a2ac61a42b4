"""Access policies (list, create, edit, delete, mailbox membership) and the
organisation-wide DeviceIds, on the pages."""

import html
import re

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from devices import actions
from devices.models import AccessPolicy, AccessState, AuditEvent, Mailbox, OrgDeviceId

from .conftest import SETUP, state_of


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def admin(world):
    return _client(world.org)


@pytest.fixture
def hd(world):
    return _client(world.helpdesk)


def _text(response) -> str:
    assert response.status_code == 200
    words = re.sub(r"<[^>]+>", " ", response.content.decode())
    return re.sub(r"\s+", " ", html.unescape(words))


def _messages(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


POLICY = {
    "name": "Executives",
    "default_access_level": "Allow",
    "domains": "",
    "priority": "100",
}


# -- access policies -------------------------------------------------------------------


def test_the_list_shows_name_level_domains_priority_and_members(world, hd):
    board = actions.create_policy(
        SETUP, name="Board", default_access_level="Allow", domains=["example.org"], priority=10
    ).obj
    actions.create_policy(SETUP, name="Contractors", default_access_level="Block", priority=20)
    actions.set_mailbox_policy(SETUP, world.alice_box, board)
    response = hd.get("/policies/")
    rows = {p.name: p for p in response.context["policies"]}
    assert [p.name for p in response.context["policies"]] == ["Board", "Contractors"]
    assert (rows["Board"].n_members, rows["Board"].n_pinned) == (3, 1)
    assert rows["Contractors"].n_members == 0
    page = _text(response)
    assert "example.org" in page and "members only" in page
    assert "3 (1 explicit member)" in page
    # The help desk reads; no buttons to change anything.
    raw = response.content.decode()
    assert 'href="/policies/new"' not in raw and "/edit" not in raw
    assert "Only Organization Management can create, change or assign access policies." in page
    assert 'href="/policies/new"' in _client(world.org).get("/policies/").content.decode()


def test_create_shows_what_it_changes(world, admin):
    response = admin.post(
        "/policies/new", {**POLICY, "domains": "example.org\n@Example.org"}, follow=True
    )
    assert response.redirect_chain[-1] == ("/policies/", 302)
    (message,) = _messages(response)
    assert message == (
        "Created the access policy Executives (Allow, 3 mailboxes): "
        "it releases 4 quarantined devices."
    )
    policy = AccessPolicy.objects.get()
    assert (policy.domains, policy.priority) == (["example.org"], 100)
    assert {state_of(d) for d in (world.alice_phone, world.carol_phone)} == {"Allowed"}
    event = AuditEvent.objects.get(action="policy.create")
    assert (event.actor_name, event.source) == ("orgadmin", "ui")


def test_create_reports_bad_input_on_the_form(world, admin):
    response = admin.post("/policies/new", {**POLICY, "domains": "not a domain!"})
    assert response.status_code == 200
    assert "is not a valid mail domain" in _text(response)
    actions.create_policy(SETUP, name="Executives", default_access_level="Block")
    response = admin.post("/policies/new", POLICY)
    assert "already exists" in _text(response)
    response = admin.post("/policies/new", {**POLICY, "priority": "-1"})
    assert response.context["form"].errors["priority"]
    assert AccessPolicy.objects.count() == 1


def test_edit_and_delete(world, admin):
    policy = actions.create_policy(
        SETUP, name="Executives", default_access_level="Allow", domains=["example.org"]
    ).obj
    form = admin.get(f"/policies/{policy.pk}/edit").context["form"]
    assert form.initial["domains"] == "example.org"
    response = admin.post(
        f"/policies/{policy.pk}/edit",
        {**POLICY, "name": "Execs", "default_access_level": "Block", "domains": "example.org"},
        follow=True,
    )
    (message,) = _messages(response)
    assert message == "Changed the access policy Execs (Block): it blocks 4 allowed devices."
    assert state_of(world.bob_phone) == AccessState.BLOCKED

    page = _text(admin.get(f"/policies/{policy.pk}/delete"))
    assert "It applies to 3 mailboxes now." in page
    response = admin.post(f"/policies/{policy.pk}/delete", follow=True)
    (message,) = _messages(response)
    assert message == "Deleted the access policy Execs: it moves 4 blocked devices to quarantine."
    assert not AccessPolicy.objects.exists()
    assert state_of(world.bob_phone) == AccessState.QUARANTINED
    assert admin.get(f"/policies/{policy.pk}/edit").status_code == 404


def test_the_mailbox_page_shows_the_policy_and_why(world, admin, hd):
    page = _text(hd.get(f"/mailboxes/{world.alice_box.pk}/"))
    assert "Access policy: none — the organisation default (Quarantine) applies" in page
    domain = actions.create_policy(
        SETUP, name="Staff", default_access_level="Allow", domains=["example.org"]
    ).obj
    page = _text(hd.get(f"/mailboxes/{world.alice_box.pk}/"))
    assert "Access policy: Staff Allow — by its domain example.org" in page
    assert 'name="policy"' not in hd.get(f"/mailboxes/{world.alice_box.pk}/").content.decode()

    board = actions.create_policy(SETUP, name="Board", default_access_level="Block").obj
    response = admin.post(
        f"/mailboxes/{world.alice_box.pk}/", {"op": "policy", "policy": board.pk}, follow=True
    )
    (message,) = _messages(response)
    assert message == (
        "alice is now an explicit member of the access policy Board:"
        " 2 devices from allowed to blocked."
    )
    assert "Access policy: Board Block — an explicit member" in _text(response)
    assert state_of(world.alice_phone) == AccessState.BLOCKED
    assert state_of(world.bob_phone) == AccessState.ALLOWED  # still by the domain

    response = admin.post(
        f"/mailboxes/{world.alice_box.pk}/", {"op": "policy", "policy": ""}, follow=True
    )
    (message,) = _messages(response)
    assert message == (
        "alice follows its domain again: the access policy Staff applies: "
        "2 devices from blocked to allowed."
    )
    mailbox = Mailbox.objects.get(pk=world.alice_box.pk)
    assert (mailbox.access_policy_id, mailbox.access_policy_pinned) == (domain.pk, False)
    assert (
        admin.post(
            f"/mailboxes/{world.alice_box.pk}/", {"op": "policy", "policy": "99999"}
        ).status_code
        == 404
    )


# -- organisation-wide DeviceIds -------------------------------------------------------


def test_org_wide_device_ids_add_and_remove(world, admin, hd):
    response = admin.post(
        "/org-device-ids/", {"device_id": "CAROLIPHONE1", "note": "Loan phone 1"}, follow=True
    )
    (message,) = _messages(response)
    assert message == (
        "CAROLIPHONE1 is allowed for every mailbox now: it releases 1 quarantined device."
    )
    assert state_of(world.carol_phone) == AccessState.ALLOWED
    entry = OrgDeviceId.objects.get()
    assert entry.note == "Loan phone 1"

    response = hd.get("/org-device-ids/")
    (shown,) = response.context["page"]
    assert (shown.device_id, shown.n_devices) == ("CAROLIPHONE1", 1)
    page = response.content.decode()
    assert "Loan phone 1" in page
    assert "/remove" not in page and 'name="device_id"' not in page
    assert "Only Organization Management can change the organisation-wide DeviceId list." in page
    assert (
        f'action="/org-device-ids/{entry.pk}/remove"'
        in admin.get("/org-device-ids/").content.decode()
    )

    response = admin.post("/org-device-ids/", {"device_id": "carolIPHONE1"}, follow=True)
    assert response.context["form"].errors["device_id"]
    assert "nothing was added" in response.content.decode()
    response = admin.post("/org-device-ids/", {"device_id": "has space"}, follow=True)
    assert response.context["form"].errors == {"device_id": ["A DeviceId has no spaces."]}
    assert 'value="has space"' in response.content.decode()

    response = admin.post(f"/org-device-ids/{entry.pk}/remove", follow=True)
    (message,) = _messages(response)
    assert message == (
        "CAROLIPHONE1 is no longer allowed for every mailbox: "
        "it puts 1 allowed device in quarantine."
    )
    assert state_of(world.carol_phone) == AccessState.QUARANTINED
    assert not OrgDeviceId.objects.exists()
    assert admin.post(f"/org-device-ids/{entry.pk}/remove").status_code == 404
    actions_seen = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"org_device_id.add", "org_device_id.remove"} <= actions_seen


def test_delete_previews_the_devices_it_moves_and_changes_nothing(world, admin):
    policy = actions.create_policy(
        SETUP, name="Execs", default_access_level="Block", domains=["example.org"]
    ).obj
    before = {d.pk: d.access_state for d in world.bob_phone.__class__.objects.all()}
    response = admin.get(f"/policies/{policy.pk}/delete")
    page = _text(response)
    assert "Deleting it moves 4 blocked devices to quarantine (4 devices of 3 users)." in page
    preview = response.context["preview"]
    assert preview["total"] == 4 and len(preview["first"]) == 4
    assert f'href="/devices/{world.bob_phone.pk}/"' in response.content.decode()
    assert 'data-confirm="Delete the access policy Execs? 4 devices of 3 users change state."' in (
        response.content.decode()
    )
    # The preview is a rolled-back dry run: the policy and every state stay.
    assert AccessPolicy.objects.filter(pk=policy.pk).exists()
    after = {d.pk: d.access_state for d in world.bob_phone.__class__.objects.all()}
    assert after == before
    assert not AuditEvent.objects.filter(action="policy.delete").exists()

    csv = admin.get(f"/policies/{policy.pk}/delete/preview.csv")
    assert csv.status_code == 200
    lines = b"".join(csv.streaming_content).decode().splitlines()
    assert lines[0].startswith("mailbox,display_name,device_id")
    assert len(lines) == 1 + 4
    assert AccessPolicy.objects.filter(pk=policy.pk).exists()


def test_the_delete_preview_csv_is_for_org_management_only(world, hd):
    policy = actions.create_policy(SETUP, name="Execs", default_access_level="Block").obj
    assert hd.get(f"/policies/{policy.pk}/delete/preview.csv").status_code == 403
