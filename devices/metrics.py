"""GET /metrics: what the gate counts and what the database holds, for Prometheus.

Two kinds of series (docs/METRICS.md):

- the gate's requests and their duration, counted in the process that served
  them by GateMetricsMiddleware: an increment and an observation, no database
  work. Under gunicorn, PROMETHEUS_MULTIPROC_DIR makes prometheus-client keep
  them in files that every worker writes and /metrics sums (gunicorn.conf.py
  clears the directory at start and marks exited workers dead);
- gauges read from the database at scrape time (DatabaseCollector): a few
  indexed counts, so that they are the same whichever worker answers and
  whichever process (a Celery worker, the CLI) made the change.

Only addresses in ECP_METRICS_ALLOWED (default loopback), or a request with
`Authorization: Bearer <ECP_METRICS_TOKEN>`, may read it; anyone else gets 403.
"""

import hmac
import ipaddress
import os
import time
from functools import lru_cache

from django.conf import settings
from django.db.models import Count, Min
from django.http import HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from notifications import outbox

from .choices import AccessState
from .models import DirectorySync, MobileDevice

# --- the gate's series (kept per process; summed over processes under gunicorn) ----------

GATE_REQUESTS = Counter(
    "ecp_gate_requests",
    "Gate requests answered, by endpoint and decision (the access state the answer "
    "carried, or why there was none).",
    ["endpoint", "decision"],
)
GATE_DURATION = Histogram(
    "ecp_gate_request_duration_seconds",
    "Time from the request reaching ECP's middleware to its answer, by endpoint.",
    ["endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

# Path (lower-cased, without a trailing slash) -> the endpoint label.
GATE_ENDPOINTS = {
    "/microsoft-server-activesync": "activesync",
    "/eas/auth": "auth",
    "/eas/observe": "observe",
    "/eas/answer": "answer",  # nginx's error_page for a denied request: the phone's answer
}
DECISIONS = frozenset(AccessState.values)
# An answer that carried no access state: why not (the status says).
NO_DECISION = {
    200: "NoDecision",  # OPTIONS: the protocol versions and commands
    204: "NoDecision",
    400: "BadRequest",
    401: "Unauthenticated",  # also /eas/auth's answer to a throttled login
    403: "Denied",
    405: "BadRequest",
    413: "BadRequest",
    429: "Throttled",
    503: "Unavailable",
}


def _decision(response) -> str:
    state = response.headers.get("X-EAS-Access-State", "")
    if state in DECISIONS:
        return state
    status = response.status_code
    return NO_DECISION.get(status) or ("ServerError" if status >= 500 else "Other")


class _Series:
    """The labelled children, made once per label set: the hot path only looks them up."""

    def __init__(self):
        self.requests: dict[tuple[str, str], object] = {}
        self.durations: dict[str, object] = {}

    def record(self, endpoint: str, decision: str, seconds: float) -> None:
        counter = self.requests.get((endpoint, decision))
        if counter is None:
            counter = self.requests[endpoint, decision] = GATE_REQUESTS.labels(endpoint, decision)
        histogram = self.durations.get(endpoint)
        if histogram is None:
            histogram = self.durations[endpoint] = GATE_DURATION.labels(endpoint)
        counter.inc()
        histogram.observe(seconds)


_series = _Series()


class GateMetricsMiddleware:
    """Counts and times the gate's answers; first in MIDDLEWARE, so the time is the stack's.

    Any other path passes through untouched. Nothing here reads the database.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        endpoint = GATE_ENDPOINTS.get(request.path_info.lower().rstrip("/"))
        if endpoint is None:
            return self.get_response(request)
        started = time.perf_counter()
        response = self.get_response(request)
        _series.record(endpoint, _decision(response), time.perf_counter() - started)
        return response


# --- the database's series (read at scrape time) ---------------------------------------------


class DatabaseCollector:
    """Gauges computed from the database when /metrics is read: four indexed queries."""

    def collect(self):
        now = timezone.now()

        devices = GaugeMetricFamily(
            "ecp_devices", "Device partnerships by access state.", labels=["state"]
        )
        counts = dict.fromkeys(AccessState.values, 0)
        for row in MobileDevice.objects.order_by().values("access_state").annotate(n=Count("id")):
            counts[row["access_state"]] = row["n"]
        for state, n in counts.items():
            devices.add_metric([state], n)
        yield devices

        # The quarantine list's partial index (MobileDevice.Meta) answers this.
        oldest = MobileDevice.objects.filter(access_state=AccessState.QUARANTINED).aggregate(
            oldest=Min("state_changed_at")
        )["oldest"]
        yield GaugeMetricFamily(
            "ecp_quarantine_oldest_seconds",
            "How long the device longest in quarantine has waited (0: none waiting).",
            value=max((now - oldest).total_seconds(), 0.0) if oldest else 0.0,
        )

        pending = GaugeMetricFamily(
            "ecp_outbox_pending",
            "Notifications waiting to be delivered, by channel.",
            labels=["channel"],
        )
        for channel, n in outbox.backlog_by_channel().items():
            pending.add_metric([channel], n)
        yield pending
        yield CounterMetricFamily(
            "ecp_outbox_failed",
            "Notifications whose delivery gave up (a re-send from the sent-mail page "
            "takes one back, which Prometheus reads as a counter reset).",
            value=outbox.failed_count(),
        )

        synced = DirectorySync.objects.filter(pk=1).values_list("last_success_at", flat=True)
        synced = synced.first()
        if synced is not None or settings.ECP_LDAP_ENABLED:
            yield GaugeMetricFamily(
                "ecp_directory_sync_last_success_timestamp",
                "Unix time of the last successful directory sync (0: none yet).",
                value=synced.timestamp() if synced else 0.0,
            )


def _registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)  # every worker's files, summed
    else:
        registry.register(_ThisProcess())
    registry.register(DatabaseCollector())
    return registry


class _ThisProcess:
    """Without PROMETHEUS_MULTIPROC_DIR (runserver, tests): this process's own series."""

    def collect(self):
        yield from REGISTRY.collect()


# --- who may read it ---------------------------------------------------------------------


@lru_cache(maxsize=8)
def _networks(allowed: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(item, strict=False) for item in allowed)


def _from_allowed_address(request) -> bool:
    """The client's address is in ECP_METRICS_ALLOWED.

    Through a trusted proxy the client is X-Real-IP, and a proxied request
    (X-Real-IP or X-Forwarded-For present) that names no valid one is refused:
    the proxy's own loopback address must never stand in for the client's.
    """
    remote = request.META.get("REMOTE_ADDR", "")
    if remote in settings.ECP_TRUSTED_PROXIES and (
        "HTTP_X_REAL_IP" in request.META or "HTTP_X_FORWARDED_FOR" in request.META
    ):
        address = request.META.get("HTTP_X_REAL_IP", "").strip()
    else:
        address = remote
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(ip in network for network in _networks(tuple(settings.ECP_METRICS_ALLOWED)))


def _has_token(request) -> bool:
    token = settings.ECP_METRICS_TOKEN
    if not token:
        return False
    scheme, _, given = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


@require_GET
def metrics(request):
    """The Prometheus text format; 403 unless from an allowed address or with the token."""
    if not (_from_allowed_address(request) or _has_token(request)):
        return HttpResponse("forbidden\n", status=403, content_type="text/plain")
    # Text format 0.0.4, which every Prometheus version reads (our names need no escaping).
    body = generate_latest(_registry())
    response = HttpResponse(body, content_type=CONTENT_TYPE_PLAIN_0_0_4)
    response["Cache-Control"] = "no-store"
    return response
