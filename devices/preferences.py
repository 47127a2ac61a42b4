"""A panel user's language and time zone: their own choice, else the browser's.

The language: UserPreferences.language, else Accept-Language (Django's own
negotiation), else English. The time zone: UserPreferences.time_zone, else the
zone static/js/timezone.js reads from the browser (Intl) into a cookie, else
settings.TIME_ZONE. The user's choice travels in the session (set at sign-in and on
saving), so no page pays a query for it. The gate's paths skip all of this: they
render no page.
"""

from urllib.parse import unquote

from django.conf import settings
from django.utils import timezone, translation
from django.utils.cache import patch_vary_headers

from .languages import language_code, valid_time_zone

# Paths that never render a page in the viewer's language (the gate, probes, metrics).
SKIPPED = ("/microsoft-server-activesync", "/eas/", "/healthz", "/readyz", "/metrics")


SESSION_KEY = "ecp_preferences"


def load_preferences(user) -> dict:
    """{"language": ..., "time_zone": ...} as the user chose them ("": the browser's)."""
    from .models import UserPreferences

    row = UserPreferences.objects.filter(user=user).values("language", "time_zone").first()
    return row or {"language": "", "time_zone": ""}


def remember(request, preferences: dict) -> None:
    """Keep them in the session: no page pays a query for them."""
    request.session[SESSION_KEY] = {
        "language": preferences.get("language", ""),
        "time_zone": preferences.get("time_zone", ""),
    }


def on_sign_in(sender, request, user, **kwargs) -> None:
    """user_logged_in: the session starts with the user's preferences (devices.apps)."""
    if request is not None and hasattr(request, "session"):
        remember(request, load_preferences(user))


def preferences_of(request) -> dict | None:
    """The signed-in user's preferences, from the session (loaded once if missing)."""
    if not request.user.is_authenticated:
        return None
    stored = request.session.get(SESSION_KEY)
    if stored is None:  # a session from before preferences existed
        stored = load_preferences(request.user)
        remember(request, stored)
    return stored


def browser_time_zone(request) -> str:
    # static/js/timezone.js writes the zone URL-encoded (Asia%2FTokyo); Django hands
    # cookies over as they came.
    return valid_time_zone(unquote(request.COOKIES.get(settings.ECP_TIME_ZONE_COOKIE, "")))


def chosen(request) -> tuple[str, str]:
    """(language, time zone) for this request's pages."""
    prefs = preferences_of(request) or {}
    language = language_code(prefs.get("language"))
    if not language:
        language = translation.get_language_from_request(request)
    zone = valid_time_zone(prefs.get("time_zone"))
    return language, zone or browser_time_zone(request) or settings.TIME_ZONE


class PanelLocaleMiddleware:
    """Django's LocaleMiddleware, with the user's own choice first, and the time zone."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.lower().startswith(SKIPPED):
            return self.get_response(request)
        language, zone = chosen(request)
        translation.activate(language)
        request.LANGUAGE_CODE = translation.get_language()
        timezone.activate(zone)
        request.time_zone = zone
        try:
            response = self.get_response(request)
        finally:
            # A worker thread serves the gate next: it must not inherit this viewer's.
            translation.deactivate()
            timezone.deactivate()
        patch_vary_headers(response, ("Accept-Language", "Cookie"))
        response.headers.setdefault("Content-Language", language)
        return response
