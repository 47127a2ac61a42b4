"""The OpenAPI schema, its docs page, and a stateless schemathesis run against it.

Schemathesis loads /api/schema/ from the Django WSGI app in this process (the
pytest-django test database), generates requests for every operation, valid
and invalid, as an Organization Management token, and checks that none is
answered with a 500 or with a status code or body the schema does not
describe. Examples are bounded per operation so the run stays well under a
minute; half of the ids are those of objects that exist, so the detail and
write operations reach real rows, not only 404s.
"""

import re
import time
from collections import Counter

import hypothesis
import pytest
import schemathesis
from django.core.management import call_command
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api import tokens
from devices import actions
from devices.audit import SYSTEM, Actor
from devices.models import (
    AccessPolicy,
    AuditEvent,
    AuditSource,
    DeviceAccessRule,
    Mailbox,
    MobileDevice,
    OrgDeviceId,
    RuleChangeJob,
)
from ecp.wsgi import application
from notifications.models import Notification, Status
from tests import test_api_support as support

cast = support.cast  # the shared fixture

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES = {GenerationMode.POSITIVE: 15, GenerationMode.NEGATIVE: 10}
SETTINGS = hypothesis.settings(
    deadline=None,
    derandomize=True,
    database=None,
    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    suppress_health_check=list(HealthCheck),
    print_blob=False,
)


def test_the_schema_is_openapi_3_and_public(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/access-check" in schema["paths"]
    assert "/api/v1/devices/{id}/allow" in schema["paths"]
    assert schema["components"]["securitySchemes"]["tokenAuth"]["in"] == "header"


def test_the_schema_generates_without_a_warning(tmp_path):
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml")
    )


def test_the_docs_page_loads_its_assets_locally(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "/static/drf_spectacular_sidecar/" in page
    assert "cdn" not in page.lower()
    assert "https://" not in page
    # Ready for a Content-Security-Policy: no inline script, scripts from this site only.
    scripts = re.findall(r"<script\b[^>]*>", page)
    assert scripts
    assert all(re.search(r'src="/(static/|api/docs/\?script=)', s) for s in scripts)
    assert not re.search(r"<script\b[^>]*>\s*[^<\s]", page)
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200
    assert script["Content-Type"] == "application/javascript"


# The objects behind /api/v1/<resource>/{id}: half of the examples use their real ids.
MODELS = {
    "mailboxes": Mailbox,
    "devices": MobileDevice,
    "rules": DeviceAccessRule,
    "audit-events": AuditEvent,
    "notifications": Notification,
    "access-policies": AccessPolicy,
    "org-device-ids": OrgDeviceId,
    "rule-change-jobs": RuleChangeJob,
}


@pytest.fixture
def rich_data(cast):
    """More than the cast: rules, a failed and a sent mail, access policies, org-wide
    DeviceIds, a rule change job."""
    DeviceAccessRule.objects.create(
        characteristic="DeviceType", query_string="Android", access_level="Block"
    )
    DeviceAccessRule.objects.create(
        characteristic="DeviceModel", query_string="iPhone1*", access_level="Allow"
    )
    Notification.objects.filter(pk__in=Notification.objects.values("pk")[:1]).update(
        status=Status.FAILED, last_error="550 no such user"
    )
    Notification.objects.filter(recipient="bob@example.org").update(status=Status.SENT)
    actions.create_policy(SYSTEM, name="Sales", default_access_level="Allow", domains=["x.org"])
    actions.create_policy(SYSTEM, name="Interns", default_access_level="Block", priority=5)
    actions.add_org_device_id(SYSTEM, "Loan1", note="pool")
    actions.queue_rule_change(
        Actor(user=cast["users"]["org"], source=AuditSource.UI),
        RuleChangeJob.Kind.CREATE,
        values={"characteristic": "DeviceOS", "query_string": "iOS 9*", "access_level": "Block"},
    )
    return cast


@pytest.fixture
def keep_the_test_connection():
    """Call the WSGI app as Django's test client does: without closing the DB connection.

    A real request ends with close_old_connections(), which closes a connection
    that is inside a transaction: the test's own, on PostgreSQL.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def _has_inputs(operation) -> bool:
    return any(len(part) for part in (operation.path_parameters, operation.query, operation.body))


def _run(operation, headers, mode: GenerationMode, stats: dict, failures: list) -> None:
    if mode == GenerationMode.NEGATIVE and not _has_inputs(operation):
        stats["nothing to vary"] += 1  # GET /me: no parameter or body to make invalid
        return
    strategy = operation.as_strategy(generation_mode=mode)
    if "{id}" in operation.path:
        model = MODELS[operation.path.split("/")[3]]
        real = list(model.objects.values_list("pk", flat=True))  # earlier DELETEs may take all
        if real:
            real_ids = st.sampled_from(real).flatmap(
                lambda pk: operation.as_strategy(generation_mode=mode, path_parameters={"id": pk})
            )
            strategy = st.one_of(real_ids, strategy)

    @hypothesis.settings(SETTINGS, max_examples=EXAMPLES[mode])
    @hypothesis.given(case=strategy)
    def run(case):
        response = case.call(headers=headers)
        stats["examples"] += 1
        stats["statuses"][response.status_code] += 1
        case.validate_response(response, checks=CHECKS, headers=headers)

    try:
        run()
    except (Exception, BaseExceptionGroup) as exc:  # collect every failure, then fail once
        failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}): {exc}")


def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    rich_data, keep_the_test_connection, capsys
):
    _, key = tokens.create_token(rich_data["users"]["org"], "schemathesis")
    headers = {"Authorization": f"Token {key}"}
    schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
    operations = [result.ok() for result in schema.get_all_operations()]
    stats, failures = {"examples": 0, "statuses": Counter(), "nothing to vary": 0}, []
    started = time.monotonic()
    for operation in operations:
        for mode in EXAMPLES:
            _run(operation, headers, mode, stats, failures)
    elapsed = time.monotonic() - started
    with capsys.disabled():
        print(
            f"\nschemathesis: {len(operations)} operations, {stats['examples']} examples, "
            f"{elapsed:.1f} s, {len(failures)} failing; answers: "
            + ", ".join(f"{n}x{code}" for code, n in sorted(stats["statuses"].items()))
        )
    assert len(operations) >= 25
    assert stats["statuses"][200] > 50  # the run reached real objects, not only errors
    assert not failures, "\n\n".join(failures)  # (its time is printed, not asserted)
