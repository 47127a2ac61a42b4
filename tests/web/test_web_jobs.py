"""Rule changes that move many devices run as a job with a progress page (issue 8, item 4).

Celery runs eagerly here (no broker): the task runs when the request's
transaction commits, so the job has finished by the time the test looks.
"""

import html

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from devices import actions
from devices.models import (
    AccessState,
    AuditEvent,
    AuditSource,
    DeviceAccessRule,
    DeviceStateChange,
    RuleChangeJob,
)

from .conftest import SETUP, state_of

IPHONE = {
    "characteristic": "DeviceType",
    "query_string": "iPhone",
    "access_level": "Allow",
    "previewed": "DeviceType\x1fiPhone\x1fAllow",
    "save": "1",
}


@pytest.fixture
def low_limit(settings):
    # The iPhone rule releases two devices: more than one goes through a job.
    settings.ECP_RULE_CHANGE_INLINE_LIMIT = 1
    return settings


@pytest.fixture
def admin(world):
    client = Client()
    client.force_login(world.org)
    return client


def _post(client, url, data, capture):
    with capture(execute=True):
        return client.post(url, data, REMOTE_ADDR="127.0.0.1", HTTP_X_REQUEST_ID="req-42")


def _text(response) -> str:
    return html.unescape(response.content.decode())


def test_it_runs_a_big_rule_change_as_a_job(
    world, admin, low_limit, django_capture_on_commit_callbacks
):
    response = _post(admin, "/rules/new", IPHONE, django_capture_on_commit_callbacks)
    job = RuleChangeJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/jobs/{job.pk}/"
    assert job.kind == RuleChangeJob.Kind.CREATE
    assert job.status == RuleChangeJob.Status.DONE
    assert job.devices_total == 2
    assert job.user == world.org and job.user_name == "orgadmin"
    assert job.started_at and job.finished_at and not job.error
    assert state_of(world.alice_phone) == state_of(world.carol_phone) == AccessState.ALLOWED
    rule = DeviceAccessRule.objects.get(query_key="iphone")
    assert rule.created_by == world.org

    event = AuditEvent.objects.get(action="rule.create", object_id=str(rule.pk))
    assert (event.actor_id, event.actor_name, event.source) == (world.org.pk, "orgadmin", "ui")
    assert event.request_id == "req-42"
    assert job.message == event.message
    assert "2 devices from quarantined to allowed" in job.message
    assert DeviceStateChange.objects.filter(event=event).count() == 2

    page = admin.get(f"/jobs/{job.pk}/")
    text = _text(page)
    assert "Creating rule iPhone (DeviceType): Allow — 2 devices change state" in text
    assert "Done" in text and job.message in text
    assert 'href="/rules/"' in text
    assert 'http-equiv="refresh"' not in text  # finished: nothing more to wait for


def test_a_change_within_the_limit_stays_inline(world, admin, django_capture_on_commit_callbacks):
    response = _post(admin, "/rules/new", IPHONE, django_capture_on_commit_callbacks)
    assert response["Location"] == "/rules/"
    assert not RuleChangeJob.objects.exists()
    assert state_of(world.alice_phone) == AccessState.ALLOWED
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        'Created the rule "iPhone" on DeviceType (Allow): it releases 2 quarantined devices.'
    ]


def test_edit_and_delete_go_through_a_job_too(
    world, admin, low_limit, django_capture_on_commit_callbacks
):
    rule = actions.create_rule(
        SETUP, characteristic="DeviceType", query_string="iPhone", access_level="Block"
    ).obj
    data = {**IPHONE, "previewed": "DeviceType\x1fiPhone\x1fAllow"}
    response = _post(admin, f"/rules/{rule.pk}/edit", data, django_capture_on_commit_callbacks)
    job = RuleChangeJob.objects.get()
    assert response["Location"] == f"/jobs/{job.pk}/"
    assert (job.kind, job.status, job.params["rule_id"]) == ("update", "done", rule.pk)
    assert state_of(world.alice_phone) == AccessState.ALLOWED
    assert "Changing rule iPhone (DeviceType): Block to iPhone (DeviceType): Allow" in _text(
        admin.get(f"/jobs/{job.pk}/")
    )

    response = _post(admin, f"/rules/{rule.pk}/delete", {}, django_capture_on_commit_callbacks)
    job = RuleChangeJob.objects.latest("id")
    assert response["Location"] == f"/jobs/{job.pk}/"
    assert (job.kind, job.status) == ("delete", "done")
    assert not DeviceAccessRule.objects.filter(pk=rule.pk).exists()
    assert state_of(world.alice_phone) == AccessState.QUARANTINED
    event = AuditEvent.objects.get(action="rule.delete", object_id=str(rule.pk))
    assert (event.actor_name, event.source) == ("orgadmin", AuditSource.UI)


def test_a_failing_job_records_the_error_and_changes_nothing(
    world, admin, low_limit, django_capture_on_commit_callbacks, monkeypatch
):
    def broken(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr("devices.actions.rules.reevaluate", broken)
    events = AuditEvent.objects.count()
    response = _post(admin, "/rules/new", IPHONE, django_capture_on_commit_callbacks)
    job = RuleChangeJob.objects.get()
    assert response["Location"] == f"/jobs/{job.pk}/"
    assert job.status == RuleChangeJob.Status.FAILED
    assert job.error == "Unexpected error (RuntimeError); nothing was changed."
    assert job.finished_at and not job.message
    assert not DeviceAccessRule.objects.filter(query_key="iphone").exists()
    assert AuditEvent.objects.count() == events
    assert state_of(world.alice_phone) == AccessState.QUARANTINED
    text = _text(admin.get(f"/jobs/{job.pk}/"))
    assert "Failed" in text and "Nothing was changed: Unexpected error" in text


def test_a_job_whose_rule_is_gone_fails_with_the_reason(world, admin):
    job = RuleChangeJob.objects.create(
        kind="delete",
        params={"rule_id": world.rule.pk, "rule": str(world.rule)},
        user=world.org,
        user_name="orgadmin",
        source="ui",
    )
    actions.delete_rule(SETUP, world.rule)
    job = actions.run_rule_change_job(job.pk)
    assert job.status == "failed"
    assert job.error == "The rule SM-G9* (DeviceModel): Block no longer exists."
    # A second delivery of the task finds the job taken and does nothing.
    assert actions.run_rule_change_job(job.pk) is None


def test_a_job_runs_only_while_its_creator_may_change_rules(world):
    job = RuleChangeJob.objects.create(
        kind="create",
        params={"characteristic": "DeviceType", "query_string": "iPhone", "access_level": "Allow"},
        user=world.helpdesk,
        user_name="hd",
        source="ui",
    )
    job = actions.run_rule_change_job(job.pk)
    assert job.status == "failed"
    assert job.error == "hd may no longer change device access rules."
    assert not DeviceAccessRule.objects.filter(query_key="iphone").exists()


def test_the_json_endpoint(world, admin):
    job = RuleChangeJob.objects.create(
        kind="create",
        params={"characteristic": "DeviceType", "query_string": "iPhone", "access_level": "Allow"},
        user=world.org,
        user_name="orgadmin",
        source="ui",
        devices_total=100000,
    )
    response = admin.get(f"/jobs/{job.pk}.json")
    assert response.status_code == 200
    assert response.json() == {
        "status": "queued",
        "progress": 0,
        "message": "",
        "error": "",
        "elapsed": 0,
    }

    page = _text(admin.get(f"/jobs/{job.pk}/"))
    assert "Creating rule iPhone (DeviceType): Allow — 100,000 devices change state" in page
    assert f'data-job-status="/jobs/{job.pk}.json"' in page
    assert '<noscript><meta http-equiv="refresh" content="3"></noscript>' in page
    # The Content-Security-Policy allows no inline script or style: ecp.js does the polling.
    assert "style=" not in page and "<script>" not in page

    job = actions.run_rule_change_job(job.pk)
    data = admin.get(f"/jobs/{job.pk}.json").json()
    assert data["status"] == "done"
    assert data["message"] == job.message and "created" in data["message"]
    assert data["error"] == "" and isinstance(data["elapsed"], int)
    assert 'data-job-status=""' in _text(admin.get(f"/jobs/{job.pk}/"))


def test_a_job_is_seen_by_its_creator_and_org_management_only(world):
    job = RuleChangeJob.objects.create(
        kind="create", params={}, user=world.alice, user_name="alice", source="ui"
    )
    for user, status in (
        (world.alice, 200),
        (world.bob, 404),
        (world.helpdesk, 404),
        (world.org, 200),
    ):
        client = Client()
        client.force_login(user)
        assert client.get(f"/jobs/{job.pk}/").status_code == status, user
        assert client.get(f"/jobs/{job.pk}.json").status_code == status, user
    client = Client()
    client.force_login(world.org)
    assert client.get("/jobs/999999/").status_code == 404
    assert client.post(f"/jobs/{job.pk}/").status_code == 405


def test_a_job_the_queue_refuses_is_failed_not_left_queued(
    world, admin, low_limit, django_capture_on_commit_callbacks, monkeypatch
):
    def refused(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr("devices.tasks.run_rule_change.delay", refused)
    _post(admin, "/rules/new", IPHONE, django_capture_on_commit_callbacks)
    job = RuleChangeJob.objects.get()
    assert job.status == RuleChangeJob.Status.FAILED
    assert job.error == "The task queue did not answer; nothing was changed."
    assert not DeviceAccessRule.objects.filter(query_key="iphone").exists()
