"""The audit log proves who approved what, through every door.

One quarantined device per door: allowed from the CLI, through the REST API
with a token, on the web page by a Help Desk member, approved by its owner
(self-service); a new device recorded by the standalone gate; and a stale one
purged by the system. Each event names the actor, the source and the action;
web and API events carry the client's address and a request id. The same
events are then found again with get-audit-log's filters (actor, action,
object, source, date range), the filters the audit page offers.
"""

import base64
import getpass
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.core.management.base import CommandError
from django.db.models import QuerySet  # backdating bypasses the append-only guard
from django.test import Client
from django.utils import timezone

from api import tokens
from devices import actions, evaluation, tasks
from devices.audit import Actor
from devices.models import AccessState, AuditEvent, AuditSource, MobileDevice
from tests.cli_support import eas, eas_json
from tests.web.conftest import PASSWORD, build_world, contact

GATE_URL = "/Microsoft-Server-ActiveSync"


@pytest.fixture(autouse=True)
def _fresh_gate(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()
    evaluation._compiled = None
    yield
    cache.clear()


@pytest.fixture
def world(db):
    """Quarantine by default; alice, bob and carol's devices wait; hd is Help Desk."""
    return build_world()


def allowed(device) -> bool:
    return MobileDevice.objects.get(pk=device.pk).access_state == AccessState.ALLOWED


def only_event(**filters) -> AuditEvent:
    [event] = AuditEvent.objects.filter(**filters)
    return event


# ---------------------------------------------------------------------------
# each door on its own


def test_the_cli_credits_the_os_user(world):
    eas("allow-device", "ALICEIPHONE1", "--mailbox", "alice")
    assert allowed(world.alice_phone)
    event = only_event(action="device.allow", object_id=str(world.alice_phone.pk))
    assert (event.actor, event.actor_name, event.source) == (None, OS_USER, AuditSource.CLI)
    assert event.actor_name != "cli"
    assert event.object_repr == "ALICEIPHONE1 (alice)"


def test_the_cli_credits_the_actor_named(world):
    eas("allow-device", "ALICEIPHONE1", "--mailbox", "alice", "--actor", "jsmith (ticket 4711)")
    event = only_event(action="device.allow", object_id=str(world.alice_phone.pk))
    assert (event.actor_name, event.source) == ("jsmith (ticket 4711)", AuditSource.CLI)
    rows = eas_json("get-audit-log", "--actor", "jsmith (ticket 4711)")
    assert [r["action"] for r in rows] == ["device.allow"]


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["", "   ", "a\nb", "x" * 151])
def test_a_bad_actor_name_is_refused_and_changes_nothing(name):
    with pytest.raises(CommandError, match="--actor takes a name"):
        eas("new-mailbox", "zed", "--email", "zed@example.org", "--actor", name)
    assert not AuditEvent.objects.filter(action="mailbox.create").exists()


def test_the_api_with_a_token(world):
    _, key = tokens.create_token(world.helpdesk, "audit test")
    response = Client().post(
        f"/api/v1/devices/{world.bob_phone.pk}/allow",
        headers={"Authorization": f"Token {key}"},
        REMOTE_ADDR="198.51.100.20",
    )
    assert response.status_code == 200, response.content
    assert allowed(world.bob_phone)
    event = only_event(action="device.allow", object_id=str(world.bob_phone.pk))
    assert (event.actor, event.actor_name, event.source) == (world.helpdesk, "hd", "api")
    assert event.client_ip == "198.51.100.20"
    assert len(event.request_id) >= 16


def test_the_web_page_as_help_desk(world):
    client = Client(REMOTE_ADDR="192.0.2.33")
    client.force_login(world.helpdesk)
    response = client.post(f"/devices/{world.carol_phone.pk}/allow")
    assert response.status_code == 302
    assert allowed(world.carol_phone)
    event = only_event(action="device.allow", object_id=str(world.carol_phone.pk))
    assert (event.actor, event.actor_name, event.source) == (world.helpdesk, "hd", AuditSource.UI)
    assert event.client_ip == "192.0.2.33"
    assert len(event.request_id) >= 16


def test_a_web_request_keeps_the_proxys_request_id(world):
    client = Client()
    client.force_login(world.helpdesk)
    client.post(f"/devices/{world.carol_phone.pk}/allow", headers={"X-Request-ID": "nginx-7d1e0a"})
    event = only_event(action="device.allow", object_id=str(world.carol_phone.pk))
    assert event.request_id == "nginx-7d1e0a"


def test_the_gate(world):
    login = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    response = Client(REMOTE_ADDR="203.0.113.50").post(
        GATE_URL,
        b"",
        content_type="application/vnd.ms-sync.wbxml",
        QUERY_STRING="Cmd=FolderSync&User=alice&DeviceId=ALICEANDROID9&DeviceType=Android",
        headers={
            "Authorization": f"Basic {login}",
            "MS-ASProtocolVersion": "14.1",
            "User-Agent": "Android-Mail/2024.01",
        },
    )
    assert response.status_code in (200, 403)
    device = MobileDevice.objects.get(device_id="ALICEANDROID9")
    event = only_event(action="device.create", object_id=str(device.pk))
    assert (event.actor, event.actor_name, event.source) == (world.alice, "alice", "gate")
    assert event.client_ip == "203.0.113.50"
    assert event.object_repr == "ALICEANDROID9 (alice)"


def test_self_service(world, cli_actor):
    actions.set_org_settings(cli_actor, self_approval="always")
    actor = Actor(
        user=world.alice, source=AuditSource.SELF_SERVICE, ip="192.0.2.77", request_id="r1"
    )
    actions.self_approve(actor, world.alice_tablet)
    assert allowed(world.alice_tablet)
    event = only_event(action="device.self_approve")
    assert (event.actor, event.actor_name, event.source) == (world.alice, "alice", "self-service")
    assert event.object_id == str(world.alice_tablet.pk)


def test_the_system(world, cli_actor):
    actions.set_org_settings(cli_actor, purge_quarantined_after_days=30)
    MobileDevice.objects.filter(pk=world.bob_phone.pk).update(
        state_changed_at=timezone.now() - timedelta(days=31)
    )
    assert tasks.purge_stale_quarantine() == 1
    event = only_event(action="device.purge")
    assert (event.actor, event.actor_name, event.source) == (None, "system", AuditSource.SYSTEM)
    assert (event.object_id, event.object_repr) == (
        str(world.bob_phone.pk),
        "BOBANDROID1 (bob)",
    )


# ---------------------------------------------------------------------------
# every door, then the log read back


@pytest.fixture
def every_door(world, cli_actor):
    """One approval per door, one device recorded by the gate, one purge by the system."""
    actions.set_org_settings(cli_actor, self_approval="always", purge_quarantined_after_days=30)
    dan = actions.create_mailbox(cli_actor, alias="dan", email="dan@example.org").obj
    dan_phone = contact(dan, "DANPHONE1", "iPhone", "iPhone12,1", "iOS 16")
    eas("allow-device", "ALICEIPHONE1", "--mailbox", "alice")
    _, key = tokens.create_token(world.helpdesk, "audit test")
    Client().post(
        f"/api/v1/devices/{world.bob_phone.pk}/allow", headers={"Authorization": f"Token {key}"}
    )
    web = Client()
    web.force_login(world.helpdesk)
    web.post(f"/devices/{world.carol_phone.pk}/allow")
    actions.self_approve(
        Actor(user=world.alice, source=AuditSource.SELF_SERVICE), world.alice_tablet
    )
    login = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    Client().post(
        GATE_URL,
        b"",
        content_type="application/vnd.ms-sync.wbxml",
        QUERY_STRING="Cmd=FolderSync&User=alice&DeviceId=ALICENEW1&DeviceType=iPhone",
        headers={"Authorization": f"Basic {login}", "MS-ASProtocolVersion": "14.1"},
    )
    MobileDevice.objects.filter(pk=dan_phone.pk).update(
        state_changed_at=timezone.now() - timedelta(days=40)
    )
    assert tasks.purge_stale_quarantine() == 1


OS_USER = getpass.getuser()
EXPECTED = [
    # (actor, source, action, object_repr)
    (OS_USER, "cli", "device.allow", "ALICEIPHONE1 (alice)"),
    ("hd", "api", "device.allow", "BOBANDROID1 (bob)"),
    ("hd", "ui", "device.allow", "CAROLIPHONE1 (carol)"),
    ("alice", "self-service", "device.self_approve", "ALICEIPAD1 (alice)"),
    ("alice", "gate", "device.create", "ALICENEW1 (alice)"),
    ("system", "system", "device.purge", "DANPHONE1 (dan)"),
]


def test_the_log_says_who_approved_what_through_which_door(every_door):
    rows = eas_json("get-audit-log", "--action", "device")
    seen = [(r["actor"], r["source"], r["action"], r["object_repr"]) for r in rows]
    assert seen[-len(EXPECTED) :] == EXPECTED
    by_source = {r["source"]: r for r in rows[-len(EXPECTED) :]}
    for source in ("api", "ui"):
        assert by_source[source]["client_ip"] == "127.0.0.1"
        assert by_source[source]["request_id"]
    for source in ("cli", "system"):
        assert by_source[source]["client_ip"] is None


@pytest.mark.parametrize("source", ["cli", "api", "ui", "self-service", "gate", "system"])
def test_the_source_filter_finds_each_door(every_door, source):
    expected = [e for e in EXPECTED if e[1] == source]
    rows = eas_json("get-audit-log", "--source", source.upper(), "--action", "device")
    assert {r["source"] for r in rows} == {source}
    # The world's own devices came through the gate before: the doors' events are last.
    seen = [(r["actor"], r["source"], r["action"], r["object_repr"]) for r in rows]
    assert seen[-len(expected) :] == expected


def test_the_object_filter_by_name_or_type_and_id(every_door, world):
    by_name = eas_json("get-audit-log", "--object", "bobandroid1")
    assert {r["action"] for r in by_name} >= {"device.create", "device.allow"}
    assert all("BOBANDROID1" in r["object_repr"] for r in by_name)
    by_id = eas_json("get-audit-log", "--object", f"MobileDevice/{world.carol_phone.pk}")
    assert by_id and all(r["object_id"] == str(world.carol_phone.pk) for r in by_id)
    assert [r["action"] for r in by_id if r["source"] == "ui"] == ["device.allow"]
    mailbox_events = eas_json("get-audit-log", "--object", "mailbox")
    assert {r["object_type"] for r in mailbox_events} == {"Mailbox"}


def test_the_actor_filter_and_a_date_range(every_door):
    hd = eas_json("get-audit-log", "--actor", "HD")
    assert [(r["source"], r["action"]) for r in hd] == [
        ("api", "device.allow"),
        ("ui", "device.allow"),
    ]
    # Move the API approval two days back; a range around it finds it alone.
    api_event = AuditEvent.objects.get(source=AuditSource.API)
    two_days_ago = timezone.now() - timedelta(days=2)
    QuerySet(AuditEvent).filter(pk=api_event.pk).update(time=two_days_ago)
    day = timezone.localtime(two_days_ago).date()
    rows = eas_json("get-audit-log", "--since", day.isoformat(), "--until", day.isoformat())
    assert [(r["actor"], r["source"]) for r in rows] == [("hd", "api")]
    # --until a date-time: before that instant.
    rows = eas_json("get-audit-log", "--until", (two_days_ago + timedelta(seconds=1)).isoformat())
    assert [(r["actor"], r["source"]) for r in rows] == [("hd", "api")]
    assert eas_json("get-audit-log", "--until", two_days_ago.isoformat()) == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args, message",
    [
        (["--source", "email"], "Unknown source 'email'"),
        (["--until", "next week"], "--until takes an ISO date"),
        (["--until", "2025-02-30"], "--until takes an ISO date"),
        (["--object", "  "], "--object must not be empty"),
    ],
)
def test_bad_filters_are_one_line_errors(args, message):
    with pytest.raises(CommandError, match=message):
        eas("get-audit-log", *args)
