"""GET /metrics: who may read it, what it says, and what the gate pays for it.

The multiprocess mode under a real gunicorn is tests/integration/test_metrics_gunicorn.py;
here the series live in this process's registry (no PROMETHEUS_MULTIPROC_DIR).
"""

import base64
import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from django.core.cache import cache
from django.http import HttpResponse
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from devices import actions, evaluation, metrics
from devices.actions.directory import DIRECTORY, sync_directory
from devices.audit import SYSTEM
from devices.directory.entries import Entry
from devices.models import AccessState, DirectorySync, MobileDevice
from ecp.env import ConfigError, envnetworks
from notifications.models import Notification, Status

REPO = Path(__file__).resolve().parents[1]
GATE = "/Microsoft-Server-ActiveSync"
TOKEN = "metrics-token-" + "k" * 32
OUTSIDE = "192.0.2.7"


@pytest.fixture(autouse=True)
def _fresh_gate(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()
    evaluation._compiled = None


@pytest.fixture
def alice(db):
    return actions.create_mailbox(
        SYSTEM, alias="alice", email="alice@contoso.com", password="alice-secret"
    ).obj


def basic(login, password):
    return "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()


def sync(password="alice-secret", device_id="ALICEPHONE1"):
    return Client().post(
        GATE,
        b"",
        content_type="application/vnd.ms-sync.wbxml",
        headers={
            "Authorization": basic("alice", password),
            "MS-ASProtocolVersion": "14.1",
            "User-Agent": "Apple-iPhone14C2/2104.61",
        },
        QUERY_STRING=f"Cmd=FolderSync&User=alice&DeviceId={device_id}&DeviceType=iPhone",
    )


def get(**extra):
    return Client().get("/metrics", **extra)


def scrape(**extra) -> dict:
    """{(sample name, labels): value}, read with prometheus-client's own parser."""
    response = get(**extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


# --- who may read it -------------------------------------------------------------------


def test_it_answers_loopback_by_default(db):
    assert get().status_code == 200
    assert get(REMOTE_ADDR="::1").status_code == 200
    assert get(REMOTE_ADDR="127.0.0.2").status_code == 200


def test_it_refuses_other_addresses(db):
    response = get(REMOTE_ADDR=OUTSIDE)
    assert response.status_code == 403
    assert b"ecp_" not in response.content


def test_the_allowed_networks_are_a_setting(db, settings):
    settings.ECP_METRICS_ALLOWED = ["192.0.2.0/24", "2001:db8::5"]
    assert get(REMOTE_ADDR=OUTSIDE).status_code == 200
    assert get(REMOTE_ADDR="2001:db8::5").status_code == 200
    assert get(REMOTE_ADDR="198.51.100.1").status_code == 403
    assert get().status_code == 403  # loopback is only the default


def test_none_allowed_means_only_the_token(db, settings):
    settings.ECP_METRICS_ALLOWED = []
    settings.ECP_METRICS_TOKEN = TOKEN
    assert get().status_code == 403
    assert get(HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200


def test_a_bearer_token_opens_it_from_anywhere(db, settings):
    settings.ECP_METRICS_TOKEN = TOKEN
    assert get(REMOTE_ADDR=OUTSIDE, HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200
    assert get(REMOTE_ADDR=OUTSIDE, HTTP_AUTHORIZATION=f"bearer {TOKEN}").status_code == 200


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer wrong",
        f"Bearer {TOKEN}x",
        f"Bearer {TOKEN[:-1]}",
        "Bearer ",
        f"Basic {TOKEN}",
        TOKEN,
        basic("metrics", TOKEN),
    ],
)
def test_a_wrong_token_is_403(db, settings, authorization):
    settings.ECP_METRICS_TOKEN = TOKEN
    assert get(REMOTE_ADDR=OUTSIDE, HTTP_AUTHORIZATION=authorization).status_code == 403


def test_no_token_works_when_none_is_set(db, settings):
    settings.ECP_METRICS_TOKEN = ""
    assert get(REMOTE_ADDR=OUTSIDE, HTTP_AUTHORIZATION="Bearer ").status_code == 403
    assert get(REMOTE_ADDR=OUTSIDE, HTTP_AUTHORIZATION="Bearer").status_code == 403


@pytest.mark.parametrize(
    ("remote", "headers", "status"),
    [
        ("127.0.0.1", {"HTTP_X_REAL_IP": OUTSIDE}, 403),  # nginx in front: the client decides
        ("127.0.0.1", {"HTTP_X_REAL_IP": "127.0.0.1"}, 200),  # a scrape from nginx's own host
        ("127.0.0.1", {"HTTP_X_FORWARDED_FOR": OUTSIDE}, 403),  # proxied, client unnamed
        ("127.0.0.1", {"HTTP_X_REAL_IP": "junk", "HTTP_X_FORWARDED_FOR": OUTSIDE}, 403),
        (OUTSIDE, {"HTTP_X_REAL_IP": "127.0.0.1"}, 403),  # not a trusted proxy: no spoofing
    ],
)
def test_behind_a_trusted_proxy_the_client_address_counts(db, remote, headers, status):
    assert get(REMOTE_ADDR=remote, **headers).status_code == status


def test_it_answers_get_only(db):
    assert Client().post("/metrics").status_code == 405


def test_it_is_not_redirected_to_https(db, settings):
    settings.SECURE_SSL_REDIRECT = True  # a scraper on loopback reads plain http
    assert get().status_code == 200
    assert Client().get("/devices/").status_code == 301  # the panel still is


def test_the_allowed_networks_are_checked_at_start_up(monkeypatch):
    monkeypatch.setenv("ECP_METRICS_ALLOWED", "10.0.0.0/8, ::1,192.0.2.7")
    assert envnetworks("ECP_METRICS_ALLOWED", []) == ["10.0.0.0/8", "::1", "192.0.2.7"]
    monkeypatch.setenv("ECP_METRICS_ALLOWED", "none")
    assert envnetworks("ECP_METRICS_ALLOWED", ["127.0.0.0/8"]) == []
    for bad in ("10.0.0.0/33", "localhost", "10.0.0.1,prometheus.example.org"):
        monkeypatch.setenv("ECP_METRICS_ALLOWED", bad)
        with pytest.raises(ConfigError, match="ECP_METRICS_ALLOWED"):
            envnetworks("ECP_METRICS_ALLOWED", [])


# --- the gate's series ---------------------------------------------------------------------


def test_gate_answers_are_counted_by_endpoint_and_decision(alice):
    before = scrape()
    assert sync().status_code == 200  # first contact: Allowed (the org default)
    assert sync().status_code == 200
    assert sync(password="wrong").status_code == 401
    assert Client().options(GATE).status_code == 200
    assert Client().get(GATE).status_code == 405
    auth = Client().get(
        "/eas/auth",
        headers={
            "Authorization": basic("alice", "alice-secret"),
            "User-Agent": "Apple-iPhone14C2/2104.61",
            "X-Original-URI": f"{GATE}?Cmd=Sync&User=alice&DeviceId=ALICEPHONE1&DeviceType=iPhone",
            "X-Original-Method": "POST",
        },
    )
    assert auth.status_code == 200
    after = scrape()

    def delta(name, **labels):
        return (value(after, name, **labels) or 0) - (value(before, name, **labels) or 0)

    requests = "ecp_gate_requests_total"
    assert delta(requests, endpoint="activesync", decision="Allowed") == 2
    assert delta(requests, endpoint="activesync", decision="Unauthenticated") == 1
    assert delta(requests, endpoint="activesync", decision="NoDecision") == 1
    assert delta(requests, endpoint="activesync", decision="BadRequest") == 1
    assert delta(requests, endpoint="auth", decision="Allowed") == 1
    durations = "ecp_gate_request_duration_seconds_count"
    assert delta(durations, endpoint="activesync") == 5
    assert delta(durations, endpoint="auth") == 1
    assert delta("ecp_gate_request_duration_seconds_bucket", endpoint="auth", le="+Inf") == 1


def test_denied_devices_are_counted_by_their_state(alice):
    sync(device_id="BLOCKME")
    actions.block_device(SYSTEM, alice, "BLOCKME")
    before = value(scrape(), "ecp_gate_requests_total", endpoint="activesync", decision="Blocked")
    sync(device_id="BLOCKME")  # 403, or Status 129 in a 200 (devices.gate.answers)
    after = value(scrape(), "ecp_gate_requests_total", endpoint="activesync", decision="Blocked")
    assert after - (before or 0) == 1


def test_nginx_asking_for_the_phones_answer_is_the_endpoint_answer(alice):
    sync(device_id="BLOCKME")
    actions.block_device(SYSTEM, alice, "BLOCKME")
    before = scrape()
    Client().post(
        "/eas/answer",
        b"",
        content_type="application/vnd.ms-sync.wbxml",
        headers={
            "Authorization": basic("alice", "alice-secret"),
            "MS-ASProtocolVersion": "14.1",
            "User-Agent": "Apple-iPhone14C2/2104.61",
            "X-Original-URI": f"{GATE}?Cmd=Sync&User=alice&DeviceId=BLOCKME&DeviceType=iPhone",
            "X-Original-Method": "POST",
        },
    )
    after = scrape()
    labels = {"endpoint": "answer", "decision": "Blocked"}
    count = value(after, "ecp_gate_requests_total", **labels)
    assert count - (value(before, "ecp_gate_requests_total", **labels) or 0) == 1


def test_other_paths_are_not_counted(alice):
    before = scrape()
    Client().get("/healthz")
    Client().get("/metrics")
    after = scrape()
    gate = {k: v for k, v in after.items() if k[0].startswith("ecp_gate_")}
    assert gate == {k: v for k, v in before.items() if k[0].startswith("ecp_gate_")}


@pytest.mark.usefixtures("uncached_gate")  # the uncached path: decisions.py
def test_counting_adds_no_query_to_a_known_device(alice, django_assert_num_queries):
    sync()
    with django_assert_num_queries(1):  # login, mailbox and device in one, as without metrics
        assert sync().status_code == 200


@pytest.mark.parametrize(
    ("status", "state", "decision"),
    [
        (200, "Quarantined", "Quarantined"),
        (403, "DeviceDiscovery", "DeviceDiscovery"),
        (403, "Something a device wrote", "Denied"),  # never a label we did not choose
        (429, "", "Throttled"),
        (503, "", "Unavailable"),
        (500, "", "ServerError"),
        (302, "", "Other"),
    ],
)
def test_the_decision_label_is_one_of_a_few(status, state, decision):
    response = HttpResponse(status=status)
    if state:
        response["X-EAS-Access-State"] = state
    assert metrics._decision(response) == decision


# --- the database's series -----------------------------------------------------------------


def _device(mailbox, device_id, state, since=None):
    return MobileDevice.objects.create(
        mailbox=mailbox,
        device_id=device_id,
        access_state=state,
        state_changed_at=since or timezone.now(),
    )


def _mail(n, status):
    return Notification.objects.create(
        kind="user-quarantined", recipient=f"u{n}@contoso.com", dedupe_key=f"k{n}", status=status
    )


def test_devices_and_quarantine_age_come_from_the_database(alice, django_assert_max_num_queries):
    now = timezone.now()
    _device(alice, "A1", AccessState.ALLOWED)
    _device(alice, "A2", AccessState.ALLOWED)
    _device(alice, "B1", AccessState.BLOCKED)
    _device(alice, "Q1", AccessState.QUARANTINED, now - timedelta(days=2))
    _device(alice, "Q2", AccessState.QUARANTINED, now - timedelta(hours=1))
    with django_assert_max_num_queries(5):
        samples = scrape()
    assert value(samples, "ecp_devices", state="Allowed") == 2
    assert value(samples, "ecp_devices", state="Blocked") == 1
    assert value(samples, "ecp_devices", state="Quarantined") == 2
    assert value(samples, "ecp_devices", state="DeviceDiscovery") == 0
    assert value(samples, "ecp_devices", state="Unknown") == 0
    oldest = value(samples, "ecp_quarantine_oldest_seconds")
    assert 2 * 86400 <= oldest < 2 * 86400 + 600


def test_no_quarantine_is_zero_seconds(db):
    assert value(scrape(), "ecp_quarantine_oldest_seconds") == 0


def test_the_outbox_backlog_and_failures(db):
    for n, status in enumerate(
        [Status.PENDING, Status.PENDING, Status.SENDING, Status.HELD, Status.SENT]
        + [Status.FAILED] * 3
    ):
        _mail(n, status)
    samples = scrape()
    assert value(samples, "ecp_outbox_pending", channel="mail") == 3  # held is not a backlog
    assert value(samples, "ecp_outbox_failed_total") == 3


def test_the_last_successful_directory_sync(db, settings):
    settings.ECP_LDAP_ENABLED = False
    name = "ecp_directory_sync_last_success_timestamp"
    assert value(scrape(), name) is None  # no directory: no series to alert on
    settings.ECP_LDAP_ENABLED = True
    assert value(scrape(), name) == 0  # a directory that never synced

    entry = Entry(dn="uid=jdoe,dc=example,dc=org", username="jdoe", mail="jdoe@example.org",
                  display_name="J. Doe")  # fmt: skip
    sync_directory(DIRECTORY, [entry], dry_run=True)
    assert value(scrape(), name) == 0  # a dry run is no sync
    started = timezone.now()
    sync_directory(DIRECTORY, [entry])
    synced = DirectorySync.objects.get().last_success_at
    assert synced >= started
    assert value(scrape(), name) == pytest.approx(synced.timestamp())
    settings.ECP_LDAP_ENABLED = False
    assert value(scrape(), name) == pytest.approx(synced.timestamp())


# --- the shipped dashboard and alert rules read only series that exist --------------------


def _expressions() -> dict[str, list[str]]:
    dashboard = json.loads((REPO / "deploy/grafana/ecp.json").read_text())
    rules = yaml.safe_load((REPO / "deploy/prometheus/ecp-alerts.yml").read_text())
    return {
        "dashboard": [t["expr"] for p in dashboard["panels"] for t in p["targets"]],
        "alerts": [rule["expr"] for group in rules["groups"] for rule in group["rules"]],
    }


def test_the_dashboard_and_the_alert_rules_name_only_exported_series(alice, settings):
    settings.ECP_LDAP_ENABLED = True
    sync()  # so that the gate's series have samples
    exported = {name for name, _ in scrape()}
    for where, expressions in _expressions().items():
        assert expressions, where
        for expression in expressions:
            named = set(re.findall(r"\becp_[a-z_]+", expression))
            assert named, (where, expression)
            assert named <= exported, (where, expression, sorted(named - exported))


def test_the_alert_rules_cover_what_the_issue_asks():
    alerts = " ".join(_expressions()["alerts"])
    assert "ecp_quarantine_oldest_seconds) > 86400" in alerts  # waiting more than a day
    assert "ecp_outbox_pending" in alerts  # a backlog
    assert "histogram_quantile(0.99" in alerts  # the gate's p99
