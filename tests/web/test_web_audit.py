"""The audit page: filters, newest first, keyset pages, state-change counts, CSV export."""

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from devices.models import AuditEvent, AuditSource

from .conftest import contact


@pytest.fixture
def hd(world):
    client = Client()
    client.force_login(world.helpdesk)
    return client


def _event(when, *, actor="someone", source=AuditSource.CLI, action="device.allow", **fields):
    fields.setdefault("object_type", "MobileDevice")
    fields.setdefault("object_repr", "X (alice)")
    return AuditEvent.objects.create(
        time=when, actor_name=actor, source=source, action=action, **fields
    )


def _rows(response):
    assert response.status_code == 200
    return [e.pk for e in response.context["page"]["rows"]]


def _csv(response):
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="audit-')
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def test_it_lists_newest_first_with_the_state_changes_of_each_event(world, hd):
    hd.post(f"/devices/{world.alice_phone.pk}/allow")
    response = hd.get("/audit/")
    rows = response.context["page"]["rows"]
    assert [e.time for e in rows] == sorted((e.time for e in rows), reverse=True)
    allow = rows[0]
    assert (allow.action, allow.actor_name, allow.source) == ("device.allow", "hd", "ui")
    assert allow.n_changes == allow.state_changes.count() == 1
    # The world's setup switched the default before any device existed.
    assert {e.action: e.n_changes for e in rows}["org_settings.update"] == 0
    page = response.content.decode()
    assert f'id="event-{allow.pk}"' in page
    assert 'badge text-bg-secondary">1<' in page
    assert f'href="/devices/{world.alice_phone.pk}/"' in page


def test_an_update_shows_what_changed(world, hd):
    admin = Client()
    admin.force_login(world.org)
    admin.post(
        "/settings/",
        {
            "default_access_level": "Quarantine",
            "admin_mail_recipients": "it@example.org",
            "discovery_window_minutes": "20",
            "admin_mail_mode": "each",
            "admin_digest_minutes": "15",
            "self_approval": "never",
        },
    )
    response = hd.get("/audit/?action=org_settings.")
    latest = response.context["page"]["rows"][0]
    assert latest.actor_name == "orgadmin"
    assert "discovery_window_minutes: 15 → 20" in latest.changes
    assert 'admin_mail_recipients: — → ["it@example.org"]' in latest.changes
    assert "discovery_window_minutes: 15 → 20" in response.content.decode()


def test_each_filter(world, hd):
    now = timezone.now()
    a = _event(
        now - timedelta(days=3),
        actor="alice",
        source=AuditSource.SELF_SERVICE,
        action="device.self_approve",
        object_repr="ALICEIPHONE1 (alice)",
    )
    b = _event(
        now - timedelta(days=2),
        actor="hd",
        source=AuditSource.UI,
        action="device.block",
        object_repr="BOBANDROID1 (bob)",
    )
    c = _event(
        now - timedelta(days=1),
        actor="orgadmin",
        source=AuditSource.API,
        action="rule.create",
        object_type="DeviceAccessRule",
        object_repr="iPhone",
    )
    mine = {a.pk, b.pk, c.pk}

    def found(query):
        return [pk for pk in _rows(hd.get(f"/audit/?{query}")) if pk in mine]

    assert found("actor=HD") == [b.pk]
    assert found("action=device.") == [b.pk, a.pk]
    assert found("action=device.*") == [b.pk, a.pk]
    assert found("action=device.block") == [b.pk]
    assert found("action=rule") == [c.pk]
    assert found("object=androiD") == [b.pk]
    assert found("object_type=DeviceAccessRule") == [c.pk]
    assert found("source=self-service") == [a.pk]
    assert found("source=api&actor=orgadmin") == [c.pk]
    day = lambda d: timezone.localdate(now - timedelta(days=d)).isoformat()  # noqa: E731
    assert found(f"from={day(2)}") == [c.pk, b.pk]
    assert found(f"to={day(2)}") == [b.pk, a.pk]  # "to" takes in that whole day
    assert found(f"from={day(2)}&to={day(2)}") == [b.pk]


def test_a_bad_filter_is_not_applied_and_says_so(world, hd):
    response = hd.get("/audit/?from=2026-02-01&to=2026-01-01&source=telepathy")
    assert len(_rows(response)) == AuditEvent.objects.count()
    page = response.content.decode()
    assert "The end of the range is before its start." in page
    assert "There are 2 problems: these filters are not applied" in page
    assert 'href="#a-source"' in page  # the summary links to the field


def test_the_events_of_one_request(world, hd):
    hd.post(
        "/devices/bulk",
        {"action": "allow", "ids": f"{world.alice_phone.pk},{world.bob_phone.pk}"},
        HTTP_X_REQUEST_ID="req-42",
    )
    rows = hd.get("/audit/?request_id=req-42").context["page"]["rows"]
    assert sorted(e.object_repr for e in rows) == ["ALICEIPHONE1 (alice)", "BOBANDROID1 (bob)"]


def test_keyset_pages_older_and_newer(world, hd):
    start = timezone.now() + timedelta(minutes=1)
    made = [_event(start + timedelta(seconds=i // 2), object_repr=f"E{i}") for i in range(60)]
    newest = list(reversed(made))
    first = hd.get("/audit/?per_page=25&actor=someone")
    assert _rows(first) == [e.pk for e in newest[:25]]
    older = first.context["page"]["older"]
    assert older and not first.context["page"]["newer"]
    second = hd.get(f"/audit/?per_page=25&actor=someone&before={older}")
    assert _rows(second) == [e.pk for e in newest[25:50]]
    third = hd.get(f"/audit/?per_page=25&actor=someone&before={second.context['page']['older']}")
    assert _rows(third) == [e.pk for e in newest[50:]]
    assert not third.context["page"]["older"]
    back = hd.get(f"/audit/?per_page=25&actor=someone&after={third.context['page']['newer']}")
    assert _rows(back) == _rows(second)
    back = hd.get(f"/audit/?per_page=25&actor=someone&after={back.context['page']['newer']}")
    assert _rows(back) == _rows(first)
    assert not back.context["page"]["newer"]
    page = second.content.decode()
    assert ">Newest<" in page and ">Newer<" in page and ">Older<" in page
    # Nonsense cursors show the newest page.
    assert _rows(hd.get("/audit/?per_page=25&actor=someone&before=x_y")) == _rows(first)


def test_csv_export_with_the_same_filters(world, hd):
    hd.post(f"/devices/{world.alice_phone.pk}/allow", REMOTE_ADDR="192.0.2.7")
    _event(timezone.now(), actor="mallory", object_repr='=HYPERLINK("http://x")')
    rows = _csv(hd.get("/audit/export.csv?action=device.allow&source=ui"))
    assert list(rows[0]) == [
        "time", "actor", "source", "client_ip", "request_id", "action",
        "object_type", "object_repr", "message", "before", "after",
    ]  # fmt: skip
    (row,) = rows
    event = AuditEvent.objects.get(action="device.allow", source="ui")
    assert row["time"] == event.time.astimezone(UTC).isoformat()
    assert (row["actor"], row["source"], row["client_ip"]) == ("hd", "ui", "192.0.2.7")
    assert row["request_id"] == event.request_id != ""
    assert (row["object_type"], row["object_repr"]) == ("MobileDevice", "ALICEIPHONE1 (alice)")
    assert row["message"].startswith("DeviceId ALICEIPHONE1 allowed for mailbox alice")
    assert json.loads(row["before"])["allowed_device_ids"] == []
    assert json.loads(row["after"])["allowed_device_ids"] == ["ALICEIPHONE1"]

    everything = _csv(hd.get("/audit/export.csv"))
    assert len(everything) == AuditEvent.objects.count()
    times = [datetime.fromisoformat(r["time"]) for r in everything]
    assert times == sorted(times), "oldest first"
    (cell,) = [r["object_repr"] for r in everything if r["actor"] == "mallory"]
    assert cell == '\'=HYPERLINK("http://x")', "no formula for a spreadsheet to run"


def test_the_export_refuses_a_bad_filter_rather_than_export_everything(world, hd):
    response = hd.get("/audit/export.csv?from=2026-02-01&to=2026-01-01")
    assert response.status_code == 400
    assert response.content.decode() == (
        "Nothing exported: The end of the range is before its start.\n"
    )
    assert hd.get("/audit/export.csv?source=telepathy").status_code == 400


def test_the_export_link_carries_the_filters(world, hd):
    page = hd.get("/audit/?actor=hd&action=device.").content.decode()
    assert 'href="/audit/export.csv?actor=hd&amp;action=device."' in page


def test_the_list_runs_a_fixed_number_of_queries_with_state_changes(world, hd):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries():
        with CaptureQueriesContext(connection) as ctx:
            assert hd.get("/audit/?per_page=200").status_code == 200
        return len(ctx.captured_queries)

    small = queries()
    for i in range(40):
        contact(world.bob_box, f"BOBMORE{i}", "Android", "SM-S918B")
    hd.post("/devices/bulk", {"action": "allow", "ids": "1,2,3,4"})
    hd.get("/devices/quarantine/")  # the page after the action, which shows the Undo offer once
    assert queries() == small == 5


def test_actions_are_named_in_words_beside_their_code(world):
    from django.test import Client

    from devices import actions as device_actions
    from devices.audit import Actor
    from devices.models import AuditSource

    device_actions.allow_device(Actor(source=AuditSource.CLI), world.alice_box, "ALICEIPAD1")
    client = Client()
    client.force_login(world.org)
    page = client.get("/audit/").content.decode()
    assert 'Device allowed <code class="small d-block text-nowrap">device.allow</code>' in page
