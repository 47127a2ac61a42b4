"""Issue 17, point 6, and issue 18's panel language, in the browser at 1366 px and 390 px:
times follow the browser's own time zone (static/js/timezone.js reads Intl into a cookie)
and name it, until the user picks a zone; the panel speaks the browser's language until
the user picks one."""

from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture's need_service() reports it
    expect = None

from devices.models import MobileDevice, UserPreferences

from .conftest import DESKTOP, PHONE, sign_in

pytestmark = pytest.mark.browser

WIDTHS = pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1366px", "390px"])


@pytest.fixture
def browser_in(browser, live_server):
    """browser_in(viewport, zone, locale) -> a page whose browser lives in that zone and
    asks for that language (Accept-Language)."""
    contexts = []

    def make(viewport, zone, locale="en-GB"):
        context = browser.new_context(
            viewport=viewport, base_url=live_server.url, timezone_id=zone, locale=locale
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def _abbreviation(zone: str) -> str:
    return timezone.now().astimezone(ZoneInfo(zone)).strftime("%Z")


@WIDTHS
def test_times_follow_the_browsers_zone_then_the_users_choice(demo, browser_in, viewport):
    page = browser_in(viewport, "Asia/Tokyo")
    sign_in(page, "admin", demo.password)
    # The first page sets the cookie; every page after it shows the browser's zone.
    page.goto("/account/preferences/")
    page.reload()
    expect(page.locator("#zone-now")).to_contain_text("Times are shown in Asia/Tokyo")
    expect(page.locator("#zone-now")).to_contain_text(_abbreviation("Asia/Tokyo"))
    device = MobileDevice.objects.filter(mailbox__isnull=False).order_by("pk").first()
    page.goto(device.get_absolute_url())
    since = device.state_changed_at.astimezone(ZoneInfo("Asia/Tokyo"))
    since = since.strftime("%Y-%m-%d %H:%M JST")
    expect(page.get_by_text(since, exact=False).first).to_be_visible()

    page.goto("/account/preferences/")
    page.get_by_label("Time zone").fill("America/New_York")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#messages")).to_contain_text("Your preferences were saved.")
    expect(page.locator("#zone-now")).to_contain_text("Times are shown in America/New_York")
    expect(page.locator("#zone-now")).to_contain_text(_abbreviation("America/New_York"))
    assert UserPreferences.objects.get(user=demo.admin).time_zone == "America/New_York"
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport["width"], f"the preferences page scrolls sideways: {width}px"

    # A bad zone is refused at its field, and the saved one stays.
    page.get_by_label("Time zone").fill("Mars/Olympus")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Not a time zone: Mars/Olympus").first).to_be_visible()
    assert UserPreferences.objects.get(user=demo.admin).time_zone == "America/New_York"


@WIDTHS
def test_the_panel_speaks_the_browsers_language_until_the_user_picks_one(
    demo, browser_in, viewport
):
    page = browser_in(viewport, "Europe/Berlin", locale="de-DE")
    page.goto("/accounts/login/")
    expect(page.get_by_role("heading", name="Anmelden")).to_be_visible()
    page.get_by_label("Benutzername").fill("admin")
    page.get_by_label("Passwort").fill(demo.password)
    page.get_by_role("button", name="Anmelden").click()
    page.goto("/account/preferences/")
    expect(page.get_by_role("heading", name="Ihre Einstellungen")).to_be_visible()
    assert page.evaluate("document.documentElement.lang") == "de"

    page.get_by_label("Sprache").select_option("fr")
    page.get_by_role("button", name="Speichern").click()
    expect(page.get_by_role("heading", name="Vos préférences")).to_be_visible()
    assert page.evaluate("document.documentElement.lang") == "fr"
    assert UserPreferences.objects.get(user=demo.admin).language == "fr"
