"""What the mails say: device details, the org's insert escaped, absolute links.

The rows come from real transitions (devices.actions -> devices.notify ->
the outbox); each test renders a row's stored context as delivery would.
"""

import pytest

from devices import actions, notify
from devices.audit import Actor
from devices.model_names import marketing_name
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

    assert subject == "Your Galaxy S21 is blocked from syncing mail"
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
    assert subject == ("Quarantined: Galaxy S21 of Alice Liddell (alice) waits for approval")


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
    assert subject == "Your Galaxy S21 is waiting for approval to sync mail"
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

    assert subject == "A new device was connected to your mailbox: Galaxy S21"
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


# --- phones, marketing names, the approval mail (issue 17, point 4) ---------------------------

VIEWPORT = '<meta name="viewport" content="width=device-width, initial-scale=1">'


def test_every_html_mail_has_a_viewport(quarantined, alice, org):
    actions.allow_device(ADMIN, alice, quarantined.device_id)
    digest = {"count": 1, "items": [notify.mail_context(quarantined, org)]}
    htmls = [render(row.kind, row.context)[2] for row in Notification.objects.all()]
    htmls.append(render(Kind.ADMIN_DIGEST, digest)[2])
    kinds = set(Notification.objects.values_list("kind", flat=True))
    assert {Kind.USER_QUARANTINED, Kind.ADMIN_QUARANTINED, Kind.USER_APPROVED} <= kinds
    for html in htmls:
        assert VIEWPORT in html


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("iPhone15C2", "iPhone 14 Pro"),
        ("iPhone15,2", "iPhone 14 Pro"),
        ("Apple-iPhone15C2/2104.136", "iPhone 14 Pro"),
        ("iPhone17C3", "iPhone 16"),
        ("iPhone14C5", "iPhone 13"),
        ("iPad13C18", "iPad (10th generation)"),
        ("iPad16C5", "iPad Pro 13-inch (M4)"),
        ("SM-S918B", "Galaxy S23 Ultra"),
        ("SM-S918U1", "Galaxy S23 Ultra"),
        ("sm-s928b", "Galaxy S24 Ultra"),
        ("SM-A546B/DS", "Galaxy A54 5G"),
        ("SM-F946B", "Galaxy Z Fold5"),
        ("SM-X710", "Galaxy Tab S9"),
        ("iPhone99C9", ""),
        ("SM-Z999", ""),
        ("Pixel 8", ""),
        ("", ""),
    ],
)
def test_marketing_names(code, name):
    assert marketing_name(code) == name


def test_the_model_in_the_user_agent_names_a_device_without_a_model():
    assert marketing_name("", "Apple-iPhone16C1/2104.136") == "iPhone 15 Pro"


def test_subjects_and_bodies_use_the_marketing_name_beside_the_code(alice):
    new_device(
        alice,
        device_id="ALICEIPHONE",
        device_type="iPhone",
        device_model="iPhone15C2",
        user_agent="Apple-iPhone15C2/2104.136",
    )
    actions.set_org_settings(ADMIN, default_access_level="Block")
    actions.set_org_settings(ADMIN, default_access_level="Quarantine")

    subject, text, html = rendered(Kind.USER_QUARANTINED)
    assert subject == "Your iPhone 14 Pro is waiting for approval to sync mail"
    assert "iPhone 14 Pro (iPhone15C2)" in text
    assert "<b>iPhone 14 Pro</b> (iPhone15C2)" in html

    subject, text, html = rendered(Kind.ADMIN_QUARANTINED, ADMINS[0])
    assert subject == "Quarantined: iPhone 14 Pro of Alice Liddell (alice) waits for approval"
    assert "iPhone 14 Pro (iPhone15C2)" in text


def test_an_unknown_model_shows_its_code_alone(alice):
    new_device(alice, device_model="Pixel 8", device_type="Android")
    actions.set_org_settings(ADMIN, default_access_level="Block")
    actions.set_org_settings(ADMIN, default_access_level="Quarantine")

    subject, text, _ = rendered(Kind.USER_QUARANTINED)
    assert subject == "Your Pixel 8 is waiting for approval to sync mail"
    assert "Model:          Pixel 8\n" in text


def test_a_stored_context_without_a_label_still_renders(quarantined):
    """Rows queued before the marketing names: the subject falls back to the model."""
    row = Notification.objects.get(kind=Kind.USER_QUARANTINED)
    device = {
        k: v for k, v in row.context["device"].items() if k not in ("label", "marketing_name")
    }
    subject, text, _ = render(row.kind, {**row.context, "device": device})
    assert subject == "Your SM-G991B is waiting for approval to sync mail"
    assert "Model:          SM-G991B\n" in text


def test_the_admin_mail_leaves_out_empty_rows_and_shows_the_waiting_time(alice):
    new_device(alice, phone_number="", imei="")
    actions.set_org_settings(ADMIN, default_access_level="Block")
    actions.set_org_settings(ADMIN, default_access_level="Quarantine")

    _, text, html = rendered(Kind.ADMIN_QUARANTINED, ADMINS[0])

    for label in ("Phone number", "IMEI", "Access rule"):
        assert f">{label}</th>" not in html
        assert f"{label}:" not in text
    assert ">Waiting</th><td>0 minutes (since " in html
    assert "Waiting:        0 minutes (since " in text


def test_the_admin_mail_names_the_device_it_probably_replaces(alice):
    old = new_device(alice, device_id="OLDPHONE")
    actions.allow_device(ADMIN, alice, old.device_id)
    new_device(alice, device_id="NEWPHONE")  # same IMEI: a reset phone
    actions.set_org_settings(ADMIN, default_access_level="Block")
    actions.set_org_settings(ADMIN, default_access_level="Quarantine")

    _, text, html = rendered(Kind.ADMIN_QUARANTINED, ADMINS[0])

    assert "Probably replaces <code>OLDPHONE</code> (Galaxy S21, approved " in html
    assert f'href="https://ecp.example.org/devices/{old.pk}/"' in html
    assert "Probably replaces OLDPHONE (Galaxy S21, approved" in text
    # Not for the user.
    _, user_text, _ = rendered(Kind.USER_QUARANTINED)
    assert "OLDPHONE" not in user_text


def test_the_user_hears_that_the_device_was_approved(quarantined, alice):
    actions.allow_device(ADMIN, alice, quarantined.device_id)

    subject, text, html = rendered(Kind.USER_APPROVED)

    assert subject == "Your Galaxy S21 was approved and now syncs mail"
    assert "was approved" in text and "<b>approved</b>" in html
    assert "ALICEPHONE1" in text and "ALICEPHONE1" in html
    assert 'href="https://ecp.example.org/my/devices/"' in html
    assert VIEWPORT in html
    assert Notification.objects.get(kind=Kind.USER_APPROVED).recipient == "alice@contoso.com"


def test_no_approval_mail_when_the_org_sends_no_user_mail(quarantined, alice):
    actions.set_org_settings(ADMIN, send_user_mail=False)
    actions.allow_device(ADMIN, alice, quarantined.device_id)

    assert not Notification.objects.filter(kind=Kind.USER_APPROVED).exists()


def test_no_approval_mail_for_a_device_that_was_not_waiting(alice):
    actions.set_org_settings(ADMIN, default_access_level="Block")
    device = new_device(alice)
    actions.reevaluate(MobileDevice.objects.filter(pk=device.pk), None)
    actions.allow_device(ADMIN, alice, device.device_id)  # Blocked -> Allowed

    assert not Notification.objects.filter(kind=Kind.USER_APPROVED).exists()


def test_a_policy_default_is_named_as_the_reason(alice):
    actions.create_policy(
        ADMIN, name="Contractors", default_access_level="Quarantine", domains=["contoso.com"]
    )
    new_device(alice)
    actions.set_org_settings(ADMIN, default_access_level="Allow", new_device_alert=True)
    actions.reevaluate(MobileDevice.objects.all(), None)

    _, text, _ = rendered(Kind.USER_QUARANTINED)
    assert "the access policy Contractors (default access level Quarantine)" in text
    assert "the organisation's default access level" not in text
