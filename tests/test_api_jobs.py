"""Rule change jobs through the API: the visibility of /jobs/<id>/ (Organization
Management every job, anyone else the jobs they asked for), and their progress."""

import pytest

from devices import actions
from devices.audit import SYSTEM, Actor
from devices.models import AuditSource, DeviceAccessRule, RuleChangeJob
from tests import test_api_support as support

cast, client_for = support.cast, support.client_for  # the shared fixtures

JOBS = "/api/v1/rule-change-jobs"
RULE = {"characteristic": "DeviceType", "query_string": "iPhone", "access_level": "Allow"}


@pytest.fixture
def jobs(cast, django_capture_on_commit_callbacks):
    """A job of olivia (org) and one of henry (help desk, since demoted, say)."""
    users = cast["users"]
    made = {}
    for role in ("org", "helpdesk"):
        actor = Actor(user=users[role], source=AuditSource.UI)
        with django_capture_on_commit_callbacks(execute=False):  # the worker runs them later
            made[role] = actions.queue_rule_change(
                actor, RuleChangeJob.Kind.CREATE, values=RULE, devices_total=2
            )
    return made


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [job["id"] for job in response.json()["results"]]


def test_org_management_sees_every_job_the_others_their_own(cast, client_for, jobs):
    assert ids(client_for("org").get(JOBS)) == [jobs["helpdesk"].pk, jobs["org"].pk]
    assert ids(client_for("helpdesk").get(JOBS)) == [jobs["helpdesk"].pk]
    assert ids(client_for("alice").get(JOBS)) == []
    assert client_for("anon").get(JOBS).status_code == 401
    other = client_for("helpdesk").get(f"{JOBS}/{jobs['org'].pk}")
    assert other.status_code == 404
    assert set(other.json()) == {"message", "errors"}


def test_a_job_shows_its_progress_until_it_is_done(cast, client_for, jobs):
    org = client_for("org")
    job = jobs["org"]
    queued = org.get(f"{JOBS}/{job.pk}").json()
    assert queued["status"] == "queued" and queued["finished"] is False
    assert queued["kind"] == "create"
    assert queued["requested_by"] == "olivia"
    assert queued["devices_total"] == 2
    assert (
        queued["description"] == "Creating rule iPhone (DeviceType): Allow — 2 devices change state"
    )
    assert queued["params"] == RULE
    assert queued["elapsed_seconds"] >= 0
    assert queued["progress"] == 0
    actions.run_rule_change_job(job.pk)
    done = org.get(f"{JOBS}/{job.pk}").json()
    assert done["status"] == "done" and done["finished"] is True
    assert done["progress"] == 100
    assert done["finished_at"] and done["error"] == ""
    assert done["message"].startswith("Rule iPhone")
    assert DeviceAccessRule.objects.filter(query_string="iPhone").exists()
    # henry may no longer change rules: his job fails and says why.
    actions.run_rule_change_job(jobs["helpdesk"].pk)
    failed = client_for("helpdesk").get(f"{JOBS}/{jobs['helpdesk'].pk}").json()
    assert failed["status"] == "failed"
    assert failed["error"] == "henry may no longer change device access rules."


def test_the_list_filters_by_status_and_kind(cast, client_for, jobs):
    actions.run_rule_change_job(jobs["org"].pk)
    org = client_for("org")
    assert ids(org.get(JOBS, {"status": "done"})) == [jobs["org"].pk]
    assert ids(org.get(JOBS, {"status": "queued"})) == [jobs["helpdesk"].pk]
    assert ids(org.get(JOBS, {"kind": "delete"})) == []
    bad = org.get(JOBS, {"status": "stuck"})
    assert bad.status_code == 400
    assert set(bad.json()["errors"]) == {"status"}


# ---------------------------------------------------------------------------
# a big rule change through the API runs as a job, as on the rules page


@pytest.fixture
def low_limit(settings):
    settings.ECP_RULE_CHANGE_INLINE_LIMIT = 1  # the iPhone rule moves two devices
    return settings


def test_a_big_rule_change_is_queued_as_a_job(
    cast, client_for, low_limit, django_capture_on_commit_callbacks
):
    org = client_for("org")
    with django_capture_on_commit_callbacks(execute=True):
        response = org.post("/api/v1/rules", RULE, HTTP_X_REQUEST_ID="api-7")
    assert response.status_code == 202, response.content
    body = response.json()
    job = RuleChangeJob.objects.get()
    assert response["Location"] == f"/api/v1/rule-change-jobs/{job.pk}"
    assert body["job"]["id"] == job.pk and body["job"]["devices_total"] == 2
    assert body["message"] == f"2 devices change state: the change runs as job {job.pk}."
    done = org.get(f"{JOBS}/{job.pk}").json()  # Celery is eager here: it has run
    assert done["status"] == "done", done
    assert (job.source, job.request_id) == ("api", "api-7")
    rule = DeviceAccessRule.objects.get(query_string="iPhone")
    assert rule.created_by == cast["users"]["org"]
    with django_capture_on_commit_callbacks(execute=True):
        removed = org.delete(f"/api/v1/rules/{rule.pk}")
    assert removed.status_code == 202, removed.content
    assert not DeviceAccessRule.objects.exists()
    assert RuleChangeJob.objects.filter(kind="delete", status="done").count() == 1


def test_a_duplicate_is_409_however_big(cast, client_for, low_limit):
    actions.create_rule(SYSTEM, **RULE)
    response = client_for("org").post("/api/v1/rules", {**RULE, "query_string": "IPHONE"})
    assert response.status_code == 409, response.content
    assert not RuleChangeJob.objects.exists()


def test_a_small_rule_change_still_answers_at_once(cast, client_for):
    response = client_for("org").post("/api/v1/rules", RULE)
    assert response.status_code == 201, response.content
    assert response.json()["changed"] == 2
    assert not RuleChangeJob.objects.exists()
