"""Signed action links in the mails, through the real views (issue 18).

Each link state: fresh (GET confirms and changes nothing, POST with CSRF acts),
used, expired, tampered, stale (the device changed state since); admin links
need a staff sign-in; "Was this you?" needs none; "not me" blocks the device
and alerts the admins with high priority.
"""

import re
import time

import pytest
from django.core import mail
from django.test import Client

from devices import actions, links
from devices.gate.notice import NoticeMailbox
from devices.models import (
    AccessState,
    ActionLinkUse,
    AuditEvent,
    AuditSource,
    MobileDevice,
    OwnerAnswer,
)
from notifications import delivery, tasks
from notifications.models import Kind, Notification, Status

from .conftest import PASSWORD, SETUP, contact, state_of

ADMINS = ["helpdesk@example.org", "security@example.org"]


@pytest.fixture
def phone(world):
    """Alice's new phone, quarantined after the admins were named: both mails exist."""
    actions.set_org_settings(SETUP, admin_mail_recipients=ADMINS)
    device = contact(world.alice_box, "ALICENEW1", "iPhone", "iPhone16,1", "iOS 17.5")
    device.refresh_from_db()
    assert device.access_state == AccessState.QUARANTINED
    return device


def link_path(device, kind, name) -> str:
    row = Notification.objects.filter(kind=kind, context__device__pk=device.pk).first()
    return row.context["links"][name]


def signed_in(user) -> Client:
    client = Client()
    assert client.login(username=user.get_username(), password=PASSWORD)
    return client


def audit_count() -> int:
    return AuditEvent.objects.count()


# --- fresh admin links -------------------------------------------------------------------


def test_the_admin_mail_carries_allow_and_block_links(phone):
    row = Notification.objects.get(kind=Kind.ADMIN_QUARANTINED, recipient=ADMINS[0])
    allow = row.context["links"]["allow_path"]
    block = row.context["links"]["block_path"]
    assert allow.startswith("/links/") and block.startswith("/links/") and allow != block
    delivery.deliver(row.pk)
    body = mail.outbox[-1].body
    assert f"http://127.0.0.1:8000{allow}" in body and f"http://127.0.0.1:8000{block}" in body


def test_a_fresh_allow_link_shows_one_confirmation_and_changes_nothing(world, phone):
    path = link_path(phone, Kind.ADMIN_QUARANTINED, "allow_path")
    before = audit_count()
    response = signed_in(world.helpdesk).get(path)
    assert response.status_code == 200
    page = response.content.decode()
    assert "ALICENEW1" in page and "Alice Archer" in page and "What happens:" in page
    assert 'method="post"' in page and "Allow this device" in page
    assert state_of(phone) == AccessState.QUARANTINED
    assert audit_count() == before and not ActionLinkUse.objects.exists()


def test_one_tap_allows_and_is_audited_as_mail_link(world, phone):
    path = link_path(phone, Kind.ADMIN_QUARANTINED, "allow_path")
    client = signed_in(world.helpdesk)
    response = client.post(path)
    assert response.status_code == 302 and response["Location"] == f"/devices/{phone.pk}/"
    assert state_of(phone) == AccessState.ALLOWED
    event = AuditEvent.objects.order_by("-id").first()
    assert (event.action, event.source, event.actor_name) == ("device.allow", "mail-link", "hd")
    assert event.client_ip == "127.0.0.1"
    assert AuditSource(event.source).label == "Mail link"


def test_block_link_blocks(world, phone):
    path = link_path(phone, Kind.ADMIN_QUARANTINED, "block_path")
    signed_in(world.org).post(path)
    assert state_of(phone) == AccessState.BLOCKED


# --- used, stale, expired, tampered ---------------------------------------------------------


def test_a_used_link_says_so_and_changes_nothing(world, phone):
    path = link_path(phone, Kind.ADMIN_QUARANTINED, "allow_path")
    client = signed_in(world.helpdesk)
    client.post(path)
    before = audit_count()
    again = client.get(path)
    assert again.status_code == 410
    assert 'data-link-state="used"' in again.content.decode()
    assert "used already" in again.content.decode()
    posted = client.post(path)
    assert posted.status_code == 410 and 'data-link-state="used"' in posted.content.decode()
    assert audit_count() == before and ActionLinkUse.objects.count() == 1


def test_the_same_link_in_another_mail_is_used_too(world, phone):
    """The admin mail to the second recipient carries the same link: used is used."""
    first = Notification.objects.get(kind=Kind.ADMIN_QUARANTINED, recipient=ADMINS[0])
    second = Notification.objects.get(kind=Kind.ADMIN_QUARANTINED, recipient=ADMINS[1])
    client = signed_in(world.helpdesk)
    client.post(first.context["links"]["allow_path"])
    response = client.post(second.context["links"]["allow_path"])
    assert response.status_code == 410
    assert 'data-link-state="used"' in response.content.decode()


def test_a_link_for_a_state_that_has_changed_is_stale(world, phone):
    allow = link_path(phone, Kind.ADMIN_QUARANTINED, "allow_path")
    block = link_path(phone, Kind.ADMIN_QUARANTINED, "block_path")
    client = signed_in(world.helpdesk)
    client.post(allow)
    before = audit_count()
    response = client.post(block)  # the other link of the same mail: not used, stale
    assert response.status_code == 409
    assert 'data-link-state="stale"' in response.content.decode()
    assert state_of(phone) == AccessState.ALLOWED and audit_count() == before


def test_a_link_after_a_change_in_the_panel_is_stale_not_used(world, phone):
    allow = link_path(phone, Kind.ADMIN_QUARANTINED, "allow_path")
    client = signed_in(world.helpdesk)
    client.post(f"/devices/{phone.pk}/block")
    assert state_of(phone) == AccessState.BLOCKED
    response = client.get(allow)
    assert response.status_code == 409 and 'data-link-state="stale"' in response.content.decode()
    client.post(allow)
    assert state_of(phone) == AccessState.BLOCKED


def test_an_expired_link_says_so_and_changes_nothing(world, phone, settings):
    settings.ECP_LINK_MAX_AGE_HOURS = 72
    token = links.issue(phone, links.ALLOW, at=time.time() - 73 * 3600)
    client = signed_in(world.helpdesk)
    for response in (client.get(links.path(token)), client.post(links.path(token))):
        assert response.status_code == 410
        assert 'data-link-state="expired"' in response.content.decode()
    assert state_of(phone) == AccessState.QUARANTINED and not ActionLinkUse.objects.exists()


def test_a_link_inside_its_age_still_works(world, phone):
    token = links.issue(phone, links.ALLOW, at=time.time() - 71 * 3600)
    signed_in(world.helpdesk).post(links.path(token))
    assert state_of(phone) == AccessState.ALLOWED


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # the signature
        lambda t: ("x" if t[0] != "x" else "y") + t[1:],  # the payload
        lambda t: t.rsplit(":", 1)[0],  # no signature
        lambda t: "garbage",
    ],
)
def test_a_tampered_link_says_so_and_changes_nothing(world, phone, tamper):
    token = link_path(phone, Kind.ADMIN_QUARANTINED, "allow_path").split("/")[2]
    client = signed_in(world.helpdesk)
    before = audit_count()
    for response in (
        client.get(f"/links/{tamper(token)}/"),
        client.post(f"/links/{tamper(token)}/"),
    ):
        assert response.status_code == 400
        assert 'data-link-state="tampered"' in response.content.decode()
    assert state_of(phone) == AccessState.QUARANTINED and audit_count() == before


def test_a_link_signed_for_another_device_is_refused(world, phone):
    """Changing the device in the payload without the key breaks the signature."""
    token = links.issue(phone, links.ALLOW)
    other = links.issue(world.bob_phone, links.ALLOW)
    forged = other.split(":")[0] + ":" + ":".join(token.split(":")[1:])
    response = signed_in(world.helpdesk).post(f"/links/{forged}/")
    assert response.status_code == 400
    assert state_of(world.bob_phone) == AccessState.QUARANTINED


def test_a_removed_device_says_so(world, phone):
    path = link_path(phone, Kind.ADMIN_QUARANTINED, "allow_path")
    actions.remove_device(SETUP, phone)
    response = signed_in(world.helpdesk).post(path)
    assert response.status_code == 410 and 'data-link-state="gone"' in response.content.decode()


# --- who may -------------------------------------------------------------------------


def test_an_admin_link_asks_to_sign_in_first(phone):
    path = link_path(phone, Kind.ADMIN_QUARANTINED, "allow_path")
    for response in (Client().get(path), Client().post(path)):
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=/links/")
    assert state_of(phone) == AccessState.QUARANTINED


@pytest.mark.parametrize("who", ["alice", "nobody"])
def test_an_admin_link_is_refused_to_a_role_that_may_not_act(world, phone, who):
    path = link_path(phone, Kind.ADMIN_QUARANTINED, "allow_path")
    client = signed_in(getattr(world, who))
    assert client.get(path).status_code == 403
    assert client.post(path).status_code == 403
    assert state_of(phone) == AccessState.QUARANTINED and not ActionLinkUse.objects.exists()


def test_a_post_without_the_csrf_token_changes_nothing(world, phone):
    path = link_path(phone, Kind.USER_QUARANTINED, "not_mine_path")
    client = Client(enforce_csrf_checks=True)
    assert client.post(path).status_code == 403
    assert state_of(phone) == AccessState.QUARANTINED and not ActionLinkUse.objects.exists()
    page = client.get(path)  # the confirmation's form carries the token
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())
    assert client.post(path, {"csrfmiddlewaretoken": token.group(1)}).status_code == 200
    assert state_of(phone) == AccessState.BLOCKED


# --- "Was this you?" -------------------------------------------------------------------


def test_the_user_mail_asks_was_this_you(phone):
    row = Notification.objects.get(kind=Kind.USER_QUARANTINED, context__device__pk=phone.pk)
    delivery.deliver(row.pk)
    message = mail.outbox[-1]
    assert "Was this you?" in message.body
    assert row.context["links"]["mine_path"] in message.body
    assert row.context["links"]["not_mine_path"] in message.body
    html = message.alternatives[0][0]
    assert "Yes, this is my new phone" in html and "No, this was not me" in html


def test_yes_mine_needs_no_sign_in_and_marks_the_device_confirmed(world, phone):
    path = link_path(phone, Kind.USER_QUARANTINED, "mine_path")
    client = Client()
    page = client.get(path)
    assert page.status_code == 200 and "Was this you?" in page.content.decode()
    assert MobileDevice.objects.get(pk=phone.pk).owner_answer == ""
    response = client.post(path, REMOTE_ADDR="192.0.2.44")
    assert response.status_code == 200 and 'id="link-done"' in response.content.decode()
    device = MobileDevice.objects.get(pk=phone.pk)
    assert device.owner_answer == OwnerAnswer.MINE
    assert device.owner_answer_ip == "192.0.2.44" and device.owner_answered_at is not None
    assert device.access_state == AccessState.QUARANTINED  # self-approval is off
    event = AuditEvent.objects.order_by("-id").first()
    assert (event.action, event.source, event.actor_name) == (
        "device.confirm",
        "mail-link",
        "alice",
    )
    assert event.client_ip == "192.0.2.44"
    assert event.after["owner_answer_ip"] == "192.0.2.44"
    # The quarantine list says so.
    listing = signed_in(world.helpdesk).get("/devices/quarantine/").content.decode()
    assert f'id="confirmed-{phone.pk}"' in listing and "Confirmed by user" in listing
    again = client.post(path)
    assert again.status_code == 410  # single use


def test_yes_mine_shows_in_the_admin_digest(world):
    actions.set_org_settings(
        SETUP, admin_mail_recipients=ADMINS[:1], admin_mail_mode="digest", admin_digest_minutes=15
    )
    device = contact(world.alice_box, "ALICENEW2", "iPhone", "iPhone16,1", "iOS 17.5")
    path = link_path(device, Kind.USER_QUARANTINED, "mine_path")
    Client().post(path)
    held = Notification.objects.get(kind=Kind.ADMIN_QUARANTINED, context__device__pk=device.pk)
    assert held.status == Status.HELD and held.context["owner_answer"]["answer"] == "mine"
    assert tasks.send_digests(force=True) == 1
    digest = Notification.objects.get(kind=Kind.ADMIN_DIGEST)
    delivery.deliver(digest.pk)
    message = mail.outbox[-1]
    assert "Confirmed by user" in message.body
    assert held.context["links"]["allow_path"] in message.body  # its links, too


def test_yes_mine_approves_where_self_approval_allows_it(world, phone):
    actions.set_org_settings(SETUP, self_approval="always")
    Client().post(link_path(phone, Kind.USER_QUARANTINED, "mine_path"))
    assert state_of(phone) == AccessState.ALLOWED
    event = AuditEvent.objects.filter(action="device.self_approve").get()
    assert (event.source, event.actor_name) == ("mail-link", "alice")
    assert Notification.objects.filter(kind=Kind.ADMIN_SELF_APPROVED).count() == len(ADMINS)
    assert not Notification.objects.filter(kind=Kind.USER_APPROVED).exists()


def test_yes_mine_with_first_device_only_does_not_approve_a_second(world, phone):
    actions.allow_device(SETUP, world.alice_box, "ALICEIPHONE1")
    actions.set_org_settings(SETUP, self_approval="first")
    Client().post(link_path(phone, Kind.USER_QUARANTINED, "mine_path"))
    device = MobileDevice.objects.get(pk=phone.pk)
    assert device.access_state == AccessState.QUARANTINED
    assert device.owner_answer == OwnerAnswer.MINE


def test_not_me_blocks_alerts_the_admins_and_tells_the_user(world, phone):
    path = link_path(phone, Kind.USER_QUARANTINED, "not_mine_path")
    client = Client()
    assert client.get(path).status_code == 200
    assert state_of(phone) == AccessState.QUARANTINED  # GET never acts
    response = client.post(path, REMOTE_ADDR="198.51.100.9")
    page = response.content.decode()
    assert response.status_code == 200 and "Change your password now." in page
    device = MobileDevice.objects.get(pk=phone.pk)
    assert device.access_state == AccessState.BLOCKED
    assert (device.owner_answer, device.owner_answer_ip) == (OwnerAnswer.NOT_MINE, "198.51.100.9")
    event = AuditEvent.objects.filter(action="device.not_mine").get()
    assert (event.source, event.client_ip) == ("mail-link", "198.51.100.9")
    assert "not theirs" in event.message
    alerts = Notification.objects.filter(kind=Kind.ADMIN_NOT_MINE)
    assert sorted(alerts.values_list("recipient", flat=True)) == sorted(ADMINS)
    assert Notification.objects.filter(kind=Kind.USER_NOT_MINE, recipient="alice@example.org")
    assert not Notification.objects.filter(kind=Kind.USER_BLOCKED).exists()
    mail.outbox.clear()
    for row in alerts:
        assert delivery.deliver(row.pk).status == "sent"
    for message in mail.outbox:
        assert message.extra_headers["X-Priority"].startswith("1")
        assert message.extra_headers["Importance"] == "high"
        assert "not theirs" in message.subject and "198.51.100.9" in message.body
    user_mail = Notification.objects.get(kind=Kind.USER_NOT_MINE)
    delivery.deliver(user_mail.pk)
    assert "Change your password" in mail.outbox[-1].subject
    assert "X-Priority" not in mail.outbox[-1].extra_headers


def test_the_phone_notice_asks_was_this_you_with_a_steady_text(phone):
    first = NoticeMailbox(phone, "16.1").notice
    second = NoticeMailbox(phone, "16.1").notice
    assert "Was this you?" in first.body and "/links/" in first.body
    assert first.version == second.version
    mine = re.search(r"(/links/[^/\s]+/)", first.body.split("Yes, this is my new phone:")[1])
    response = Client().post(mine.group(1))
    assert response.status_code == 200
    assert MobileDevice.objects.get(pk=phone.pk).owner_answer == OwnerAnswer.MINE


def test_the_audit_log_and_the_device_page_name_the_mail_link(world, phone):
    from tests.cli_support import eas_json

    client = signed_in(world.helpdesk)
    client.post(link_path(phone, Kind.ADMIN_QUARANTINED, "allow_path"))
    rows = eas_json("get-audit-log", "--source", "mail-link")
    assert [(r["actor"], r["action"]) for r in rows] == [("hd", "device.allow")]
    page = client.get(f"/devices/{phone.pk}/").content.decode()
    assert "Approved by hd (Mail link)" in page
    audit = client.get("/audit/?source=mail-link").content.decode()
    assert "ALICENEW1" in audit and "BOBANDROID1" not in audit


def test_the_device_page_shows_the_owners_answer(world, phone):
    Client().post(link_path(phone, Kind.USER_QUARANTINED, "mine_path"), REMOTE_ADDR="192.0.2.5")
    page = signed_in(world.helpdesk).get(f"/devices/{phone.pk}/").content.decode()
    assert 'id="owner-answer"' in page and "Confirmed by user" in page and "192.0.2.5" in page
