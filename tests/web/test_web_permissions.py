"""The permission matrix: every URL, for every role.

Roles: anonymous, end user (alice, owner of the device under test), other end
user (bob), Help Desk, Organization Management (a group member, and a
superuser, which counts as Organization Management), and a login with no role
and no mailbox. Expected statuses are written out per URL so that a change of
rights shows up as a failing line.
"""

import pytest
from django.test import Client

from devices import actions
from devices.models import (
    AuditEvent,
    DeviceAccessRule,
    Mailbox,
    MobileDevice,
    OrgSettings,
    RuleChangeJob,
)

from .conftest import SETUP

ROLES = ("anon", "alice", "bob", "helpdesk", "org", "superuser", "nobody")


@pytest.fixture
def world(world):
    """The web world, plus an access policy, an organisation-wide DeviceId, an
    approved tablet and self-approval on, so that every URL has something to act on."""
    world.policy = actions.create_policy(SETUP, name="Executives", default_access_level="Allow").obj
    world.org_id = actions.add_org_device_id(SETUP, "LOANER1", note="Loan phone").obj
    actions.set_org_settings(SETUP, self_approval="always")
    # An approved device for the quarantined phone to replace.
    actions.allow_device(SETUP, world.alice_box, world.alice_tablet.device_id)
    # A rule change queued by Organization Management (never run here).
    world.job = RuleChangeJob.objects.create(
        kind="delete", params={"rule_id": world.rule.pk}, user=world.org, user_name="orgadmin"
    )
    return world


def _client(world, role) -> Client:
    client = Client()
    user = {
        "anon": None,
        "alice": world.alice,
        "bob": world.bob,
        "helpdesk": world.helpdesk,
        "org": world.org,
        "superuser": world.superuser,
        "nobody": world.nobody,
    }[role]
    if user is not None:
        client.force_login(user)
    return client


def _url(template, world) -> str:
    return template.format(
        device=world.alice_phone.pk,
        other=world.alice_tablet.pk,
        mailbox=world.alice_box.pk,
        rule=world.rule.pk,
        policy=world.policy.pk,
        org_id=world.org_id.pk,
        job=world.job.pk,
    )


#            anon alice bob  hd   org  superuser nobody
GET_MATRIX = [
    ("/", (302, 302, 302, 200, 200, 200, 302)),
    ("/devices/", (302, 403, 403, 200, 200, 200, 403)),
    ("/devices/quarantine/", (302, 403, 403, 200, 200, 200, 403)),
    ("/devices/{device}/", (302, 302, 404, 200, 200, 200, 404)),
    ("/mailboxes/", (302, 403, 403, 200, 200, 200, 403)),
    ("/mailboxes/{mailbox}/", (302, 403, 403, 200, 200, 200, 403)),
    ("/rules/", (302, 403, 403, 200, 200, 200, 403)),
    ("/rules/new", (302, 403, 403, 403, 200, 200, 403)),
    ("/rules/new?device={device}", (302, 403, 403, 403, 200, 200, 403)),
    ("/rules/{rule}/edit", (302, 403, 403, 403, 200, 200, 403)),
    ("/rules/{rule}/delete", (302, 403, 403, 403, 200, 200, 403)),
    ("/rules/{rule}/delete/preview.csv", (302, 403, 403, 403, 200, 200, 403)),
    (
        "/rules/preview.csv?characteristic=DeviceType&query_string=iPhone&access_level=Block",
        (302, 403, 403, 403, 200, 200, 403),
    ),
    ("/rules/test?device_type=iPhone", (302, 403, 403, 200, 200, 200, 403)),
    # A rule change job: its creator (org) and Organization Management; others 404.
    ("/jobs/{job}/", (302, 404, 404, 404, 200, 200, 404)),
    ("/jobs/{job}.json", (302, 404, 404, 404, 200, 200, 404)),
    ("/settings/", (302, 403, 403, 200, 200, 200, 403)),
    ("/settings/preview.csv?default_access_level=Block", (302, 403, 403, 403, 200, 200, 403)),
    (
        "/policies/preview.csv?name=Temps&default_access_level=Block&domains=example.org&priority=5",
        (302, 403, 403, 403, 200, 200, 403),
    ),
    ("/policies/", (302, 403, 403, 200, 200, 200, 403)),
    ("/policies/new", (302, 403, 403, 403, 200, 200, 403)),
    ("/policies/{policy}/edit", (302, 403, 403, 403, 200, 200, 403)),
    ("/policies/{policy}/delete", (302, 403, 403, 403, 200, 200, 403)),
    ("/org-device-ids/", (302, 403, 403, 200, 200, 200, 403)),
    ("/audit/", (302, 403, 403, 200, 200, 200, 403)),
    ("/audit/?action=device.&source=ui&from=2020-01-01", (302, 403, 403, 200, 200, 200, 403)),
    ("/audit/export.csv", (302, 403, 403, 200, 200, 200, 403)),
    ("/my/devices/", (302, 200, 200, 200, 200, 200, 200)),
    ("/accounts/password/", (302, 200, 200, 200, 200, 200, 200)),
    ("/accounts/login/", (200, 302, 302, 302, 302, 302, 302)),
    # Writes are POST only: a GET is refused before anything else is looked at.
    ("/devices/{device}/allow", (405, 405, 405, 405, 405, 405, 405)),
    ("/devices/{device}/replace", (405, 405, 405, 405, 405, 405, 405)),
    ("/settings/grandfather", (405, 405, 405, 405, 405, 405, 405)),
    ("/org-device-ids/{org_id}/remove", (405, 405, 405, 405, 405, 405, 405)),
    ("/my/devices/{device}/approve", (405, 405, 405, 405, 405, 405, 405)),
]

RULE_FORM = {
    "characteristic": "DeviceType",
    "query_string": "iPad",
    "access_level": "Allow",
    "previewed": "DeviceType\x1fiPad\x1fAllow",
    "save": "1",
}
SETTINGS_FORM = {
    "default_access_level": "Quarantine",
    "admin_mail_recipients": "it@example.org",
    "user_mail_insert": "Call 4357.",
    "discovery_window_minutes": "15",
    "send_user_mail": "on",
    "admin_mail_mode": "each",
    "admin_digest_minutes": "15",
    "allow_health_probes": "on",
    "purge_quarantined_after_days": "30",
    "self_approval": "first",
}
POLICY_FORM = {
    "name": "Contractors",
    "default_access_level": "Block",
    "domains": "contractors.example.org",
    "priority": "50",
}

#             anon alice bob  hd   org  superuser nobody
POST_MATRIX = [
    ("/devices/{device}/allow", {}, (302, 403, 404, 302, 302, 302, 404)),
    ("/devices/{device}/block", {}, (302, 403, 404, 302, 302, 302, 404)),
    ("/devices/{device}/remove", {}, (302, 403, 404, 302, 302, 302, 404)),
    ("/devices/{device}/replace", {"old": "{other}"}, (302, 403, 404, 302, 302, 302, 404)),
    (
        "/devices/bulk",
        {"action": "allow", "ids": "{device}"},
        (302, 403, 403, 302, 302, 302, 403),
    ),
    (
        "/mailboxes/{mailbox}/",
        {"op": "add", "list": "blocked", "device_id": "NEWID1"},
        (302, 403, 403, 302, 302, 302, 403),
    ),
    (
        "/mailboxes/{mailbox}/",
        {"op": "activesync", "activesync_enabled": "false"},
        (302, 403, 403, 403, 302, 302, 403),
    ),
    (
        "/mailboxes/{mailbox}/",
        {"op": "policy", "policy": "{policy}"},
        (302, 403, 403, 403, 302, 302, 403),
    ),
    ("/rules/new", RULE_FORM, (302, 403, 403, 403, 302, 302, 403)),
    (
        "/rules/new",
        {
            "device": "{device}",
            "device_type": "iPhone",
            "device_model": "",
            "access_level": "Allow",
            "previewed": "DeviceType\x1fiPhone\x1fAllow",
            "save": "1",
        },
        (302, 403, 403, 403, 302, 302, 403),
    ),
    ("/rules/{rule}/edit", RULE_FORM, (302, 403, 403, 403, 302, 302, 403)),
    ("/rules/{rule}/delete", {}, (302, 403, 403, 403, 302, 302, 403)),
    ("/settings/", SETTINGS_FORM, (302, 403, 403, 403, 302, 302, 403)),
    ("/settings/grandfather", {}, (302, 403, 403, 403, 302, 302, 403)),
    ("/policies/new", POLICY_FORM, (302, 403, 403, 403, 302, 302, 403)),
    ("/policies/{policy}/edit", POLICY_FORM, (302, 403, 403, 403, 302, 302, 403)),
    ("/policies/{policy}/delete", {}, (302, 403, 403, 403, 302, 302, 403)),
    (
        "/org-device-ids/",
        {"device_id": "LOANER2", "note": "Loan tablet"},
        (302, 403, 403, 403, 302, 302, 403),
    ),
    ("/org-device-ids/{org_id}/remove", {}, (302, 403, 403, 403, 302, 302, 403)),
    # Without a valid token, undo changes nothing ("Nothing to undo"); with one, the
    # device's own permission check applies (tests/web/test_web_undo.py).
    ("/devices/undo", {"token": "forged"}, (302, 302, 302, 302, 302, 302, 302)),
    # Self-service: only the owner; anyone else's device does not exist for them.
    ("/my/devices/{device}/approve", {}, (302, 302, 404, 404, 404, 404, 404)),
    ("/accounts/password/", {}, (302, 200, 200, 200, 200, 200, 200)),
]

# URLs that change state answer GET with 405 and change nothing.
POST_ONLY = [
    "/devices/{device}/allow",
    "/devices/{device}/block",
    "/devices/{device}/remove",
    "/devices/{device}/replace",
    "/devices/bulk",
    "/devices/undo",
    "/settings/grandfather",
    "/org-device-ids/{org_id}/remove",
    "/my/devices/{device}/approve",
]


def _snapshot():
    return (
        AuditEvent.objects.count(),
        sorted(MobileDevice.objects.values_list("pk", "access_state", "access_state_reason")),
        sorted(DeviceAccessRule.objects.values_list("pk", "query_string", "access_level")),
        sorted(Mailbox.objects.values_list("pk", "activesync_enabled", "access_policy")),
        OrgSettings.load().default_access_level,
    )


def _check(response, expected, url):
    assert response.status_code == expected, (url, response.status_code)
    if expected == 302 and response.status_code == 302:
        assert not response["Location"].startswith("http"), "redirects stay on this site"


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("template", "expected"), GET_MATRIX, ids=[t for t, _ in GET_MATRIX])
def test_get_matrix(world, role, template, expected):
    url = _url(template, world)
    before = _snapshot()
    response = _client(world, role).get(url)
    _check(response, expected[ROLES.index(role)], url)
    if role == "anon" and response.status_code == 302:
        assert response["Location"].startswith("/accounts/login/?next=")
    assert _snapshot() == before, "GET must never change state"


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(
    ("template", "data", "expected"),
    POST_MATRIX,
    ids=[f"{t}-{i}" for i, (t, _, _) in enumerate(POST_MATRIX)],
)
def test_post_matrix(world, role, template, data, expected):
    url = _url(template, world)
    data = {k: _url(v, world) for k, v in data.items()}
    before = _snapshot()
    response = _client(world, role).post(url, data)
    want = expected[ROLES.index(role)]
    _check(response, want, url)
    if role == "anon":
        assert response["Location"].startswith("/accounts/login/?next=")
    if want in (403, 404) or role == "anon":
        assert _snapshot() == before, "a refused request changes nothing"
    elif template not in ("/accounts/password/", "/devices/undo"):
        # (A forged undo token is answered "Nothing to undo": tests/web/test_web_undo.py.)
        assert _snapshot() != before, "an accepted request did what it was asked"


@pytest.mark.parametrize("template", POST_ONLY)
@pytest.mark.parametrize("role", ("alice", "helpdesk", "org"))
def test_state_changing_urls_refuse_get(world, role, template):
    before = _snapshot()
    response = _client(world, role).get(_url(template, world))
    assert response.status_code == 405
    assert _snapshot() == before


def test_logout_is_post_only(world):
    client = _client(world, "helpdesk")
    assert client.get("/accounts/logout/").status_code == 405
    assert client.get("/").status_code == 200
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert client.get("/").status_code == 302


@pytest.mark.parametrize(
    ("role", "template", "data"),
    [
        ("org", "/devices/{device}/allow", {}),
        ("org", "/devices/{device}/block", {}),
        ("org", "/devices/{device}/remove", {}),
        ("org", "/devices/{device}/replace", {"old": "{other}"}),
        ("org", "/mailboxes/{mailbox}/", {"op": "add", "list": "allowed", "device_id": "X1"}),
        ("org", "/mailboxes/{mailbox}/", {"op": "policy", "policy": "{policy}"}),
        ("org", "/settings/", SETTINGS_FORM),
        ("org", "/settings/grandfather", {}),
        ("org", "/policies/new", POLICY_FORM),
        ("org", "/policies/{policy}/edit", POLICY_FORM),
        ("org", "/policies/{policy}/delete", {}),
        ("org", "/org-device-ids/", {"device_id": "LOANER2"}),
        ("org", "/org-device-ids/{org_id}/remove", {}),
        ("alice", "/my/devices/{device}/approve", {}),
    ],
)
def test_every_post_needs_csrf(world, role, template, data):
    client = Client(enforce_csrf_checks=True)
    client.force_login(getattr(world, role))
    before = _snapshot()
    data = {k: _url(v, world) for k, v in data.items()}
    response = client.post(_url(template, world), data)
    assert response.status_code == 403
    assert b"CSRF" in response.content
    assert _snapshot() == before


def test_an_end_user_cannot_reach_other_devices_by_id(world):
    client = _client(world, "alice")
    own = {world.alice_phone.pk, world.alice_tablet.pk}
    others = set(MobileDevice.objects.exclude(pk__in=own).values_list("pk", flat=True))
    assert others
    missing = max(own | others) + 1
    before = _snapshot()
    for pk in [*others, missing, 0]:
        assert client.get(f"/devices/{pk}/").status_code == 404
        for verb in ("allow", "block", "remove"):
            assert client.post(f"/devices/{pk}/{verb}").status_code == 404
        assert client.get(f"/rules/new?device={pk}").status_code == 403
    for pk in own:
        response = client.get(f"/devices/{pk}/")
        assert response.status_code == 302
        assert response["Location"] == f"/my/devices/#device-{pk}"
        assert client.post(f"/devices/{pk}/allow").status_code == 403
    assert _snapshot() == before


def test_my_devices_shows_only_the_users_own(world):
    page = _client(world, "alice").get("/my/devices/").content.decode()
    assert "ALICEIPHONE1" in page and "ALICEIPAD1" in page
    for other in ("BOBANDROID1", "CAROLIPHONE1", "Bob Baker", "carol"):
        assert other not in page


def test_a_login_without_mailbox_or_role_sees_only_an_empty_my_devices(world):
    client = _client(world, "nobody")
    assert client.get("/").status_code == 302
    page = client.get("/my/devices/")
    assert page.status_code == 200
    assert "not linked to a mailbox" in page.content.decode()
    for url in ("/devices/", "/devices/quarantine/", "/mailboxes/", "/rules/", "/settings/"):
        assert client.get(url).status_code == 403
    assert client.get(f"/devices/{world.alice_phone.pk}/").status_code == 404
