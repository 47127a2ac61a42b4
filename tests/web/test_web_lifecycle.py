"""Lifecycle and accountability on the pages: who approved a device, who changed the
default, grandfathering, self-approval on My devices, and replacing a reset phone."""

import html
import re

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from devices import actions
from devices.models import (
    AccessReason,
    AccessState,
    AuditEvent,
    DeviceIdList,
    DeviceStateChange,
    MailboxDeviceId,
    MobileDevice,
    OrgSettings,
)
from notifications.models import Kind, Notification

from .conftest import GATE, SETUP, state_of

SETTINGS = {
    "default_access_level": "Quarantine",
    "admin_mail_recipients": "it@example.org\nsecurity@example.org",
    "user_mail_insert": "",
    "discovery_window_minutes": "15",
    "send_user_mail": "on",
    "admin_mail_mode": "each",
    "admin_digest_minutes": "15",
    "allow_health_probes": "on",
    "purge_quarantined_after_days": "",
    "self_approval": "never",
}


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def hd(world):
    return _client(world.helpdesk)


@pytest.fixture
def admin(world):
    return _client(world.org)


def _text(response) -> str:
    """The page as a reader sees it: no tags, one space between words."""
    assert response.status_code == 200
    words = re.sub(r"<[^>]+>", " ", response.content.decode())
    return (
        re.sub(r"\s+", " ", html.unescape(words))
        .replace(" .", ".")
        .replace(" ,", ",")
        .replace(" :", ":")
    )


def _messages(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def _when(change) -> str:
    """As the pages show a time: with its zone named (issue 17, point 6)."""
    return timezone.localtime(change.time).strftime("%Y-%m-%d %H:%M %Z")


def _last_change(device):
    return DeviceStateChange.objects.filter(device_id=device.pk).latest("time", "id")


def _record(mailbox, device_id, device_type, *, model="", user_agent="", imei=""):
    info = {"model": model, "imei": imei} if (model or imei) else None
    return actions.record_contact(
        GATE,
        mailbox,
        actions.Contact(
            device_id=device_id, device_type=device_type, user_agent=user_agent, info=info
        ),
    )


# -- who approved this device ----------------------------------------------------------


def test_the_device_page_says_who_approved_it_after_an_approval_on_the_page(world, hd):
    device = world.alice_phone
    hd.post(f"/devices/{device.pk}/allow")
    page = _text(hd.get(f"/devices/{device.pk}/"))
    change = _last_change(device)
    assert f"Approved by hd (Control panel) on {_when(change)}, from Quarantined." in page
    assert 'id="decided-by"' in hd.get(f"/devices/{device.pk}/").content.decode()


def test_a_blocked_device_says_who_blocked_it(world, hd, admin):
    admin.post(f"/devices/{world.bob_phone.pk}/block")
    page = _text(hd.get(f"/devices/{world.bob_phone.pk}/"))
    change = _last_change(world.bob_phone)
    assert f"Blocked by orgadmin (Control panel) on {_when(change)}, from Quarantined." in page


def test_no_person_approved_a_device_allowed_by_a_rule(world, hd):
    actions.create_rule(
        SETUP, characteristic="DeviceType", query_string="iPhone", access_level="Allow"
    )
    page = _text(hd.get(f"/devices/{world.alice_phone.pk}/"))
    change = _last_change(world.alice_phone)
    assert (
        f"Allowed by rule iPhone (DeviceType) since {_when(change)}, "
        "after a change by cli (Command line)." in page
    )
    assert "Approved by" not in page


def test_the_organisation_default_and_the_organisation_wide_list(world, hd):
    actions.set_org_settings(SETUP, default_access_level="Allow")
    assert "Allowed by the organisation default since" in _text(
        hd.get(f"/devices/{world.bob_phone.pk}/")
    )
    actions.set_org_settings(SETUP, default_access_level="Quarantine")
    actions.add_org_device_id(SETUP, world.bob_phone.device_id)
    assert "Allowed by the organisation-wide DeviceId list since" in _text(
        hd.get(f"/devices/{world.bob_phone.pk}/")
    )


def test_an_access_policy_decides_and_the_page_names_it(world, hd):
    policy = actions.create_policy(
        SETUP, name="Executives", default_access_level="Allow", domains=["example.org"]
    ).obj
    page = _text(hd.get(f"/devices/{world.carol_phone.pk}/"))
    assert "Allowed by policy Executives since" in page
    assert "Reason: Organisation default — access policy Executives (Allow)" in page
    actions.update_policy(SETUP, policy, default_access_level="Quarantine")
    page = _text(hd.get(f"/devices/{world.carol_phone.pk}/"))
    assert (
        "Quarantined by the access policy Executives of the mailbox carol "
        "(default access level Quarantine)." in page
    )
    assert "Reason: Organisation default — access policy Executives (Quarantine)" in page


def test_a_grandfathered_device_names_who_grandfathered_it(world, hd, admin):
    actions.set_org_settings(SETUP, default_access_level="Allow")
    admin.post("/settings/grandfather")
    page = _text(hd.get(f"/devices/{world.alice_phone.pk}/"))
    change = _last_change(world.alice_phone)
    assert (
        f"Approved by orgadmin (Control panel) on {_when(change)}, when it was already "
        "allowed by the organisation default." in page
    )


# -- organisation settings: who switched the default, grandfathering -------------------


def test_settings_say_who_last_changed_the_default_access_level(world, admin, hd):
    event = AuditEvent.objects.filter(action="org_settings.update").latest("time", "id")
    page = _text(hd.get("/settings/"))
    assert (
        f"The default access level was last changed by cli (Command line) on "
        f"{_when(event)}: Allow → Quarantine." in page
    )
    admin.post(
        "/settings/", {**SETTINGS, "default_access_level": "Allow", "confirm_level": "Allow"}
    )
    switched = AuditEvent.objects.filter(action="org_settings.update").latest("time", "id")
    admin.post(
        "/settings/", {**SETTINGS, "default_access_level": "Allow", "user_mail_insert": "Hi"}
    )
    assert AuditEvent.objects.filter(action="org_settings.update").latest("time", "id") != switched
    page = _text(hd.get("/settings/"))
    assert (
        f"last changed by orgadmin (Control panel) on {_when(switched)}: "
        "Quarantine → Allow." in page
    )


def test_settings_save_the_purge_and_self_approval(world, admin):
    response = admin.post(
        "/settings/", {**SETTINGS, "purge_quarantined_after_days": "30", "self_approval": "first"}
    )
    assert response.status_code == 302
    org = OrgSettings.load()
    assert (org.purge_quarantined_after_days, org.self_approval) == (30, "first")
    form = admin.get("/settings/").context["form"]
    assert form["purge_quarantined_after_days"].value() == 30
    assert form["self_approval"].value() == "first"
    admin.post(
        "/settings/", {**SETTINGS, "purge_quarantined_after_days": "", "self_approval": "first"}
    )
    assert OrgSettings.load().purge_quarantined_after_days is None  # blank: never
    response = admin.post("/settings/", {**SETTINGS, "purge_quarantined_after_days": "0"})
    assert response.status_code == 200
    assert response.context["form"].errors["purge_quarantined_after_days"]


def test_the_grandfather_button_counts_then_grandfathers(world, admin, hd):
    page = _text(admin.get("/settings/"))
    assert "Put 0 devices allowed by the default on their mailbox's allowed list" in page
    actions.set_org_settings(SETUP, default_access_level="Allow")
    page = _text(admin.get("/settings/"))
    assert "Put 4 devices allowed by the default on their mailbox's allowed list" in page
    assert 'action="/settings/grandfather"' in admin.get("/settings/").content.decode()
    # The help desk sees the count, without a form to act.
    response = hd.get("/settings/")
    assert "Put 4 devices allowed by the default" in _text(response)
    assert 'action="/settings/grandfather"' not in response.content.decode()

    response = admin.post("/settings/grandfather", follow=True)
    assert response.redirect_chain[-1] == ("/settings/", 302)
    assert _messages(response) == [
        "Grandfathered 4 devices: their DeviceIds are on their mailbox's allowed list, "
        "so they keep syncing whatever the default."
    ]
    assert set(MobileDevice.objects.values_list("access_state", "access_state_reason")) == {
        (AccessState.ALLOWED, AccessReason.INDIVIDUAL)
    }
    assert MailboxDeviceId.objects.filter(list=DeviceIdList.ALLOWED).count() == 4
    event = AuditEvent.objects.get(action="devices.grandfather")
    assert (event.actor_name, event.source) == ("orgadmin", "ui")
    assert "Put 0 devices" in _text(admin.get("/settings/"))


def test_switching_to_quarantine_offers_to_grandfather_first(world, admin):
    actions.set_org_settings(SETUP, default_access_level="Allow")
    response = admin.post("/settings/", SETTINGS)
    page = _text(response)
    assert "Switching to Quarantine puts 4 allowed devices in quarantine now." in page
    assert "4 devices that sync today would be cut off." in page
    assert "Grandfather them first, then switch to Quarantine" in page
    assert "Switch anyway" in page
    assert OrgSettings.load().default_access_level == "Allow"

    response = admin.post(
        "/settings/",
        {**SETTINGS, "confirm_level": "Quarantine", "grandfather_first": "1"},
        follow=True,
    )
    (message,) = _messages(response)
    assert message.startswith("Grandfathered 4 devices:")
    assert "Default access level changed from Allow to Quarantine." in message
    assert OrgSettings.load().default_access_level == "Quarantine"
    assert set(MobileDevice.objects.values_list("access_state", flat=True)) == {"Allowed"}
    # One request, grandfathering first.
    request_id = AuditEvent.objects.latest("id").request_id
    assert list(
        AuditEvent.objects.filter(request_id=request_id)
        .order_by("id")
        .values_list("action", flat=True)
    ) == ["devices.grandfather", "org_settings.update"]
    # Only new devices wait now.
    new = _record(world.bob_box, "BOBNEW1", "Android", model="Pixel 8")
    assert new.access_state == AccessState.QUARANTINED


def test_switch_anyway_quarantines_todays_devices(world, admin):
    actions.set_org_settings(SETUP, default_access_level="Allow")
    admin.post("/settings/", {**SETTINGS, "confirm_level": "Quarantine"})
    assert set(MobileDevice.objects.values_list("access_state", flat=True)) == {"Quarantined"}
    assert not AuditEvent.objects.filter(action="devices.grandfather").exists()


def test_no_grandfather_offer_when_nobody_is_cut_off(world, admin):
    page = _text(admin.post("/settings/", {**SETTINGS, "default_access_level": "Allow"}))
    assert "Switching to Allow releases 4 quarantined devices now." in page
    assert "Grandfather them first" not in page and "Switch anyway" not in page


# -- self-approval on My devices -------------------------------------------------------


@pytest.fixture
def alice(world):
    return _client(world.alice)


def _self_approval(level, recipients=("it@example.org", "security@example.org")):
    actions.set_org_settings(SETUP, self_approval=level, admin_mail_recipients=list(recipients))


def test_never_explains_why_and_refuses(world, alice):
    page = _text(alice.get("/my/devices/"))
    assert "Approve this device" not in page
    assert page.count("Your organisation does not let users approve their own devices") == 2
    response = alice.post(f"/my/devices/{world.alice_phone.pk}/approve", follow=True)
    assert response.redirect_chain[-1] == (f"/my/devices/#device-{world.alice_phone.pk}", 302)
    (message,) = _messages(response)
    assert "was not approved: Your organisation does not let users approve" in message
    assert state_of(world.alice_phone) == AccessState.QUARANTINED


def test_always_lets_the_owner_approve_and_tells_the_admins(world, alice, hd):
    _self_approval("always")
    page = alice.get("/my/devices/").content.decode()
    assert page.count("Approve this device") == 2
    assert f'action="/my/devices/{world.alice_phone.pk}/approve"' in page
    response = alice.post(f"/my/devices/{world.alice_phone.pk}/approve", follow=True)
    (message,) = _messages(response)
    assert message.startswith("You approved iPhone15,2 (ALICEIPHONE1).")
    assert state_of(world.alice_phone) == AccessState.ALLOWED
    event = AuditEvent.objects.get(action="device.self_approve")
    assert (event.actor_name, event.source, event.actor_id) == (
        "alice",
        "self-service",
        world.alice.pk,
    )
    assert event.client_ip == "127.0.0.1" and event.request_id
    mails = Notification.objects.filter(kind=Kind.ADMIN_SELF_APPROVED)
    assert sorted(mails.values_list("recipient", flat=True)) == [
        "it@example.org",
        "security@example.org",
    ]
    assert mails.first().context["device"]["device_id"] == "ALICEIPHONE1"
    # The staff see who approved it.
    change = _last_change(world.alice_phone)
    assert f"Approved by alice (Self-service) on {_when(change)}, from Quarantined." in _text(
        hd.get(f"/devices/{world.alice_phone.pk}/")
    )
    # The other device still may be approved; the approved one offers nothing.
    page = _text(alice.get("/my/devices/"))
    assert page.count("Approve this device") == 1


def test_first_lets_the_owner_approve_one_device_only(world, alice):
    _self_approval("first")
    assert _text(alice.get("/my/devices/")).count("Approve this device") == 2
    alice.post(f"/my/devices/{world.alice_tablet.pk}/approve")
    assert state_of(world.alice_tablet) == AccessState.ALLOWED
    page = _text(alice.get("/my/devices/"))
    assert "Approve this device" not in page
    assert "You may approve your first device only; ask the helpdesk to approve this one." in page
    response = alice.post(f"/my/devices/{world.alice_phone.pk}/approve")
    assert "You may approve your first device only" in _messages(response)[0]
    assert state_of(world.alice_phone) == AccessState.QUARANTINED
    assert Notification.objects.filter(kind=Kind.ADMIN_SELF_APPROVED).count() == 2


def test_another_users_device_is_a_404(world):
    _self_approval("always")
    before = AuditEvent.objects.count()
    for user in (world.bob, world.helpdesk, world.org, world.nobody):
        response = _client(user).post(f"/my/devices/{world.alice_phone.pk}/approve")
        assert response.status_code == 404
    assert _client(world.alice).post("/my/devices/999999/approve").status_code == 404
    assert AuditEvent.objects.count() == before
    assert state_of(world.alice_phone) == AccessState.QUARANTINED


# -- replacement marks on the quarantine list ------------------------------------------


@pytest.fixture
def reset_phone(world):
    """Alice's approved iPhone, and the same phone back under a new DeviceId after a reset."""
    ua = "Apple-iPhone15C2/2104.100"
    old = _record(world.alice_box, "ALICEOLD1", "iPhone", model="iPhone15,2", user_agent=ua)
    actions.allow_device(SETUP, world.alice_box, "ALICEOLD1")
    new = _record(world.alice_box, "ALICENEW1", "iPhone", model="iPhone15,2", user_agent=ua)
    assert new.access_state == AccessState.QUARANTINED
    old.refresh_from_db()
    return old, new


def test_the_quarantine_list_marks_a_probable_replacement(world, hd, reset_phone):
    old, new = reset_phone
    response = hd.get("/devices/quarantine/")
    marks = {d.device_id: d.replaces for d in response.context["page"]}
    assert marks["ALICENEW1"].pk == old.pk
    assert marks["ALICEIPHONE1"] is None  # another model, no IMEI
    assert marks["CAROLIPHONE1"] is None  # another mailbox
    assert (
        f"Probably replaces ALICEOLD1 (iPhone15,2, approved {old.state_changed_at:%Y-%m-%d})"
        in _text(response)
    )
    page = response.content.decode()
    assert f'formaction="/devices/{new.pk}/replace" name="old" value="{old.pk}"' in page
    assert page.count("Allow and remove the old one") == 1


def test_the_same_imei_marks_a_replacement_whatever_the_model(world, hd):
    old = _record(world.bob_box, "BOBOLD1", "Android", model="SM-S911B", imei="356938035643809")
    actions.allow_device(SETUP, world.bob_box, "BOBOLD1")
    _record(world.bob_box, "BOBNEW1", "Android", model="", imei="356938035643809")
    marks = {d.device_id: d.replaces for d in hd.get("/devices/quarantine/").context["page"]}
    assert marks["BOBNEW1"].pk == old.pk
    assert marks["BOBANDROID1"] is None  # another model and no IMEI


def test_only_an_allowed_device_of_the_same_mailbox_is_replaced(world, hd, reset_phone):
    old, new = reset_phone
    actions.block_device(SETUP, world.alice_box, "ALICEOLD1")
    marks = {d.device_id: d.replaces for d in hd.get("/devices/quarantine/").context["page"]}
    assert marks["ALICENEW1"] is None


def test_allow_and_remove_the_old_one(world, hd, reset_phone):
    old, new = reset_phone
    response = hd.post(
        f"/devices/{new.pk}/replace",
        {"old": old.pk, "next": "/devices/quarantine/"},
        follow=True,
    )
    assert response.redirect_chain[-1] == ("/devices/quarantine/", 302)
    (message,) = _messages(response)
    assert message == (
        "Allowed iPhone ALICENEW1 for alice: was quarantined, now allowed. Removed the old "
        "partnership iPhone ALICEOLD1 and took it off the allowed list."
    )
    assert state_of(new) == AccessState.ALLOWED
    assert not MobileDevice.objects.filter(pk=old.pk).exists()
    allowed = set(
        MailboxDeviceId.objects.filter(mailbox=world.alice_box, list="allowed").values_list(
            "device_id", flat=True
        )
    )
    assert allowed == {"ALICENEW1"}
    event = AuditEvent.objects.get(action="device.replace")
    assert (event.actor_name, event.source) == ("hd", "ui")


def test_replacing_a_device_of_another_mailbox_is_refused(world, hd, reset_phone):
    old, new = reset_phone
    response = hd.post(f"/devices/{world.carol_phone.pk}/replace", {"old": old.pk})
    assert "same mailbox" in _messages(response)[0]
    assert MobileDevice.objects.filter(pk=old.pk).exists()
    assert state_of(world.carol_phone) == AccessState.QUARANTINED
    assert hd.post(f"/devices/{new.pk}/replace", {"old": "nope"}).status_code == 404


def test_the_marks_cost_one_query_whatever_the_page(world, hd, reset_phone):
    def queries():
        with CaptureQueriesContext(connection) as ctx:
            response = hd.get("/devices/quarantine/?per_page=200")
        assert response.status_code == 200
        return len(ctx.captured_queries), sum(
            1 for d in response.context["page"] if d.replaces is not None
        )

    assert queries() == (
        8,
        1,
    )  # the page: its ids, then its rows (devices.paging); one COUNT for list and badge
    boxes = [world.alice_box, world.bob_box, world.carol_box]
    for i in range(30):
        box, ua = boxes[i % 3], f"Agent/{i}"
        _record(box, f"OLD{i}", "iPhone", model=f"M{i}", user_agent=ua)
        actions.allow_device(SETUP, box, f"OLD{i}")
        _record(box, f"NEW{i}", "iPhone", model=f"M{i}", user_agent=ua)
    assert queries() == (8, 31)
