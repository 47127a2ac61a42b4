"""Organisation settings: every field, and a confirmation before the default level changes."""

import html

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from devices.models import AccessState, AuditEvent, MobileDevice, OrgSettings

FORM = {
    "default_access_level": "Quarantine",
    "admin_mail_recipients": "it@example.org\nsecurity@example.org",
    "user_mail_insert": "Call the help desk on 4357.",
    "discovery_window_minutes": "15",
    "send_user_mail": "on",
    "admin_mail_mode": "each",
    "admin_digest_minutes": "15",
    "allow_health_probes": "on",
    "purge_quarantined_after_days": "",
    "self_approval": "never",
}


@pytest.fixture
def admin(world):
    client = Client()
    client.force_login(world.org)
    return client


def _text(response) -> str:
    return html.unescape(response.content.decode())


def _messages(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def _states():
    return sorted(MobileDevice.objects.values_list("access_state", flat=True))


def test_the_page_shows_the_current_settings(world, admin):
    form = admin.get("/settings/").context["form"]
    assert form["default_access_level"].value() == "Quarantine"
    assert form["discovery_window_minutes"].value() == 15
    for name in ("send_user_mail", "admin_mail_mode", "admin_digest_minutes", "new_device_alert"):
        assert name in form.fields


def test_switching_the_level_asks_first_and_says_what_it_will_do(world, admin):
    before, events = _states(), AuditEvent.objects.count()
    response = admin.post("/settings/", {**FORM, "default_access_level": "Allow"})
    assert response.status_code == 200
    assert "Switching to Allow releases 4 quarantined devices now." in _text(response)
    assert 'name="confirm_level" value="Allow"' in response.content.decode()
    assert _states() == before and AuditEvent.objects.count() == events
    assert OrgSettings.load().default_access_level == "Quarantine"

    response = admin.post(
        "/settings/",
        {**FORM, "default_access_level": "Allow", "confirm_level": "Allow"},
        follow=True,
    )
    assert response.redirect_chain[-1] == ("/settings/", 302)
    (message,) = _messages(response)
    assert "Default access level changed from Quarantine to Allow." in message
    assert "4 devices from quarantined to allowed" in message
    assert set(_states()) == {AccessState.ALLOWED}


def test_switching_to_quarantine_counts_the_devices_it_quarantines(world, admin):
    admin.post("/settings/", {**FORM, "default_access_level": "Allow", "confirm_level": "Allow"})
    response = admin.post("/settings/", FORM)
    assert "Switching to Quarantine puts 4 allowed devices in quarantine now." in _text(response)
    assert "grandfather" in _text(response)


def test_a_confirmation_for_another_level_does_not_count(world, admin):
    response = admin.post(
        "/settings/", {**FORM, "default_access_level": "Block", "confirm_level": "Allow"}
    )
    assert response.status_code == 200
    assert "Switching to Block blocks 4 quarantined devices now." in _text(response)
    assert OrgSettings.load().default_access_level == "Quarantine"


def test_other_settings_save_without_confirmation(world, admin):
    response = admin.post(
        "/settings/",
        {
            **FORM,
            "admin_mail_mode": "digest",
            "admin_digest_minutes": "30",
            "new_device_alert": "on",
            "allow_health_probes": "",
            "send_user_mail": "",
        },
        follow=True,
    )
    org = OrgSettings.load()
    assert org.admin_mail_recipients == ["it@example.org", "security@example.org"]
    assert org.user_mail_insert == "Call the help desk on 4357."
    assert (org.admin_mail_mode, org.admin_digest_minutes) == ("digest", 30)
    assert org.new_device_alert and not org.allow_health_probes and not org.send_user_mail
    (message,) = _messages(response)
    assert message.startswith("Organisation settings saved (")
    assert "admin mail recipients" in message


def test_nothing_changed_says_so(world, admin):
    admin.post("/settings/", FORM, follow=True)
    response = admin.post("/settings/", FORM, follow=True)
    assert _messages(response) == ["Nothing to save: the settings were already like this."]


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("admin_mail_recipients", "not-an-address", "Not an e-mail address: not-an-address"),
        ("discovery_window_minutes", "5000", "less than or equal to 1440"),
        ("admin_digest_minutes", "0", "greater than or equal to 1"),
        ("default_access_level", "Maybe", "Select a valid choice"),
    ],
)
def test_bad_values_are_refused(world, admin, field, value, error):
    response = admin.post("/settings/", {**FORM, field: value})
    assert response.status_code == 200
    assert error in _text(response)
    assert OrgSettings.load().admin_mail_recipients == []


def test_help_desk_reads_the_settings_but_cannot_save(world):
    client = Client()
    client.force_login(world.helpdesk)
    response = client.get("/settings/")
    text = _text(response)
    assert "Only Organization Management can change the organisation settings." in text
    assert "<fieldset disabled>" in text
    assert "Save settings" not in text
    assert client.post("/settings/", FORM).status_code == 403
