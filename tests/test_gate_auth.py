"""The gate's authentication: Basic credentials, mailbox ownership, caching, throttling, probes."""

import base64
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import MD5PasswordHasher
from django.core.cache import cache
from django.test import Client

from devices import actions, evaluation
from devices.audit import Actor
from devices.gate import credentials
from devices.models import AuditEvent, AuditSource, DeviceStateChange, MobileDevice, OrgSettings

GATE = "/Microsoft-Server-ActiveSync"
WBXML = "application/vnd.ms-sync.wbxml"
ADMIN = Actor(source=AuditSource.CLI)


@pytest.fixture(autouse=True)
def _fresh_gate(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()
    evaluation._compiled = None
    yield
    cache.clear()


def basic(login: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()


@pytest.fixture
def alice(db):
    return actions.create_mailbox(
        ADMIN, alias="alice", email="alice@contoso.com", password="alice-secret"
    ).obj


@pytest.fixture
def bob(db):
    return actions.create_mailbox(
        ADMIN, alias="bob", email="bob@contoso.com", password="bob-secret"
    ).obj


def plain(cmd="FolderSync", device_id="ALICEPHONE1", device_type="iPhone", user=None):
    query = f"Cmd={cmd}&DeviceId={device_id}&DeviceType={device_type}"
    return query + (f"&User={user}" if user is not None else "")


def eas(query=None, *, auth="default", user_agent="Apple-iPhone14C2/2104.61", addr="127.0.0.1"):
    headers = {"MS-ASProtocolVersion": "14.1", "User-Agent": user_agent}
    if auth == "default":
        auth = basic("alice", "alice-secret")
    if auth is not None:
        headers["Authorization"] = auth
    return Client(REMOTE_ADDR=addr).post(
        GATE, b"", content_type=WBXML, headers=headers, QUERY_STRING=query or plain()
    )


def eas_auth(query=None, *, auth="default", addr="127.0.0.1"):
    headers = {
        "MS-ASProtocolVersion": "14.1",
        "User-Agent": "Apple-iPhone14C2/2104.61",
        "X-Original-URI": f"{GATE}?{query or plain()}",
        "X-Original-Method": "POST",
    }
    if auth == "default":
        auth = basic("alice", "alice-secret")
    if auth is not None:
        headers["Authorization"] = auth
    return Client(REMOTE_ADDR=addr).get("/eas/auth", headers=headers)


def recorded():
    return (
        MobileDevice.objects.count(),
        DeviceStateChange.objects.count(),
        AuditEvent.objects.filter(source=AuditSource.GATE).count(),
    )


NOTHING = (0, 0, 0)


def assert_challenge(response):
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic")
    assert "X-EAS-Access-State" not in response


# --- Basic credentials --------------------------------------------------------------


def test_no_credentials_is_401_with_a_basic_challenge(alice):
    assert_challenge(eas(auth=None))
    assert_challenge(eas_auth(auth=None))
    assert recorded() == NOTHING


@pytest.mark.parametrize(
    ("login", "password"),
    [("alice", "wrong"), ("alice", ""), ("nobody", "alice-secret"), ("ALICE@contoso.org", "x")],
)
def test_wrong_credentials_are_401_and_record_nothing(alice, login, password):
    assert_challenge(eas(auth=basic(login, password)))
    assert_challenge(eas_auth(auth=basic(login, password)))
    assert recorded() == NOTHING


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("Basic !!!not-base64!!!", id="bad-base64"),
        pytest.param("Basic " + base64.b64encode(b"alice").decode(), id="no-colon"),
        pytest.param("Basic " + base64.b64encode(b":alice-secret").decode(), id="empty-login"),
        pytest.param("Basic " + base64.b64encode(b"alice:\xff\xfe").decode(), id="not-utf8"),
        pytest.param(basic("a" * 300, "x"), id="login-too-long"),
        pytest.param(basic("alice", "x" * 2000), id="password-too-long"),
        pytest.param("Basic", id="scheme-only"),
        pytest.param("Bearer eyJhbGciOi", id="bearer"),
        pytest.param("Digest username=alice", id="digest"),
    ],
)
def test_malformed_authorization_header_is_401(alice, header):
    assert_challenge(eas(auth=header))
    assert_challenge(eas_auth(auth=header))
    assert recorded() == NOTHING


@pytest.mark.parametrize("login", ["alice", "CONTOSO\\alice", "alice@contoso.com"])
def test_devices_log_in_as_alias_domain_alias_or_address(alice, login):
    response = eas(auth=basic(login, "alice-secret"))
    assert response.status_code == 200
    device = MobileDevice.objects.get()
    assert device.mailbox == alice
    event = AuditEvent.objects.get(action="device.create")
    assert (event.actor_name, event.source) == ("alice", "gate")


def test_inactive_login_is_401(alice):
    get_user_model().objects.filter(username="alice").update(is_active=False)
    assert_challenge(eas())
    assert recorded() == NOTHING


# --- mailbox ownership ----------------------------------------------------------------


@pytest.mark.parametrize(
    "user", ["alice", "ALICE", "alice@contoso.com", "Alice@Contoso.COM", "CONTOSO%5Calice"]
)
def test_the_login_may_name_its_own_mailbox_any_way(alice, user):
    assert eas(plain(user=user)).status_code == 200
    assert MobileDevice.objects.get().mailbox == alice


def test_no_user_means_the_logins_own_mailbox(alice, bob):
    assert eas(plain(user=None), auth=basic("bob", "bob-secret")).status_code == 200
    assert MobileDevice.objects.get().mailbox == bob


@pytest.mark.parametrize(
    "user", ["bob", "bob@contoso.com", "CONTOSO%5Cbob", "carol", "alice.smith"]
)
def test_another_users_mailbox_is_403_and_records_nothing(alice, bob, user):
    for response in (eas(plain(user=user)), eas_auth(plain(user=user))):
        assert response.status_code == 403
        assert response["X-EAS-Access-State"] == "Blocked"
        assert response["X-EAS-Access-Reason"] == "MailboxNotOwned"
    assert recorded() == NOTHING


def test_a_login_without_a_mailbox_owns_nothing(db):
    get_user_model().objects.create_user("helpdesk", password="desk-secret")
    response = eas(auth=basic("helpdesk", "desk-secret"))
    assert response.status_code == 403
    assert response["X-EAS-Access-Reason"] == "MailboxNotOwned"
    assert recorded() == NOTHING


# --- throttling -------------------------------------------------------------------------


def fail_until_throttled(view):
    for _ in range(credentials.MAX_FAILURES):
        assert_challenge(view(auth=basic("alice", "guess")))


def test_repeated_failures_get_429_on_the_standalone_gate(alice):
    fail_until_throttled(eas)
    response = eas(auth=basic("alice", "guess"))
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    # Even the right password waits: the counter is what stops guessing.
    assert eas().status_code == 429
    # Another address is not locked out by this one's failures.
    assert eas(addr="192.0.2.7").status_code == 200


def test_repeated_failures_get_401_on_auth_request(alice):
    # nginx accepts only 2xx, 401 and 403 from an auth_request subrequest.
    fail_until_throttled(eas_auth)
    assert_challenge(eas_auth())
    assert eas().status_code == 429  # the same counter


def test_a_cached_credential_still_passes_while_others_guess(alice):
    assert eas().status_code == 200
    fail_until_throttled(eas)
    assert eas().status_code == 200


# --- credential caching ---------------------------------------------------------------


@pytest.fixture
def verify_calls():
    real = MD5PasswordHasher.verify
    with mock.patch.object(MD5PasswordHasher, "verify", autospec=True, side_effect=real) as spy:
        yield spy


def test_the_password_hasher_runs_once_for_repeated_requests(alice, verify_calls):
    for _ in range(5):
        assert eas().status_code == 200
        assert eas_auth().status_code == 200
    assert verify_calls.call_count == 1


def test_the_cache_is_keyed_by_login_and_password(alice, verify_calls):
    assert eas().status_code == 200
    assert eas(auth=basic("CONTOSO\\alice", "alice-secret")).status_code == 200
    assert_challenge(eas(auth=basic("alice", "alice-secret2")))
    assert verify_calls.call_count == 3


def test_a_changed_password_drops_the_cached_entry(alice, verify_calls):
    assert eas().status_code == 200
    user = get_user_model().objects.get(username="alice")
    user.set_password("new-secret")
    user.save()
    assert_challenge(eas())  # the old password, cached a moment ago
    assert eas(auth=basic("alice", "new-secret")).status_code == 200


@pytest.mark.usefixtures("uncached_gate")  # the uncached path: decisions.py
def test_a_deactivated_login_drops_the_cached_entry(alice):
    assert eas().status_code == 200
    get_user_model().objects.filter(username="alice").update(is_active=False)
    assert_challenge(eas())


def test_the_cache_holds_no_password(alice):
    assert eas().status_code == 200
    stored = repr(dict(cache._cache.items()))  # LocMemCache internals, tests only
    assert "alice-secret" not in stored
    assert base64.b64encode(b"alice:alice-secret").decode() not in stored


@pytest.mark.usefixtures("uncached_gate")  # the uncached path: decisions.py
def test_a_cache_outage_degrades_to_a_fresh_check(alice, verify_calls):
    with mock.patch.object(credentials, "cache") as broken:
        broken.get.side_effect = ConnectionError("redis down")
        broken.set.side_effect = ConnectionError("redis down")
        broken.add.side_effect = ConnectionError("redis down")
        assert eas().status_code == 200
        assert eas().status_code == 200
        assert_challenge(eas(auth=basic("alice", "wrong")))
    assert verify_calls.call_count == 3


# --- health probes ------------------------------------------------------------------


PROBES = [
    pytest.param(plain(device_type="EASProbeDeviceType"), "Apple-iPhone/1", id="device-type"),
    pytest.param(plain(device_type="easprobedevicetype"), "Apple-iPhone/1", id="lower-case"),
    pytest.param(plain(), "TestActiveSyncConnectivity", id="user-agent"),
    pytest.param(plain(), "Microsoft TestActiveSyncConnectivity/15.0", id="user-agent-inside"),
]


@pytest.fixture
def prober(db):
    """Exchange's test mailbox, as New-TestCasConnectivityUser.ps1 names it."""
    return actions.create_mailbox(
        ADMIN, alias="extest_5f3a", email="extest_5f3a@contoso.com", password="probe-secret"
    ).obj


PROBE_AUTH = basic("extest_5f3a", "probe-secret")


@pytest.mark.parametrize(("query", "user_agent"), PROBES)
def test_health_probes_pass_without_a_partnership(prober, query, user_agent):
    actions.set_org_settings(ADMIN, default_access_level="Block")
    for cmd in ("FolderSync", "Sync"):
        response = eas(query.replace("FolderSync", cmd), user_agent=user_agent, auth=PROBE_AUTH)
        assert response.status_code == 200
        assert response["X-EAS-Access-State"] == "Allowed"
        assert response["X-EAS-Access-Reason"] == "HealthProbe"
    assert recorded() == NOTHING


@pytest.mark.parametrize(("query", "user_agent"), PROBES)
def test_health_probes_are_403_when_switched_off(prober, query, user_agent):
    OrgSettings.load()
    OrgSettings.objects.filter(pk=1).update(allow_health_probes=False)
    response = eas(query, user_agent=user_agent, auth=PROBE_AUTH)
    assert response.status_code == 403
    assert response["X-EAS-Access-State"] == "Blocked"
    assert response["X-EAS-Access-Reason"] == "HealthProbe"
    assert recorded() == NOTHING


def test_health_probes_still_need_valid_credentials(prober):
    assert_challenge(eas(plain(device_type="EASProbeDeviceType"), auth=basic("extest_5f3a", "x")))


def test_a_probe_mailbox_with_activesync_off_is_blocked(prober):
    actions.set_mailbox(ADMIN, prober, activesync_enabled=False)
    response = eas(plain(device_type="EASProbeDeviceType"), auth=PROBE_AUTH)
    assert response.status_code == 403
    assert recorded() == NOTHING


@pytest.mark.parametrize(("query", "user_agent"), PROBES)
def test_a_probe_from_an_ordinary_mailbox_is_a_device_like_any_other(alice, query, user_agent):
    # Anyone can claim EASProbeDeviceType: it must not get past quarantine.
    actions.set_org_settings(ADMIN, default_access_level="Quarantine")
    response = eas(query.replace("FolderSync", "Sync"), user_agent=user_agent)
    # Waiting (device discovery): a WBXML answer, "provision first", never a pass.
    assert response.status_code == 200
    assert response["X-EAS-Access-State"] == "DeviceDiscovery"
    assert response["X-EAS-Access-Reason"] != "HealthProbe"
    assert MobileDevice.objects.filter(mailbox=alice).count() == 1


@pytest.mark.parametrize("login", ["ALICE", "CONTOSO\\Alice", "Alice@Contoso.com"])
def test_logins_are_case_insensitive(alice, login):
    assert eas(auth=basic(login, "alice-secret")).status_code in (200, 403)
    assert eas(auth=basic(login, "alice-secret"))["X-EAS-Access-State"]


def test_junk_in_x_real_ip_from_a_trusted_proxy_is_ignored(alice):
    response = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_REAL_IP="not-an-ip; drop").post(
        GATE,
        b"",
        content_type=WBXML,
        headers={"Authorization": basic("alice", "alice-secret"), "MS-ASProtocolVersion": "14.1"},
        QUERY_STRING=plain(),
    )
    assert response.status_code in (200, 403)
    assert AuditEvent.objects.get(action="device.create").client_ip == "127.0.0.1"


def via_proxy(client_addr, password="alice-secret", proxy="127.0.0.1"):
    """A request as a proxy forwards it: the device's address in X-Real-IP."""
    return Client(REMOTE_ADDR=proxy, HTTP_X_REAL_IP=client_addr).post(
        GATE,
        b"",
        content_type=WBXML,
        headers={"Authorization": basic("alice", password)},
        QUERY_STRING=plain(),
    )


def test_failures_behind_nginx_are_counted_per_device_address(alice):
    # Every request reaches ECP from the proxy's address: a guesser elsewhere must
    # not lock alice's own phone out.
    for _ in range(credentials.MAX_FAILURES):
        assert_challenge(via_proxy("198.51.100.1", password="guess"))
    assert via_proxy("198.51.100.1", password="guess").status_code == 429
    assert via_proxy("198.51.100.2").status_code == 200


def test_x_real_ip_from_an_untrusted_address_does_not_escape_throttling(alice):
    for i in range(credentials.MAX_FAILURES):
        assert_challenge(via_proxy(f"198.51.100.{i}", password="guess", proxy="192.0.2.5"))
    assert via_proxy("198.51.100.200", proxy="192.0.2.5").status_code == 429


def spellings(n: int) -> list[str]:
    """n spellings of alice's account: invented DOMAIN\\ prefixes, @domains, cases."""
    forms = []
    for i in range(n):
        forms.append(
            [f"DOMAIN{i}\\alice", f"alice@invented{i}.example", "ALICE", "Alice@Contoso.com"][i % 4]
        )
    return forms


def test_every_spelling_of_one_account_shares_one_throttle_counter(alice):
    # Each invented DOMAIN\ prefix or @domain used to get its own ten guesses.
    for login in spellings(credentials.MAX_FAILURES):
        assert_challenge(eas(auth=basic(login, "guess")))
    for login in ("alice", "OTHER\\alice", "alice@contoso.com", "alice@anything.example"):
        assert eas(auth=basic(login, "alice-secret")).status_code == 429, login
    # Another address is not locked out.
    assert eas(auth=basic("alice", "alice-secret"), addr="198.51.100.9").status_code == 200


def test_the_primary_address_of_a_mailbox_counts_as_its_alias(db):
    actions.create_mailbox(ADMIN, alias="jdoe", email="john.doe@contoso.com", password="pw-jdoe")
    assert credentials.account_key("John.Doe@Contoso.com") == "jdoe"
    assert credentials.account_key("CONTOSO\\JDOE") == "jdoe"
    assert credentials.account_key("jdoe@elsewhere.example") == "jdoe"
    for _ in range(credentials.MAX_FAILURES):
        assert_challenge(eas(auth=basic("john.doe@contoso.com", "guess")))
    assert eas(auth=basic("CONTOSO\\jdoe", "pw-jdoe")).status_code == 429
