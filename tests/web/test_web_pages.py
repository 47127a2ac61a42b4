"""Sign in and out, the dashboard, My devices, roles."""

import html
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.utils import timezone

from devices import actions
from devices.models import MobileDevice
from devices.permissions import Role, role_for

from .conftest import PASSWORD, SETUP, make_user


def _text(response) -> str:
    return html.unescape(response.content.decode())


def test_the_migration_made_both_groups(db):
    names = set(Group.objects.values_list("name", flat=True))
    assert {"Organization Management", "Help Desk"} <= names


def test_roles(world):
    assert role_for(world.org) == Role.ORG_MANAGEMENT
    assert role_for(world.superuser) == Role.ORG_MANAGEMENT
    assert role_for(world.helpdesk) == Role.HELP_DESK
    assert role_for(world.alice) == Role.END_USER
    assert role_for(world.nobody) == Role.NONE
    # Group names compare case-insensitively; a staff flag alone is no role.
    odd = make_user("odd")
    odd.groups.add(Group.objects.create(name="help desk"))
    assert role_for(odd) == Role.HELP_DESK
    staff = make_user("staff")
    staff.is_staff = True
    staff.save()
    assert role_for(staff) == Role.NONE


def test_an_inactive_user_has_no_role(world):
    world.helpdesk.is_active = False
    assert role_for(world.helpdesk) == Role.NONE


@pytest.mark.parametrize(
    ("user", "lands_on"),
    [("hd", "/"), ("orgadmin", "/"), ("alice", "/my/devices/")],
)
def test_sign_in_lands_each_role_on_its_page(world, user, lands_on):
    client = Client()
    response = client.post(
        "/accounts/login/", {"username": user, "password": PASSWORD}, follow=True
    )
    assert response.redirect_chain[-1][0] == lands_on
    assert response.status_code == 200


def test_the_deep_link_survives_sign_in(world):
    client = Client()
    url = f"/devices/{world.alice_phone.pk}/"
    response = client.get(url)
    assert response["Location"] == f"/accounts/login/?next={url}"
    response = client.post(
        "/accounts/login/", {"username": "hd", "password": PASSWORD, "next": url}, follow=True
    )
    assert response.redirect_chain[-1] == (url, 302)
    assert "ALICEIPHONE1" in _text(response)


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/x", "http://testserver.evil/"]
)
def test_sign_in_never_redirects_off_site(world, target):
    client = Client()
    response = client.post(
        "/accounts/login/", {"username": "hd", "password": PASSWORD, "next": target}
    )
    assert response.status_code == 302
    assert response["Location"] == "/"


def test_wrong_password(world):
    response = Client().post("/accounts/login/", {"username": "hd", "password": "nope"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in _text(response)


def test_change_password(world):
    client = Client()
    client.force_login(world.alice)
    response = client.post(
        "/accounts/password/",
        {
            "old_password": PASSWORD,
            "new_password1": "another long passphrase 42",
            "new_password2": "another long passphrase 42",
        },
        follow=True,
    )
    assert response.redirect_chain[0] == ("/", 302)
    assert "Your password was changed." in _text(response)
    assert client.get("/my/devices/").status_code == 200  # still signed in
    world.alice.refresh_from_db()
    assert world.alice.check_password("another long passphrase 42")


def test_dashboard(world):
    MobileDevice.objects.filter(pk=world.carol_phone.pk).update(
        state_changed_at=timezone.now() - timedelta(days=2),
        first_seen=timezone.now() - timedelta(days=2),
    )
    MobileDevice.objects.filter(pk=world.bob_phone.pk).update(
        first_seen=timezone.now() - timedelta(days=45)
    )
    client = Client()
    client.force_login(world.helpdesk)
    response = client.get("/")
    states = {s["value"]: s["n"] for s in response.context["states"]}
    assert states == {
        "Allowed": 0,
        "Blocked": 0,
        "Quarantined": 4,
        "DeviceDiscovery": 0,
        "Unknown": 0,
    }
    assert response.context["oldest"].pk == world.carol_phone.pk
    chart = response.context["chart"]
    assert len(chart["bars"]) == 30
    assert chart["total"] == 3  # bob's is older than 30 days
    assert chart["bars"][-1]["n"] == 2 and chart["bars"][-3]["n"] == 1
    text = _text(response)
    assert "<svg" in text and "waiting <strong>2\xa0days</strong>" in text
    assert f'action="/devices/{world.carol_phone.pk}/allow"' in text
    assert "Sent mail" not in text  # Organization Management only


def test_org_management_gets_the_sent_mail_link(world):
    client = Client()
    client.force_login(world.org)
    assert 'href="/notifications/">Sent mail' in _text(client.get("/"))


def test_my_devices_explains_and_says_what_to_do(world):
    actions.set_org_settings(SETUP, user_mail_insert="<b>Call</b> 4357\nor mail it@example.org")
    actions.allow_device(SETUP, world.alice_box, "ALICEIPAD1")
    client = Client()
    client.force_login(world.alice)
    response = client.get("/my/devices/")
    raw = response.content.decode()
    assert "&lt;b&gt;Call&lt;/b&gt; 4357<br>or mail it@example.org" in raw
    text = _text(response)
    # In the owner's words: no engine terms, no mailbox alias (issue 17, point 8).
    assert "Your organisation holds new devices until the help desk approves them." in text
    assert "waiting for the help desk to approve it" in text
    assert "This device was approved for your mailbox." in text
    assert "DeviceId is on the allowed list" not in text
    assert "Nothing to do: this device syncs your mail." in text
    assert "Dashboard" not in text and "/devices/quarantine/" not in text


PAGES = [
    "/",
    "/devices/",
    "/devices/quarantine/",
    "/devices/{device}/",
    "/mailboxes/",
    "/mailboxes/{mailbox}/",
    "/rules/",
    "/rules/new?device={device}",
    "/rules/{rule}/edit",
    "/rules/{rule}/delete",
    "/rules/test?device_type=iPhone",
    "/settings/",
    "/policies/",
    "/policies/new",
    "/org-device-ids/",
    "/audit/",
    "/my/devices/",
    "/accounts/password/",
]


def test_no_inline_script_no_inline_handler_no_cdn(world):
    """Ready for a strict Content-Security-Policy: scripts only from /static/."""
    client = Client()
    client.force_login(world.superuser)
    urls = [
        p.format(device=world.alice_phone.pk, mailbox=world.alice_box.pk, rule=world.rule.pk)
        for p in PAGES
    ]
    pages = [client.get(url) for url in urls] + [Client().get("/accounts/login/")]
    for response in pages:
        assert response.status_code == 200
        text = response.content.decode()
        scripts = re.findall(r"<script\b[^>]*>", text)
        assert scripts and all(re.search(r'src="/static/[^"]+"', s) for s in scripts)
        assert not re.search(r"<script\b[^>]*>\s*[^<\s]", text), "inline script"
        assert not re.search(r"\son[a-z]+\s*=", text), "inline event handler"
        assert not re.search(r'(?:src|href)="(?:https?:)?//', text), "asset from elsewhere"
        assert 'style="' not in text


def test_my_devices_words_a_rule_for_its_owner(world):
    actions.create_rule(
        SETUP, characteristic="DeviceModel", query_string="iPad13*", access_level="Block"
    )
    client = Client()
    client.force_login(world.alice)
    text = _text(client.get("/my/devices/"))
    assert "Your organisation blocks devices of the model iPad13*." in text
    assert "on DeviceModel" not in text and "(Block)" not in text


def test_my_devices_names_the_policy_that_decides(world):
    actions.create_policy(
        SETUP, name="Contractors", default_access_level="Quarantine", domains=["example.org"]
    )
    client = Client()
    client.force_login(world.alice)
    text = _text(client.get("/my/devices/"))
    assert (
        "The access policy Contractors, which covers your mailbox, holds new devices until"
        " the help desk approves them." in text
    )
