"""A mailbox's language: where it comes from, and that its mails and phone notice use it
(issue 18, "Languages"). The panel's side is in tests/web/test_web_languages.py."""

import base64

import pytest
from django.core.cache import cache
from django.core.management.base import CommandError
from django.test import Client

from devices import actions, evaluation
from devices.audit import Actor
from devices.directory.entries import entry
from devices.eas import build_device_information_body
from devices.eas.client import find_text, folder_sync_request, sync_request
from devices.gate import notice
from devices.languages import language_code, mailbox_language
from devices.models import AuditSource, Mailbox, MobileDevice, OrgSettings
from notifications.models import Kind, Notification
from notifications.rendering import render
from tests.cli_support import eas, eas_json
from tests.wbxml_reference import ours_as_reference, reference_tree

ADMIN = Actor(source=AuditSource.CLI)
GATE = "/Microsoft-Server-ActiveSync"
WBXML = "application/vnd.ms-sync.wbxml"


@pytest.fixture(autouse=True)
def _fresh_gate(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.ECP_NOTICE_HOLD_SECONDS = 0
    settings.ECP_NOTICE_POLL_SECONDS = 0
    settings.ECP_BASE_URL = "https://ecp.example.org"
    cache.clear()
    evaluation._compiled = None
    yield
    cache.clear()


@pytest.fixture
def org(db):
    return actions.set_org_settings(
        ADMIN,
        default_access_level="Quarantine",
        discovery_window_minutes=0,
        admin_mail_recipients=["helpdesk@contoso.com"],
        user_mail_insert="Questions? Call the helpdesk on 555-0100.",
    ).obj


@pytest.fixture
def alice(org):
    return actions.create_mailbox(
        ADMIN,
        alias="alice",
        email="alice@contoso.com",
        display_name="Alice Liddell",
        password="alice-secret",
    ).obj


def quarantined_phone(mailbox, device_id="ALICEPHONE1") -> MobileDevice:
    """A phone that reports itself and is quarantined by the organisation default."""
    return actions.record_contact(
        Actor(source=AuditSource.GATE),
        mailbox,
        actions.Contact(
            device_id=device_id,
            device_type="iPhone",
            user_agent="Apple-iPhone15C2/2104.136",
            info={"model": "iPhone15C2", "os": "iOS 17.4 21E219"},
        ),
    )


def mail(kind, recipient="alice@contoso.com"):
    row = Notification.objects.get(kind=kind, recipient=recipient)
    return render(row.kind, row.context)


# --- Where the language comes from -------------------------------------------------


@pytest.mark.parametrize(
    "value, code",
    [
        ("de", "de"),
        ("de-DE", "de"),
        ("de_AT", "de"),
        ("DE", "de"),
        ("German", "de"),
        ("Deutsch", "de"),
        ("fr-CA, en;q=0.8", "fr"),
        ("Français", "fr"),
        ("es-419", "es"),
        ("Spanish", "es"),
        ("en-US", "en"),
        ("tlh", ""),  # Klingon: not offered
        ("xx-YY", ""),
        ("", ""),
        (None, ""),
        ("; q=1", ""),
    ],
)
def test_language_codes_are_read_from_tags_and_names(value, code):
    assert language_code(value) == code


@pytest.mark.parametrize(
    "admin, directory, device, expected",
    [
        ("es", "de", "en", "es"),  # the admin's choice first
        ("", "de", "en", "de"),  # then the directory's preferredLanguage
        ("", "", "en", "en"),  # then the phone's DeviceOSLanguage
        ("", "", "", "fr"),  # then the organisation default
        ("tlh", "", "", "fr"),  # an unsupported value counts as none
    ],
)
def test_the_precedence_admin_directory_device_org_default(admin, directory, device, expected):
    mailbox = Mailbox(language=admin, directory_language=directory, device_language=device)
    assert mailbox_language(mailbox, OrgSettings(default_language="fr")) == expected


def test_an_unsupported_org_default_falls_back_to_english():
    assert mailbox_language(Mailbox(), OrgSettings(default_language="xx")) == "en"


def test_the_directory_entry_reads_preferred_language(settings):
    settings.ECP_LDAP_USERNAME_ATTRIBUTES = ["uid"]
    settings.ECP_LDAP_DISABLED_ATTRIBUTE = ""
    settings.ECP_LDAP_DISABLED_VALUE = ""
    attrs = {"uid": [b"jdoe"], "mail": [b"jdoe@example.org"], "preferredLanguage": [b"de-CH"]}
    assert entry("uid=jdoe,dc=example,dc=org", attrs).language == "de"
    attrs["preferredLanguage"] = [b"tlh"]
    assert entry("uid=jdoe,dc=example,dc=org", attrs).language == ""
    del attrs["preferredLanguage"]
    assert entry("uid=jdoe,dc=example,dc=org", attrs).language == ""


def test_the_phone_reports_its_language_in_device_information(alice):
    token = base64.b64encode(b"alice:alice-secret").decode()
    body = build_device_information_body(
        "Settings", {"model": "iPhone15C2", "os": "iOS 17.4", "os_language": "Deutsch"}
    )
    response = Client().post(
        GATE,
        body,
        content_type=WBXML,
        headers={
            "Authorization": f"Basic {token}",
            "MS-ASProtocolVersion": "14.1",
            "User-Agent": "Apple-iPhone15C2/2104.136",
        },
        QUERY_STRING="Cmd=Settings&User=alice&DeviceId=ALICEPHONE1&DeviceType=iPhone",
    )
    assert response.status_code == 200
    alice.refresh_from_db()
    assert alice.device_language == "de"
    assert MobileDevice.objects.get().device_os_language == "Deutsch"
    # The admin's choice still comes first.
    actions.set_mailbox_language(ADMIN, alice, "fr")
    assert mailbox_language(alice, OrgSettings.load()) == "fr"


def test_set_mailbox_language_from_the_cli(alice):
    out = eas("set-mailbox", "alice", "--language", "de-DE")
    assert "Language of mailbox alice set to de" in out
    [row] = eas_json("get-mailbox", "alice")
    assert (row["language"], row["mail_language"]) == ("de", "de")
    eas("set-mailbox", "alice", "--language", "none")
    [row] = eas_json("get-mailbox", "alice")
    assert (row["language"], row["mail_language"]) == ("", "en")


def test_an_unsupported_language_is_refused_with_the_supported_ones(alice):
    with pytest.raises(CommandError) as error:
        eas("set-mailbox", "alice", "--language", "xx", "--display-name", "Changed")
    assert "Unsupported language 'xx'" in str(error.value)
    assert "en, de, fr, es" in str(error.value)
    alice.refresh_from_db()
    assert (alice.language, alice.display_name) == ("", "Alice Liddell")  # nothing changed


def test_org_settings_from_the_cli(org):
    eas("set-org-settings", "--default-language", "fr", "--time-zone", "Europe/Paris")
    eas("set-org-settings", "--user-mail-insert", "Appelez le 555-0100.", "--language", "fr")
    org = OrgSettings.load()
    assert (org.default_language, org.time_zone) == ("fr", "Europe/Paris")
    assert org.user_mail_inserts == {"fr": "Appelez le 555-0100."}
    assert org.user_mail_insert == "Questions? Call the helpdesk on 555-0100."
    with pytest.raises(CommandError, match="Unknown time zone 'Mars/Olympus'"):
        eas("set-org-settings", "--time-zone", "Mars/Olympus")
    with pytest.raises(CommandError, match="Unsupported language 'xx'"):
        eas("set-org-settings", "--default-language", "xx")


# --- The mails -----------------------------------------------------------------------


def test_the_german_user_mail(alice):
    actions.set_mailbox_language(ADMIN, alice, "de")
    actions.set_org_settings(ADMIN, user_mail_inserts={"de": "Fragen? Helpdesk: 555-0100."})
    quarantined_phone(alice)
    subject, text, html = mail(Kind.USER_QUARANTINED)

    assert subject == ("Ihr iPhone 14 Pro wartet auf die Zulassung zur E-Mail-Synchronisierung")
    assert text.startswith("Hallo Alice Liddell,\n\ndas unten genannte Mobilgerät,")
    assert "das das Postfach alice@contoso.com synchronisiert, ist in\nQuarantäne" in text
    assert "  Modell:         iPhone 14 Pro (iPhone15C2)\n" in text
    assert "  Betriebssystem: iOS 17.4 21E219\n" in text
    assert "  Zugriffsstatus: In Quarantäne\n" in text
    assert "  Grund:          die Standardzugriffsebene der Organisation" in text
    assert "Ein Hinweis Ihrer IT-Abteilung:\n\nFragen? Helpdesk: 555-0100." in text
    assert "Ihre Geräte und ihr Status: https://ecp.example.org/my/devices/" in text
    # With the "Was this you?" links (wt1), they replace the "tell your IT department" line.
    assert "Waren Sie das?\n\nJa, das ist mein neues Telefon:\n" in text
    assert "Nein, das war ich nicht (das Gerät wird sofort blockiert;" in text
    for english in ("Hello", "quarantine:", "Model:", "A word from", "Your devices"):
        assert english not in text
    assert '<html lang="de">' in html
    assert "<b>Quarantäne</b>: Es kann keine E-Mails" in html
    assert ">Ihre Geräte und ihren Status ansehen</a>" in html
    # The admins' mail of the same transition is in the organisation's language.
    admin_subject, admin_text, _ = mail(Kind.ADMIN_QUARANTINED, "helpdesk@contoso.com")
    assert admin_subject.startswith("Quarantined: iPhone 14 Pro of Alice Liddell (alice)")
    assert "Waiting:" in admin_text


def test_a_french_blocked_mail(alice):
    actions.set_mailbox_language(ADMIN, alice, "fr")
    actions.set_org_settings(ADMIN, default_access_level="Block")
    quarantined_phone(alice)
    subject, text, _ = mail(Kind.USER_BLOCKED)
    assert subject == "Votre iPhone 14 Pro est bloqué pour la synchronisation du courrier"
    assert text.startswith("Bonjour Alice Liddell,\n\nL'appareil mobile ci-dessous est bloqué")
    assert "  Modèle:         iPhone 14 Pro (iPhone15C2)\n" in text
    assert "Si vous pensez qu'il s'agit d'une erreur, contactez votre service informatique." in (
        text
    )


def test_a_spanish_approval_mail(alice):
    actions.set_mailbox_language(ADMIN, alice, "es")
    device = quarantined_phone(alice)
    actions.allow_device(ADMIN, alice, device.device_id)
    subject, text, _ = mail(Kind.USER_APPROVED)
    assert subject == "Su iPhone 14 Pro se ha aprobado y ya sincroniza el correo"
    assert text.startswith("Hola, Alice Liddell:\n\nBuenas noticias:")
    assert "  Estado de acceso: Permitido\n" in text  # a label longer than the column


def test_the_org_default_language_speaks_for_mailboxes_without_one(alice):
    actions.set_org_settings(ADMIN, default_language="de")
    quarantined_phone(alice)
    subject, _, _ = mail(Kind.USER_QUARANTINED)
    assert "wartet auf die Zulassung" in subject
    admin_subject, _, _ = mail(Kind.ADMIN_QUARANTINED, "helpdesk@contoso.com")
    assert admin_subject.startswith("In Quarantäne: iPhone 14 Pro von Alice Liddell (alice)")


@pytest.mark.parametrize(
    "inserts, default, language, expected",
    [
        ({"de": "Deutsch", "fr": "Français"}, "en", "de", "Deutsch"),
        ({"fr": "Français"}, "fr", "de", "Français"),  # the default language's insert
        ({"fr": "Français"}, "en", "de", "Plain"),  # then the one without a language
        ({}, "en", "es", "Plain"),
    ],
)
def test_the_user_mail_insert_per_language(inserts, default, language, expected):
    org = OrgSettings(user_mail_insert="Plain", user_mail_inserts=inserts, default_language=default)
    assert org.user_mail_insert_for(language) == expected


def test_a_stored_mail_in_an_unknown_language_renders_in_english(alice):
    quarantined_phone(alice)
    row = Notification.objects.get(kind=Kind.USER_QUARANTINED)
    row.context["language"] = "xx"
    row.context["time_zone"] = "Nowhere/Special"
    subject, text, _ = render(row.kind, row.context)
    assert subject.startswith("Your iPhone 14 Pro is waiting for approval")
    assert text.startswith("Hello Alice Liddell,")


def test_times_in_mails_name_the_org_time_zone(alice):
    actions.set_org_settings(ADMIN, time_zone="Asia/Tokyo")
    quarantined_phone(alice)
    _, text, html = mail(Kind.ADMIN_QUARANTINED, "helpdesk@contoso.com")
    assert " JST)" in text and " JST)" in html
    actions.set_org_settings(ADMIN, time_zone="UTC")
    quarantined_phone(alice, "ALICEPHONE2")
    rows = Notification.objects.filter(kind=Kind.ADMIN_QUARANTINED).order_by("pk")
    assert " UTC)" in render(rows[1].kind, rows[1].context)[1]


# --- The phone notice ------------------------------------------------------------------


def read(response):
    assert response.status_code == 200, response.content
    from devices.eas import decode

    ours = decode(response.content)
    assert ours_as_reference(ours) == reference_tree(response.content)
    return ours


def phone(cmd, body):
    token = base64.b64encode(b"alice:alice-secret").decode()
    return Client().post(
        GATE,
        body,
        content_type=WBXML,
        headers={
            "Authorization": f"Basic {token}",
            "MS-ASProtocolVersion": "14.1",
            "User-Agent": "Apple-iPhone15C2/2104.136",
        },
        QUERY_STRING=f"Cmd={cmd}&User=alice&DeviceId=ALICEPHONE1&DeviceType=iPhone",
    )


def test_the_phone_notice_is_in_the_mailboxs_language(alice):
    actions.set_mailbox_language(ADMIN, alice, "de")
    quarantined_phone(alice)
    hierarchy = read(phone("FolderSync", folder_sync_request("0")))
    assert (
        find_text(
            hierarchy,
            "FolderHierarchy:Changes",
            "FolderHierarchy:Add",
            "FolderHierarchy:DisplayName",
        )
        == "Posteingang"
    )
    primed = read(phone("Sync", sync_request(notice.INBOX_ID, "0")))
    key = find_text(
        primed.find("AirSync:Collections").find("AirSync:Collection"), "AirSync:SyncKey"
    )
    delivered = read(phone("Sync", sync_request(notice.INBOX_ID, key)))
    data = (
        delivered.find("AirSync:Collections")
        .find("AirSync:Collection")
        .find("AirSync:Commands")
        .find("AirSync:Add")
        .find("AirSync:ApplicationData")
    )
    assert find_text(data, "Email:Subject") == (
        "Ihr iPhone 14 Pro wartet auf die Zulassung zur E-Mail-Synchronisierung"
    )
    body = find_text(data, "AirSyncBase:Body", "AirSyncBase:Data")
    assert body.startswith("Hallo Alice Liddell,")
    assert "Zugriffsstatus: In Quarantäne" in body


def test_the_gate_answers_without_the_panels_locale(alice):
    """The gate's paths skip the language and time zone middleware."""
    quarantined_phone(alice)
    token = base64.b64encode(b"alice:alice-secret").decode()
    response = Client().post(
        GATE,
        folder_sync_request("0"),
        content_type=WBXML,
        headers={
            "Authorization": f"Basic {token}",
            "MS-ASProtocolVersion": "14.1",
            "Accept-Language": "de",
        },
        QUERY_STRING="Cmd=FolderSync&User=alice&DeviceId=ALICEPHONE1&DeviceType=iPhone",
    )
    assert response.status_code == 200
    assert "Content-Language" not in response.headers
    assert "Accept-Language" not in response.headers.get("Vary", "")
    # The notice stays in the mailbox's language (English here), whatever the phone asks.
    root = read(response)
    assert (
        find_text(
            root, "FolderHierarchy:Changes", "FolderHierarchy:Add", "FolderHierarchy:DisplayName"
        )
        == "Inbox"
    )
