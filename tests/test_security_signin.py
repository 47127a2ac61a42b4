"""Brute force on the ECP's sign-in (django-axes, configured in ecp/settings.py).

Ten failures of one login from one address lock that pair for 15 minutes:
the attacker's address cannot sign in as that user even with the right
password, while the real user signs in from anywhere else. Behind nginx the
address is X-Real-IP (ECP_TRUSTED_PROXIES), as for the gate. The gate's own
Basic sign-ins are not axes' business (the gate throttles them itself).
"""

import base64
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from devices import actions
from devices.audit import SYSTEM

PASSWORD = "correct horse battery staple"
LIMIT = 10
ATTACKER, USER_ADDRESS = "203.0.113.66", "198.51.100.7"


@pytest.fixture
def alice(db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return get_user_model().objects.create_user("alice", password=PASSWORD)


def sign_in(password, *, username="alice", address=ATTACKER, path="/accounts/login/"):
    # Through nginx: REMOTE_ADDR is the proxy, X-Real-IP the client.
    client = Client(REMOTE_ADDR="127.0.0.1", headers={"X-Real-IP": address})
    return client.post(path, {"username": username, "password": password})


def signed_in(response) -> bool:
    return response.status_code == 302 and "sessionid" in response.cookies


def fail(times, **kwargs):
    for i in range(times):
        response = sign_in(f"guess-{i}", **kwargs)
        # The form again with its error; the failure that reaches the limit is the lockout.
        assert response.status_code == (429 if i + 1 >= LIMIT else 200)


def test_the_limit_is_ten_and_the_lockout_fifteen_minutes(settings):
    assert settings.AXES_FAILURE_LIMIT == LIMIT
    assert timedelta(minutes=15) == settings.AXES_COOLOFF_TIME
    assert settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"]]


def test_nine_failures_do_not_lock(alice):
    fail(LIMIT - 1)
    assert signed_in(sign_in(PASSWORD))


def test_the_tenth_failure_locks_the_login_from_that_address(alice):
    fail(LIMIT - 1)
    assert sign_in("guess-last").status_code == 429
    locked = sign_in(PASSWORD)
    assert locked.status_code == 429
    assert "sessionid" not in locked.cookies
    assert "too many login attempts" in locked.content.decode().lower()


def test_the_real_user_signs_in_from_another_address(alice):
    fail(LIMIT)
    assert sign_in(PASSWORD).status_code == 429
    assert signed_in(sign_in(PASSWORD, address=USER_ADDRESS))


def test_another_login_from_the_attackers_address_is_not_locked(alice):
    get_user_model().objects.create_user("bob", password=PASSWORD)
    fail(LIMIT)
    assert signed_in(sign_in(PASSWORD, username="bob"))


def test_the_lock_ends_after_the_cool_off(alice):
    fail(LIMIT)
    assert sign_in(PASSWORD).status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    assert signed_in(sign_in(PASSWORD))


def test_a_successful_sign_in_starts_the_count_again(alice):
    fail(LIMIT - 1)
    assert signed_in(sign_in(PASSWORD))
    fail(LIMIT - 1)
    assert signed_in(sign_in(PASSWORD))


def test_the_address_behind_the_proxy_is_counted_not_the_proxy(alice):
    fail(LIMIT)  # all from 127.0.0.1, the proxy, for different X-Real-IPs below
    for i in range(3):
        assert signed_in(sign_in(PASSWORD, address=f"192.0.2.{i + 1}"))


def test_an_untrusted_x_real_ip_is_ignored(alice):
    for i in range(LIMIT):
        client = Client(REMOTE_ADDR="192.0.2.200", headers={"X-Real-IP": f"10.0.0.{i}"})
        client.post("/accounts/login/", {"username": "alice", "password": f"guess-{i}"})
    client = Client(REMOTE_ADDR="192.0.2.200", headers={"X-Real-IP": "10.9.9.9"})
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 429


def test_the_admin_sign_in_is_protected_too(alice):
    alice.is_staff = True
    alice.save()
    fail(LIMIT - 1, path="/admin/login/")
    assert sign_in("guess-last", path="/admin/login/").status_code == 429
    assert sign_in(PASSWORD, path="/admin/login/").status_code == 429


def test_the_gate_is_not_counted_by_axes(db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    actions.create_mailbox(SYSTEM, alias="alice", email="alice@example.org", password=PASSWORD)
    token = base64.b64encode(b"alice:wrong").decode()
    for _ in range(LIMIT + 5):
        Client(REMOTE_ADDR=ATTACKER).post(
            "/Microsoft-Server-ActiveSync",
            b"",
            content_type="application/vnd.ms-sync.wbxml",
            headers={"Authorization": f"Basic {token}"},
            QUERY_STRING="Cmd=Sync&DeviceId=PHONE1&DeviceType=iPhone",
        )
    assert not AccessAttempt.objects.exists()
    assert signed_in(sign_in(PASSWORD))


def test_authenticate_without_a_request_is_not_refused(alice):
    # Scripts and test clients call authenticate() without a request.
    client = Client()
    assert client.login(username="alice", password=PASSWORD)
