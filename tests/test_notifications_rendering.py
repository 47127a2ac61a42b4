"""What the mails say: device details, the org's insert escaped, absolute links.

The rows come from real transitions (devices.actions -> devices.notify ->
the outbox); each test renders a row's stored context as delivery would.
"""

import pytest

from devices import actions, notify
from devices.audit import Actor
from devices.models import AuditSource, MobileDevice
from notifications import links
from notifications.models import Kind, Notification
from notifications.rendering import render

ADMIN = Actor(source=AuditSource.CLI)
INSERT = "<script>alert(1)</script>\n<b>Call 555-0100</b> for help.\nThe service desk"
ADMINS = ["security@contoso.com", "it@contoso.com"]


@pytest.fixture(autouse=True)
def base_url(settings):
    settings.ECP_BASE_URL = "https://ecp.example.org"


@pytest.fixture
def org(db):
    return actions.set_org_settings(
        ADMIN,
        default_access_level="Quarantine",
        discovery_window_minutes=0,
        admin_mail_recipients=ADMINS,
        user_mail_insert=INSERT,
    ).obj


@pytest.fixture
def alice(org):
    return actions.create_mailbox(
        ADMIN, alias="alice", email="alice@contoso.com", display_name="Alice Liddell"
    ).obj


def new_device(mailbox, **fields) -> MobileDevice:
    values = {
        "device_id": "ALICEPHONE1",
        "device_type": "Android",
        "device_model": "SM-G991B",
        "device_os": "Android 14",
        "user_agent": "Android-Mail/2024.01.1",
        "eas_version": "16.1",
        "phone_number": "+31612345678",
        "imei": "356938035643809",
        "device_info_received": True,
    }
    values.update(fields)
    return MobileDevice.objects.create(mailbox=mailbox, **values)


@pytest.fixture
def quarantined(alice):
    """Alice's phone, quarantined by a device access rule."""
    device = new_device(alice)
    actions.create_rule(
        ADMIN, characteristic="DeviceModel", query_string="SM-G991B", access_level="Quarantine"
    )
    device.refresh_from_db()
    assert device.access_state == "Quarantined"
    return device


def rendered(kind, recipient=None):
    rows = Notification.objects.filter(kind=kind)
    if recipient:
        rows = rows.filter(recipient=recipient)
    row = rows.get()
    return render(row.kind, row.context)


def test_the_user_mail_escapes_the_insert_and_keeps_its_line_breaks(quarantined):
    subject, text, html = rendered(Kind.USER_QUARANTINED)

    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;Call 555-0100&lt;/b&gt;" in html
    assert "<script>" not in html
    assert "<b>Call 555-0100</b>" not in html
    assert "&lt;/script&gt;<br>&lt;b&gt;Call 555-0100&lt;/b&gt; for help.<br>The service desk" in (
        html
    )
    # The plain text part is not HTML: the insert is there as written.
    assert INSERT in text


def test_the_blocked_mail_escapes_the_insert_too(alice):
    device = new_device(alice)
    actions.block_device(ADMIN, alice, device.device_id)

    subject, text, html = rendered(Kind.USER_BLOCKED)

    assert subject == "Your SM-G991B is blocked from syncing mail"
    assert "&lt;script&gt;" in html and "<script>" not in html
    assert "<br>" in html
    assert "blocked" in text


def test_no_insert_paragraph_without_an_insert(quarantined):
    actions.set_org_settings(ADMIN, user_mail_insert="")
    row = Notification.objects.get(kind=Kind.USER_QUARANTINED)
    context = {**row.context, "user_mail_insert": ""}

    subject, text, html = render(row.kind, context)

    assert "A word from your IT department" not in html
    assert "A word from your IT department" not in text


def test_links_are_absolute_from_ecp_base_url(quarantined):
    device_url = f"https://ecp.example.org/devices/{quarantined.pk}/"

    _, admin_text, admin_html = rendered(Kind.ADMIN_QUARANTINED, ADMINS[0])
    _, user_text, user_html = rendered(Kind.USER_QUARANTINED)

    assert f'href="{device_url}"' in admin_html
    assert device_url in admin_text
    assert 'href="https://ecp.example.org/devices/quarantine/"' in admin_html
    assert "https://ecp.example.org/devices/quarantine/" in admin_text
    assert 'href="https://ecp.example.org/my/devices/"' in user_html
    assert "https://ecp.example.org/my/devices/" in user_text
    assert 'href="/' not in admin_html + user_html


def test_a_trailing_slash_on_the_base_url_gives_no_double_slash(settings):
    settings.ECP_BASE_URL = "https://ecp.example.org/"

    assert links.absolute_url("/devices/7/") == "https://ecp.example.org/devices/7/"
    assert links.absolute_url("https://elsewhere.example/x") == "https://elsewhere.example/x"


def test_the_base_url_is_read_when_the_mail_is_rendered(quarantined, settings):
    settings.ECP_BASE_URL = "https://panel.contoso.com"

    _, _, html = rendered(Kind.ADMIN_QUARANTINED, ADMINS[0])

    assert f'href="https://panel.contoso.com/devices/{quarantined.pk}/"' in html


def test_the_admin_mail_shows_every_device_field(quarantined):
    subject, text, html = rendered(Kind.ADMIN_QUARANTINED, ADMINS[0])

    expected = [
        "Alice Liddell",
        "alice@contoso.com",
        "SM-G991B",  # model
        "Android",  # type
        "ALICEPHONE1",  # DeviceId
        "Android 14",  # OS
        "Android-Mail/2024.01.1",  # user agent
        "16.1",  # EAS version
        "+31612345678",  # phone number
        "356938035643809",  # IMEI
        "SM-G991B (DeviceModel): Quarantine",  # access rule
        "Quarantined",
        "a device access rule",  # reason
    ]
    for value in expected:
        assert value in text, value
        assert value in html, value
    for label in ("Model", "Type", "DeviceId", "OS", "User agent", "EAS version"):
        assert f">{label}</th>" in html
    for label in ("Phone number", "IMEI", "Access rule"):
        assert f">{label}</th>" in html
    assert subject == ("Quarantined: SM-G991B of Alice Liddell (alice) waits for approval")


def test_the_user_mail_shows_the_device_and_why_it_waits(quarantined):
    subject, text, html = rendered(Kind.USER_QUARANTINED)

    for value in (
        "SM-G991B",
        "Android",
        "ALICEPHONE1",
        "Android 14",
        "Android-Mail/2024.01.1",
        "16.1",
        "Quarantined",
        "a device access rule",
    ):
        assert value in text, value
        assert value in html, value
    # Phone number, IMEI and the rule are for admins.
    for value in ("356938035643809", "+31612345678", "(DeviceModel)"):
        assert value not in text
        assert value not in html
    assert subject == "Your SM-G991B is waiting for approval to sync mail"
    assert "Hello Alice Liddell" in text


def test_the_user_mail_names_the_org_default_as_the_reason(alice):
    new_device(alice, device_id="ALICEPAD", device_model="iPad13,1")
    actions.set_org_settings(ADMIN, default_access_level="Block")
    actions.set_org_settings(ADMIN, default_access_level="Quarantine")

    _, text, _ = rendered(Kind.USER_QUARANTINED)

    assert "the organisation's default access level" in text


def test_values_a_device_reports_are_escaped_in_html(alice):
    new_device(
        alice,
        device_model='<img src=x onerror="alert(1)">',
        user_agent="<i>agent</i>",
    )
    actions.set_org_settings(ADMIN, default_access_level="Block")
    actions.set_org_settings(ADMIN, default_access_level="Quarantine")

    _, _, admin_html = rendered(Kind.ADMIN_QUARANTINED, ADMINS[0])
    _, _, user_html = rendered(Kind.USER_QUARANTINED)

    for html in (admin_html, user_html):
        assert "<img" not in html
        assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html
        assert "&lt;i&gt;agent&lt;/i&gt;" in html


def test_the_subject_is_one_line_whatever_the_device_reports(alice):
    new_device(alice, device_model="Phone\r\nBcc: everyone@contoso.com")
    actions.set_org_settings(ADMIN, default_access_level="Block")
    actions.set_org_settings(ADMIN, default_access_level="Quarantine")

    subject, _, _ = rendered(Kind.ADMIN_QUARANTINED, ADMINS[0])

    assert "\n" not in subject and "\r" not in subject
    assert subject.startswith("Quarantined: Phone Bcc: everyone@contoso.com of Alice Liddell")


def test_the_new_device_mail(alice):
    actions.set_org_settings(ADMIN, default_access_level="Allow", new_device_alert=True)
    device = new_device(alice)
    actions.reevaluate(MobileDevice.objects.filter(pk=device.pk), None)

    subject, text, html = rendered(Kind.USER_NEW_DEVICE)

    assert subject == "A new device was connected to your mailbox: SM-G991B"
    assert "ALICEPHONE1" in text and "ALICEPHONE1" in html
    assert 'href="https://ecp.example.org/my/devices/"' in html


def test_the_digest_lists_each_device_with_its_link(alice, org):
    devices = [new_device(alice, device_id=f"PHONE{i}") for i in range(3)]
    context = {"count": 3, "items": [notify.mail_context(d, org) for d in devices]}

    subject, text, html = render(Kind.ADMIN_DIGEST, context)

    assert subject == "3 devices waiting in quarantine"
    for d in devices:
        assert d.device_id in text and d.device_id in html
        assert f'href="https://ecp.example.org/devices/{d.pk}/"' in html
        assert f"https://ecp.example.org/devices/{d.pk}/" in text
    assert 'href="https://ecp.example.org/devices/quarantine/"' in html
