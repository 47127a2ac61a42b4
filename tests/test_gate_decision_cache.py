"""The gate's decision cache (devices/gate/decisions.py, issue 19).

A known device's answer is kept in the process at most ECP_DECISION_CACHE_SECONDS
after the database was read for it. A change made in this process ends it at
once; one made in another process reaches this one through the version number
in Redis within a version check, and without Redis within the TTL. The clock is
the module's, replaced here: no test waits.
"""

import contextlib
import os
import select
import socket
from datetime import timedelta
from unittest import mock

import psycopg
import pytest
import redis
from django.contrib.auth import get_user_model
from django.core.cache import cache, caches
from django.db import OperationalError, connection
from django.utils import timezone

from devices import actions
from devices.gate import decisions
from devices.models import AccessState, AuditEvent, MobileDevice, OrgSettings
from tests.conftest import need_service
from tests.test_gate_recording import ADMIN, eas, eas_auth, plain

REDIS = os.environ.get("CELERY_TEST_BROKER_URL", "redis://127.0.0.1:6379/15")
TTL = 5


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    def advance(self, seconds: float):
        self.now += seconds


@pytest.fixture
def alice(db):
    return actions.create_mailbox(
        ADMIN, alias="alice", email="alice@contoso.com", password="alice-secret"
    ).obj


@pytest.fixture(autouse=True)
def _fresh(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.ECP_DECISION_CACHE_SECONDS = TTL
    cache.clear()
    yield
    with contextlib.suppress(redis.RedisError):  # the test may have pointed it at no server
        cache.clear()


@pytest.fixture(autouse=True)
def clock():
    """Autouse: in place before the fixtures that create the mailbox (a saved login
    is a change, whose quiet second is on this clock)."""
    fake = Clock()
    with mock.patch.object(decisions, "clock", fake):
        yield fake


def decision(response):
    """(passes, state): a Blocked phone on EAS 14.1 gets HTTP 200 with Status 129."""
    state = response.headers.get("X-EAS-Access-State")
    return (response.status_code == 200 and state == "Allowed"), state


def allowed_and_cached(mailbox, clock):
    actions.allow_device(ADMIN, mailbox, "ALICEPHONE1")
    clock.advance(decisions.QUIET_SECONDS)  # the Allow's own quiet second
    assert decision(eas()) == (True, "Allowed")  # read from the database, kept
    return MobileDevice.objects.get()


def block_elsewhere(mailbox, *, publishes: bool):
    """Block the device as another process would: this process's map is not touched;
    the version in the shared cache moves only if `publishes` (Redis is shared)."""
    with mock.patch.object(decisions, "changed"):
        actions.block_device(ADMIN, mailbox, "ALICEPHONE1")
    assert MobileDevice.objects.get().access_state == AccessState.BLOCKED
    # What the other process's decisions._publish does, when it can:
    if publishes and not cache.add(decisions.VERSION_KEY, 1, timeout=None):
        cache.incr(decisions.VERSION_KEY)


@pytest.fixture
def shared_redis(settings):
    client = redis.Redis.from_url(REDIS, socket_connect_timeout=1)
    try:
        available = bool(client.ping())
    except redis.RedisError:
        available = False
    need_service("Redis", available, f"at {REDIS} (CELERY_TEST_BROKER_URL)")
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS,
            "KEY_PREFIX": "ecp-test-decision-cache",
        }
    }
    caches["default"].clear()
    yield
    caches["default"].clear()


# --- what is kept ----------------------------------------------------------------------


def test_a_known_device_is_answered_without_a_query(alice, clock, django_assert_num_queries):
    allowed_and_cached(alice, clock)
    eas_auth()
    with django_assert_num_queries(0):
        assert decision(eas()) == (True, "Allowed")
    with django_assert_num_queries(0):
        assert decision(eas_auth()) == (True, "Allowed")


def test_a_device_in_discovery_is_not_kept(alice, clock, django_assert_num_queries):
    actions.set_org_settings(ADMIN, default_access_level="Quarantine", discovery_window_minutes=15)
    clock.advance(decisions.QUIET_SECONDS)
    assert decision(eas()) == (False, "DeviceDiscovery")
    with django_assert_num_queries(2):  # the lookup and the org settings, for the window
        assert decision(eas()) == (False, "DeviceDiscovery")


def test_the_cache_off_reads_every_request(alice, clock, settings, django_assert_num_queries):
    allowed_and_cached(alice, clock)
    settings.ECP_DECISION_CACHE_SECONDS = 0
    with django_assert_num_queries(1):
        assert decision(eas()) == (True, "Allowed")
    block_elsewhere(alice, publishes=False)
    assert decision(eas()) == (False, "Blocked")


def test_a_new_user_agent_is_recorded_not_answered_from_the_cache(alice, clock):
    allowed_and_cached(alice, clock)
    assert decision(eas(user_agent="Apple-iPhone14C2/2105.1")) == (True, "Allowed")
    assert MobileDevice.objects.get().user_agent == "Apple-iPhone14C2/2105.1"
    assert AuditEvent.objects.filter(action="device.update").count() == 1


def test_a_cached_device_writes_last_seen_once_a_minute(alice, clock, django_assert_num_queries):
    device = allowed_and_cached(alice, clock)
    later = device.last_seen + timedelta(seconds=61)
    with mock.patch("django.utils.timezone.now", return_value=later):
        with django_assert_num_queries(1):  # the UPDATE of last_seen, no lookup
            assert decision(eas()) == (True, "Allowed")
        with django_assert_num_queries(0):  # and not again for the next minute
            assert decision(eas()) == (True, "Allowed")
    assert MobileDevice.objects.get().last_seen == later


# --- a Block takes effect within the bound ----------------------------------------------


def test_a_block_in_this_process_takes_effect_at_once(alice, clock):
    allowed_and_cached(alice, clock)
    actions.block_device(ADMIN, alice, "ALICEPHONE1")
    assert decision(eas()) == (False, "Blocked")
    assert decision(eas_auth()) == (False, "Blocked")


def test_a_block_in_another_process_takes_effect_within_the_ttl_without_redis(alice, clock):
    allowed_and_cached(alice, clock)
    block_elsewhere(alice, publishes=False)
    clock.advance(TTL - 0.1)
    assert decision(eas()) == (True, "Allowed")  # still the answer read before the Block
    clock.advance(0.1)
    assert decision(eas()) == (False, "Blocked")
    assert decision(eas_auth()) == (False, "Blocked")


def test_a_block_in_another_process_arrives_through_redis_within_a_version_check(
    alice, clock, shared_redis
):
    allowed_and_cached(alice, clock)
    clock.advance(decisions.VERSION_CHECK_SECONDS)
    assert decision(eas()) == (True, "Allowed")  # the version was read: no change yet
    block_elsewhere(alice, publishes=True)
    assert decision(eas()) == (True, "Allowed")  # the version is read again only later
    clock.advance(decisions.VERSION_CHECK_SECONDS)
    assert decision(eas()) == (False, "Blocked")


def test_with_redis_down_the_ttl_alone_bounds_a_decision(alice, clock, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    allowed_and_cached(alice, clock)
    clock.advance(1)
    assert decision(eas()) == (True, "Allowed")
    block_elsewhere(alice, publishes=False)  # it could not publish: Redis is down
    clock.advance(TTL - 1 - 0.1)
    assert decision(eas()) == (True, "Allowed")
    clock.advance(0.1)
    assert decision(eas()) == (False, "Blocked")


def test_what_is_read_just_after_a_change_is_not_kept(alice, clock, django_assert_num_queries):
    """A change is published before its transaction commits: for a quiet second
    what is read may be the state before it, so nothing is kept."""
    actions.allow_device(ADMIN, alice, "ALICEPHONE1")
    assert decision(eas()) == (True, "Allowed")
    with django_assert_num_queries(1):
        assert decision(eas()) == (True, "Allowed")
    clock.advance(decisions.QUIET_SECONDS)
    assert decision(eas()) == (True, "Allowed")
    with django_assert_num_queries(0):
        assert decision(eas()) == (True, "Allowed")


# --- the organisation's settings, as first contacts read them -------------------------


def first_contact(n: int):
    return decision(eas(plain(device_id=f"NEWPHONE{n}")))


@pytest.fixture
def default_allow(alice, clock):
    actions.set_org_settings(ADMIN, default_access_level="Allow", discovery_window_minutes=0)
    clock.advance(decisions.QUIET_SECONDS)
    assert first_contact(1) == (True, "Allowed")  # the settings read, and kept


def test_a_default_changed_in_this_process_decides_the_next_first_contact(default_allow):
    actions.set_org_settings(ADMIN, default_access_level="Block")
    assert first_contact(2) == (False, "Blocked")


def test_saved_org_settings_decide_the_next_first_contact(default_allow):
    org = OrgSettings.load()
    org.default_access_level = "Block"
    org.save()  # as Django's admin would: no audit, but a save
    assert first_contact(2) == (False, "Blocked")


def test_a_default_changed_elsewhere_reaches_first_contacts_within_the_ttl(default_allow, clock):
    OrgSettings.objects.filter(pk=1).update(default_access_level="Block")  # no audit, no save
    clock.advance(TTL - 0.1)
    assert first_contact(2) == (True, "Allowed")  # the settings read before the change
    clock.advance(0.1)
    assert first_contact(3) == (False, "Blocked")


def test_a_default_changed_elsewhere_arrives_through_redis_within_a_version_check(
    alice, clock, shared_redis
):
    actions.set_org_settings(ADMIN, default_access_level="Allow", discovery_window_minutes=0)
    clock.advance(decisions.QUIET_SECONDS)
    assert first_contact(1) == (True, "Allowed")
    clock.advance(decisions.VERSION_CHECK_SECONDS)
    assert first_contact(2) == (True, "Allowed")  # the version was read: no change yet
    with mock.patch.object(decisions, "changed"):  # another process's change ...
        actions.set_org_settings(ADMIN, default_access_level="Block")
    cache.incr(decisions.VERSION_KEY)  # ... published through Redis
    assert first_contact(3) == (True, "Allowed")  # the version is read again only later
    clock.advance(decisions.VERSION_CHECK_SECONDS)
    assert first_contact(4) == (False, "Blocked")


# --- the login -------------------------------------------------------------------------


def test_a_saved_password_change_takes_effect_at_once(alice, clock):
    allowed_and_cached(alice, clock)
    user = get_user_model().objects.get(username="alice")
    user.set_password("another-secret")
    user.save()
    assert eas().status_code == 401


def test_a_login_deactivated_without_a_save_is_refused_within_the_ttl(alice, clock):
    allowed_and_cached(alice, clock)
    get_user_model().objects.filter(username="alice").update(is_active=False)  # no signal
    clock.advance(TTL - 0.1)
    assert eas().status_code == 200
    clock.advance(0.1)
    assert eas().status_code == 401


def test_a_sign_in_to_the_panel_drops_nothing(alice, clock, django_assert_num_queries):
    allowed_and_cached(alice, clock)
    user = get_user_model().objects.get(username="alice")
    user.last_login = timezone.now()
    user.save(update_fields=["last_login"])
    with django_assert_num_queries(0):
        assert decision(eas(plain())) == (True, "Allowed")


# --- the database ----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_connection_the_server_closed_answers_nothing_from_the_cache(alice, clock):
    """A stopped or restarting PostgreSQL closes its connections: the cache is not
    used then, so that the outage is a 503 at once (fail closed, docs/RELIABILITY.md)."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: the embedded SQLite has no server connection to lose")
    allowed_and_cached(alice, clock)
    assert connection.connection is not None, "CONN_MAX_AGE keeps the connection"
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as other:
        pid = connection.connection.info.backend_pid
        assert other.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0]
    fd = connection.connection.fileno()
    assert select.select([fd], [], [], 5)[0], "the server said nothing within 5 s"
    with mock.patch("devices.gate.lookup._fetch", side_effect=OperationalError("gone")):
        response = eas()
    assert response.status_code == 503
    connection.close()
