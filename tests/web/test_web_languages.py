"""The panel in the viewer's language and time zone: the browser's, or the user's own
choice on /account/preferences/ (issue 18 "Languages"; issue 17 point 6)."""

from datetime import UTC, datetime

import pytest

from devices.models import Mailbox, MobileDevice, OrgSettings, UserPreferences

PREFERENCES = "/account/preferences/"
QUARANTINE = "/devices/quarantine/"


@pytest.fixture
def hd(client, world):
    client.force_login(world.helpdesk)
    return client


@pytest.fixture
def org_admin(client, world):
    client.force_login(world.org)
    return client


def test_english_when_the_browser_asks_for_nothing(hd):
    page = hd.get(QUARANTINE).content.decode()
    assert '<html lang="en">' in page
    assert "Quarantined devices" in page


def test_german_from_accept_language(hd):
    response = hd.get(QUARANTINE, headers={"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"})
    page = response.content.decode()
    assert '<html lang="de">' in page
    assert ">Geräte in Quarantäne</h1>" in page
    assert ">Zulassen</button>" in page
    assert "Regel für ähnliche Geräte erstellen" in page
    assert response["Content-Language"] == "de"
    assert "Accept-Language" in response["Vary"]


def test_an_unsupported_browser_language_gives_english(hd):
    page = hd.get(QUARANTINE, headers={"Accept-Language": "tlh, ja;q=0.5"}).content.decode()
    assert "Quarantined devices" in page


def test_the_users_choice_beats_the_browser(hd, world):
    response = hd.post(PREFERENCES, {"language": "fr", "time_zone": ""})
    assert response.status_code == 302
    assert UserPreferences.objects.get(user=world.helpdesk).language == "fr"
    page = hd.get(QUARANTINE, headers={"Accept-Language": "de"}).content.decode()
    assert '<html lang="fr">' in page
    assert ">Appareils en quarantaine</h1>" in page
    # Back to the browser's language.
    hd.post(PREFERENCES, {"language": "", "time_zone": ""})
    page = hd.get(QUARANTINE, headers={"Accept-Language": "de"}).content.decode()
    assert ">Geräte in Quarantäne</h1>" in page


def test_the_preferences_page_is_in_the_menu_and_says_the_zone(hd):
    page = hd.get("/").content.decode()
    assert 'href="/account/preferences/"' in page
    assert "timezone.js" in page
    page = hd.get(PREFERENCES, headers={"Accept-Language": "es"}).content.decode()
    assert ">Sus preferencias</h1>" in page
    assert "Las horas se muestran en UTC" in page


def test_a_bad_time_zone_is_refused(hd, world):
    response = hd.post(PREFERENCES, {"language": "", "time_zone": "Mars/Olympus"})
    assert response.status_code == 200
    assert "Not a time zone: Mars/Olympus" in response.content.decode()
    assert not UserPreferences.objects.filter(user=world.helpdesk).exists()


def test_preferences_need_a_sign_in(client, world):
    response = client.get(PREFERENCES)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.fixture
def seen_at_noon_utc(world):
    noon = datetime(2026, 7, 1, 12, 0, 0, tzinfo=UTC)
    MobileDevice.objects.filter(pk=world.alice_phone.pk).update(first_seen=noon)
    return f"/devices/{world.alice_phone.pk}/"


def test_times_are_shown_in_utc_with_the_zone_named(hd, seen_at_noon_utc):
    page = hd.get(seen_at_noon_utc).content.decode()
    assert "2026-07-01 12:00:00 UTC" in page


def test_times_follow_the_browsers_zone_from_its_cookie(hd, seen_at_noon_utc):
    hd.cookies["ecp_tz"] = "Europe/Berlin"
    page = hd.get(seen_at_noon_utc).content.decode()
    assert "2026-07-01 14:00:00 CEST" in page
    hd.cookies["ecp_tz"] = "Not/AZone"  # a cookie is the browser's word: checked, not trusted
    page = hd.get(seen_at_noon_utc).content.decode()
    assert "2026-07-01 12:00:00 UTC" in page


def test_the_users_time_zone_beats_the_browsers(hd, world, seen_at_noon_utc):
    hd.cookies["ecp_tz"] = "Europe/Berlin"
    hd.post(PREFERENCES, {"language": "", "time_zone": "America/New_York"})
    page = hd.get(seen_at_noon_utc).content.decode()
    assert "2026-07-01 08:00:00 EDT" in page
    page = hd.get(PREFERENCES).content.decode()
    assert "Times are shown in America/New_York" in page
    assert "Your browser says Europe/Berlin." in page


def test_the_mailbox_page_shows_and_sets_the_language(org_admin, world):
    url = f"/mailboxes/{world.alice_box.pk}/"
    page = org_admin.get(url).content.decode()
    assert 'id="mail-language">English</span>' in page
    assert "the organisation default" in page
    Mailbox.objects.filter(pk=world.alice_box.pk).update(directory_language="fr")
    page = org_admin.get(url).content.decode()
    assert 'id="mail-language">Français</span>' in page
    assert "from the directory (preferredLanguage)" in page
    response = org_admin.post(url, {"op": "language", "language": "de"})
    assert response.status_code == 302
    assert Mailbox.objects.get(pk=world.alice_box.pk).language == "de"
    page = org_admin.get(url).content.decode()
    assert 'id="mail-language">Deutsch</span>' in page
    assert "Language of mailbox alice set to de" in page


def test_help_desk_cannot_set_a_mailboxs_language(hd, world):
    url = f"/mailboxes/{world.alice_box.pk}/"
    assert 'name="op" value="language"' not in hd.get(url).content.decode()
    response = hd.post(url, {"op": "language", "language": "de"})
    assert response.status_code == 403
    assert Mailbox.objects.get(pk=world.alice_box.pk).language == ""


def test_the_settings_page_sets_the_default_language_zone_and_inserts(org_admin):
    page = org_admin.get("/settings/").content.decode()
    assert 'name="default_language"' in page
    assert 'name="user_mail_insert_de"' in page
    form = {
        "default_access_level": "Quarantine",
        "admin_mail_recipients": "",
        "user_mail_insert": "Call 555-0100.",
        "user_mail_insert_de": "Rufen Sie 555-0100 an.",
        "user_mail_insert_fr": "",
        "default_language": "de",
        "time_zone": "Europe/Berlin",
        "discovery_window_minutes": "15",
        "send_user_mail": "on",
        "admin_mail_mode": "each",
        "admin_digest_minutes": "15",
        "self_approval": "never",
    }
    response = org_admin.post("/settings/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    org = OrgSettings.load()
    assert (org.default_language, org.time_zone) == ("de", "Europe/Berlin")
    assert org.user_mail_inserts == {"de": "Rufen Sie 555-0100 an."}
    assert org.user_mail_insert == "Call 555-0100."
    form["time_zone"] = "Europe/Atlantis"
    response = org_admin.post("/settings/", form)
    assert "Not a time zone" in response.content.decode()


def test_a_sign_in_brings_the_saved_choice(client, world):
    UserPreferences.objects.create(user=world.helpdesk, language="es", time_zone="Asia/Tokyo")
    client.force_login(world.helpdesk)
    page = client.get(QUARANTINE).content.decode()
    assert ">Dispositivos en cuarentena</h1>" in page
    assert "Las horas se muestran en Asia/Tokyo" in client.get(PREFERENCES).content.decode()
