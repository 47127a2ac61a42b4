"""Org settings: read and change (Get/Set-ActiveSyncOrganizationSettings)."""

import pytest

from devices.models import AuditEvent, AuditSource, MobileDevice, OrgSettings
from tests import test_api_support as support

cast, client_for = support.cast, support.client_for  # the shared fixtures

URL = "/api/v1/org-settings"


@pytest.fixture
def org(client_for):
    return client_for("org")


def test_read(cast, client_for):
    body = client_for("helpdesk").get(URL).json()
    assert body["default_access_level"] == "Quarantine"
    assert body["admin_mail_recipients"] == []
    assert body["discovery_window_minutes"] == 15


def test_a_new_default_answers_with_the_devices_it_changed(cast, org):
    response = org.patch(URL, {"default_access_level": "allow"})
    assert response.status_code == 200
    body = response.json()
    assert body["org_settings"]["default_access_level"] == "Allow"
    assert body["changed"] == 3
    assert body["changes"] == [{"from": "Quarantined", "to": "Allowed", "count": 3}]
    assert set(MobileDevice.objects.values_list("access_state", flat=True)) == {"Allowed"}
    event = AuditEvent.objects.filter(action="org_settings.update").last()
    assert event.source == AuditSource.API


def test_only_the_fields_given_change(cast, org):
    response = org.patch(
        URL, {"admin_mail_recipients": ["helpdesk@example.org"], "user_mail_insert": "Call 4711."}
    )
    assert response.status_code == 200
    assert response.json()["changed"] == 0
    org_settings = OrgSettings.load()
    assert org_settings.admin_mail_recipients == ["helpdesk@example.org"]
    assert org_settings.user_mail_insert == "Call 4711."
    assert org_settings.default_access_level == "Quarantine"


@pytest.mark.parametrize(
    "body,field",
    [
        ({"admin_mail_recipients": ["not an address"]}, "admin_mail_recipients.0"),
        ({"admin_mail_recipients": "a@example.org"}, "admin_mail_recipients"),
        ({"discovery_window_minutes": 2000}, "discovery_window_minutes"),
        ({"default_access_level": "Sometimes"}, "default_access_level"),
        ({"admin_digest_minutes": 0}, "admin_digest_minutes"),
        ({"send_user_mail": "perhaps"}, "send_user_mail"),
    ],
)
def test_bad_input_is_400_and_changes_nothing(cast, org, body, field):
    before = OrgSettings.load().updated_at
    response = org.patch(URL, body)
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert OrgSettings.load().updated_at == before


def test_help_desk_reads_but_does_not_change(cast, client_for):
    response = client_for("helpdesk").patch(URL, {"default_access_level": "Allow"})
    assert response.status_code == 403
    assert response.json()["message"] == (
        "Only Organization Management can change the organisation settings."
    )
    assert OrgSettings.load().default_access_level == "Quarantine"


def test_languages_time_zone_and_inserts_per_language(cast, org):
    response = org.patch(
        URL,
        {
            "default_language": "de",
            "time_zone": "Europe/Berlin",
            "user_mail_inserts": {"de": "Rufen Sie 4711 an.", "fr": ""},
        },
    )
    assert response.status_code == 200
    body = response.json()["org_settings"]
    assert (body["default_language"], body["time_zone"]) == ("de", "Europe/Berlin")
    assert body["user_mail_inserts"] == {"de": "Rufen Sie 4711 an."}
    for bad in ({"default_language": "xx"}, {"time_zone": "Mars/Olympus"}):
        assert org.patch(URL, bad).status_code == 400
    assert OrgSettings.load().time_zone == "Europe/Berlin"
