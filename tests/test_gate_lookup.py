"""devices.gate.lookup: the login, its mailbox and one partnership in one query."""

import base64

import psycopg
import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection
from django.test import Client

from devices import actions
from devices.audit import Actor
from devices.gate import lookup
from devices.models import AuditSource, Mailbox, MobileDevice

ADMIN = Actor(source=AuditSource.CLI)
GATE = "/Microsoft-Server-ActiveSync"


@pytest.fixture(autouse=True)
def _fast_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()
    yield
    cache.clear()


def _mailbox(alias="alice"):
    return actions.create_mailbox(
        ADMIN, alias=alias, email=f"{alias}@contoso.com", password=f"{alias}-secret"
    ).obj


def _device(mailbox, device_id="AliceIPhone1"):
    # Every column the gate reads holds a value of its own, so that a value read into
    # the wrong attribute cannot pass unnoticed.
    return MobileDevice.objects.create(
        mailbox=mailbox,
        device_id=device_id,
        device_type="iPhone",
        device_model="iPhone15C2",
        device_os="iOS 17.1",
        device_os_language="de-DE",
        user_agent="Apple-iPhone15C2/2106.90",
        imei="356789101234567",
        friendly_name="Alice's iPhone",
        phone_number="+49301234567",
        mobile_operator="Telekom.de",
        eas_version="16.1",
        device_info_received=True,
        access_state="Quarantined",
        access_state_reason="DeviceRule",
    )


def _loaded(instance) -> dict:
    deferred = instance.get_deferred_fields()
    return {
        f.attname: getattr(instance, f.attname)
        for f in type(instance)._meta.concrete_fields
        if f.attname not in deferred
    }


def test_it_reads_the_same_values_as_the_orm(db, django_assert_num_queries):
    mailbox = _mailbox()
    device = _device(mailbox)
    _device(mailbox, "OtherPhone")  # the other partnership of the mailbox is not read
    with django_assert_num_queries(1):
        found = lookup.load(mailbox.user_id, "aliceiphone1")
        user, got_mailbox, got_device = found.user, found.user.mailbox, found.device
        assert got_mailbox.user is user
        assert got_device.mailbox is got_mailbox
    expected_user = get_user_model().objects.get(pk=mailbox.user_id)
    assert _loaded(user) == _loaded(expected_user)
    assert _loaded(got_mailbox) == _loaded(Mailbox.objects.get(pk=mailbox.pk))
    expected = MobileDevice.objects.get(pk=device.pk)
    loaded = _loaded(got_device)
    assert set(loaded) == {MobileDevice._meta.get_field(f).attname for f in lookup.DEVICE_FIELDS}
    assert loaded == {name: getattr(expected, name) for name in loaded}
    assert got_device.device_key == "aliceiphone1"  # deferred: read on access, still right


def test_an_unknown_device_a_login_without_mailbox_and_a_missing_login(
    db, django_assert_num_queries
):
    mailbox = _mailbox()
    found = lookup.load(mailbox.user_id, "neverseen")
    assert found.device is None and found.user.mailbox == mailbox
    helpdesk = get_user_model().objects.create_user("helpdesk.jo", password="x")
    with django_assert_num_queries(1):
        found = lookup.load(helpdesk.pk, "aliceiphone1")
        assert getattr(found.user, "mailbox", None) is None  # cached: no second query
        assert found.device is None
    assert lookup.load(helpdesk.pk + 1000, "aliceiphone1") is None


def test_another_mailboxs_device_is_not_found(db):
    alice, bob = _mailbox(), _mailbox("bob")
    _device(bob, "SharedName")
    assert lookup.load(alice.user_id, "sharedname").device is None
    assert lookup.load(bob.user_id, "sharedname").device is not None


def _sync(client):
    auth = "Basic " + base64.b64encode(b"alice:alice-secret").decode()
    return client.post(
        GATE,
        b"",
        content_type="application/vnd.ms-sync.wbxml",
        headers={"Authorization": auth, "User-Agent": "Apple-iPhone15C2/2106.90"},
        QUERY_STRING="Cmd=Sync&User=alice&DeviceId=AliceIPhone1&DeviceType=iPhone",
    )


@pytest.mark.django_db(transaction=True)
def test_a_connection_the_database_dropped_is_replaced_without_failing_the_request():
    """No SELECT 1 before each request (CONN_HEALTH_CHECKS): the gate finds a
    dropped connection by using it, reconnects and asks once more."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: the embedded SQLite has no server connection to drop")
    actions.allow_device(ADMIN, _mailbox(), "AliceIPhone1")
    client = Client()
    assert _sync(client).status_code == 200
    assert connection.connection is not None, "CONN_MAX_AGE keeps the connection"
    before = connection.connection.info.backend_pid
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as other:
        assert other.execute("SELECT pg_terminate_backend(%s)", [before]).fetchone()[0]
    response = _sync(client)
    assert (response.status_code, response["X-EAS-Access-State"]) == (200, "Allowed")
    assert connection.connection.info.backend_pid != before


def test_statements_are_prepared_once_per_connection(db):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: SQLite has no server-side prepared statements")
    mailbox = _mailbox()
    for _ in range(3):
        lookup.load(mailbox.user_id, "aliceiphone1")
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
                       ["%devices_mobiledevice%"])  # fmt: skip
        assert cursor.fetchone()[0] == 1
