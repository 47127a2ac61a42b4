"""Hostile characters (issue 16, item 4): decoded and normalised where they enter,
never stored, and shown neutralised where they were stored before.

Bidi overrides and isolates (U+202A-U+202E, U+2066-U+2069) reorder what a
reader sees ("gpj.exe" shown as "exe.jpg"); C0/C1 controls and CR/LF break
pages, mail headers and CSV rows; a UTF-8 User-Agent reaches Django as latin-1
(WSGI) and was stored as mojibake.
"""

import base64
import csv
import io
import json

import pytest
from django.core.cache import cache
from django.test import Client

from devices import actions, evaluation, hostile
from devices.audit import Actor
from devices.eas import build_device_information_body
from devices.models import AuditSource, Mailbox, MobileDevice
from notifications.rendering import render, safe_subject
from tests.cli_support import eas as eas_cli
from tests.web.conftest import build_world

GATE = "/Microsoft-Server-ActiveSync"
WBXML = "application/vnd.ms-sync.wbxml"
ADMIN = Actor(source=AuditSource.CLI)
QUERY = "Cmd=Provision&DeviceId=ALICEPHONE1&DeviceType=iPhone&User=alice"
RLO, LRI, PDI = "\u202e", "\u2066", "\u2069"


def wsgi(text: str) -> str:
    """A header as a WSGI server hands it to Django: its bytes read as latin-1."""
    return text.encode("utf-8").decode("latin-1")


@pytest.fixture(autouse=True)
def _fresh_gate(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()
    evaluation._compiled = None
    yield
    cache.clear()


@pytest.fixture
def alice(db):
    return actions.create_mailbox(
        ADMIN, alias="alice", email="alice@contoso.com", password="alice-secret"
    ).obj


def gate(*, body=b"", user_agent="Apple-iPhone14C2/2104.61"):
    auth = "Basic " + base64.b64encode(b"alice:alice-secret").decode()
    return Client().post(
        GATE,
        body,
        content_type=WBXML,
        headers={"Authorization": auth, "User-Agent": user_agent},
        QUERY_STRING=QUERY,
    )


def stored_device() -> MobileDevice:
    return MobileDevice.objects.get()


# --- the gate ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_utf8_user_agent_is_stored_as_utf8_not_mojibake(alice):
    assert gate(user_agent=wsgi("Gerät-Phone/1.0 (Zürich)")).status_code == 200
    assert stored_device().user_agent == "Gerät-Phone/1.0 (Zürich)"


@pytest.mark.django_db
def test_a_latin1_user_agent_that_is_not_utf8_keeps_its_latin1_reading(alice):
    assert gate(user_agent="Ger\xe4t/1.0").status_code == 200  # the byte 0xE4 alone
    assert stored_device().user_agent == "Gerät/1.0"


@pytest.mark.django_db
def test_an_overlong_utf8_user_agent_is_refused(alice):
    # 0xC0 0xAF is an overlong "/": not UTF-8; read as latin-1 it is "À¯", printable,
    # but an overlong NUL (0xC0 0x80) reads as "À" + C1 0x80: a control, 400.
    assert gate(user_agent="UA\xc0\x80x").status_code == 400
    assert gate(user_agent="UA\xc0\xafx").status_code == 200
    assert stored_device().user_agent == "UA\xc0\xafx"


@pytest.mark.django_db
def test_bidi_overrides_in_the_user_agent_are_not_stored(alice):
    assert gate(user_agent=wsgi(f"Apple{RLO}gpj.exe/1.0")).status_code == 200
    assert stored_device().user_agent == "Applegpj.exe/1.0"


@pytest.mark.django_db
def test_bidi_overrides_in_device_information_are_not_stored(alice):
    info = {
        "model": f"iPhone{RLO}15",
        "friendly_name": f"{LRI}Alice's{PDI} phone",
        "os": f"iOS{RLO} 17",
        "mobile_operator": f"Op{RLO}",
    }
    assert gate(body=build_device_information_body("Provision", info)).status_code == 200
    device = stored_device()
    assert device.device_model == "iPhone15"
    assert device.friendly_name == "Alice's phone"
    assert device.device_os == "iOS 17"
    assert device.mobile_operator == "Op"


@pytest.mark.django_db
def test_record_contact_never_stores_an_unsafe_character_whoever_calls_it(alice):
    contact = actions.Contact(
        device_id="X1",
        device_type="iPhone",
        user_agent="UA\x00\x85\u2028",
        info={"model": "M\r\n\x1b", "imei": f"35{RLO}6"},
    )
    device = actions.record_contact(ADMIN, alice, contact)
    assert (device.user_agent, device.device_model, device.imei) == ("UA", "M", "356")


# --- the CLI, imports ---------------------------------------------------------------------


@pytest.mark.django_db
def test_the_cli_turns_line_breaks_in_a_display_name_into_spaces(db):
    eas_cli(
        "new-mailbox", "eve", "--email", "eve@contoso.com",
        "--display-name", "Eve\r\nBcc: all@contoso.com",
    )  # fmt: skip
    assert Mailbox.objects.get(alias="eve").display_name == "Eve Bcc: all@contoso.com"


@pytest.mark.django_db
def test_the_cli_drops_controls_and_bidi_overrides_from_a_display_name(db):
    eas_cli("new-mailbox", "eve", "--email", "eve@contoso.com", "--display-name", "Eve")
    eas_cli("set-mailbox", "eve", "--display-name", f"Eve{RLO} \x00Evil\x85\tX\u2028")
    assert Mailbox.objects.get(alias="eve").display_name == "Eve Evil X"


@pytest.mark.django_db
def test_an_imported_display_name_and_device_fields_are_normalised(db):
    rows = [
        {
            "PrimarySmtpAddress": "eve@contoso.com",
            "Alias": "eve",
            "DisplayName": f"Eve\r\n{RLO}Admin",
        }
    ]
    actions.import_mailboxes(ADMIN, rows)
    assert Mailbox.objects.get(alias="eve").display_name == "Eve Admin"


# --- what is already stored is shown neutralised ------------------------------------------


@pytest.fixture
def world(db):
    return build_world()


def hostile_stored(device: MobileDevice) -> None:
    """As a row written before the gate refused these characters."""
    MobileDevice.objects.filter(pk=device.pk).update(
        device_model=f"iPhone{RLO}gpj.exe",
        friendly_name="Line\r\nBreak\x1b[31m",
        user_agent=f"UA{LRI}x\x85",
    )
    Mailbox.objects.filter(pk=device.mailbox_id).update(display_name=f"Carol{RLO}\r\nCole")


def signed_in(user):
    client = Client()
    client.force_login(user)
    return client


UNSAFE = ("\u202e", "\u2066", "\x1b", "\x85")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    ["/devices/{pk}/", "/devices/", "/devices/quarantine/", "/mailboxes/{mailbox}/", "/"],
)
def test_pages_show_stored_hostile_characters_neutralised(world, url):
    hostile_stored(world.carol_phone)
    page = signed_in(world.org).get(
        url.format(pk=world.carol_phone.pk, mailbox=world.carol_phone.mailbox_id)
    )
    assert page.status_code == 200
    html = page.content.decode()
    assert not any(ch in html for ch in UNSAFE)
    assert "\ufffd" in html


@pytest.mark.django_db
def test_my_devices_shows_them_neutralised(world):
    hostile_stored(world.alice_phone)
    html = signed_in(world.alice).get("/my/devices/").content.decode()
    assert "Line\ufffd\ufffdBreak\ufffd[31m" in html
    assert not any(ch in html for ch in UNSAFE)


@pytest.mark.django_db
def test_a_mail_subject_and_body_show_them_neutralised(world):
    from devices import notify
    from devices.models import OrgSettings

    hostile_stored(world.carol_phone)
    device = MobileDevice.objects.select_related("mailbox").get(pk=world.carol_phone.pk)
    context = notify.mail_context(device, OrgSettings.load())
    for kind in ("admin-quarantined", "user-quarantined", "user-blocked"):
        subject, text, html = render(kind, context)
        assert "\r" not in subject and "\n" not in subject
        for part in (subject, text, html):
            assert not any(ch in part for ch in UNSAFE), (kind, part)
        assert "iPhone\ufffdgpj.exe" in subject


def test_the_subject_sanitiser():
    assert safe_subject(f"a\r\nBcc: x{RLO}\x00\x85b") == "a Bcc: x\ufffd\ufffd b"


@pytest.mark.django_db
def test_the_web_csv_export_neutralises_them(world):
    actions.set_mailbox(
        Actor(source=AuditSource.CLI, request_id="=cmd|' /C calc'!A0"),
        world.carol_phone.mailbox,
        display_name="Carol",
    )
    # An audit message as stored before: a device-supplied repr.
    from devices.models import AuditEvent

    AuditEvent.objects.create(
        actor_name="gate",
        source=AuditSource.GATE,
        action="device.update",
        object_type="MobileDevice",
        object_repr=f"X{RLO}1 (carol)",
        message="-2+3\r\n=1",
    )
    body = b"".join(signed_in(world.org).get("/audit/export.csv").streaming_content).decode()
    assert not any(ch in body for ch in UNSAFE)
    cells = [cell for row in csv.reader(io.StringIO(body)) for cell in row]
    assert "X\ufffd1 (carol)" in cells
    assert "'-2+3\ufffd\ufffd=1" in cells


def test_neutral_and_clean_line():
    assert hostile.neutral(f"a{RLO}b\x00") == "a\ufffdb\ufffd"
    assert hostile.clean_line(" a\r\n\tb\u2028c\x00\x9b ") == "a b c"
    assert hostile.recode_header(wsgi("Zürich")) == "Zürich"
    assert hostile.recode_header("Z\xfcrich") == "Zürich"


@pytest.mark.django_db
def test_the_cli_table_and_json_show_them_neutralised(world):
    hostile_stored(world.carol_phone)
    table = eas_cli("get-device", "--mailbox", "carol")
    assert not any(ch in table for ch in UNSAFE)
    assert "iPhone\ufffdgpj.exe" in table
    text = eas_cli("get-device", "--mailbox", "carol", "--format", "json")
    assert not any(ch in text for ch in UNSAFE)
    (device,) = json.loads(text)
    assert device["device_model"] == f"iPhone{RLO}gpj.exe"  # the data itself, escaped
