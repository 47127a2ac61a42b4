"""A panel user's language and time zone: their own choice, else the browser's.

The language: UserPreferences.language, else Accept-Language (Django's own
negotiation), else English. The time zone: UserPreferences.time_zone, else the
zone static/js/timezone.js reads from the browser (Intl) into a cookie, else
settings.TIME_ZONE. The gate's paths skip all of this: they render no page.
"""

from django.conf import settings
from django.utils import timezone, translation
from django.utils.cache import patch_vary_headers

from .languages import language_code, valid_time_zone

# Paths that never render a page in the viewer's language (the gate, probes, metrics).
SKIPPED = ("/microsoft-server-activesync", "/eas/", "/healthz", "/readyz", "/metrics")


def preferences_of(user):
    """The user's UserPreferences row, or None (one query, cached on the user)."""
    if not user.is_authenticated:
        return None
    if not hasattr(user, "_ecp_preferences"):
        from .models import UserPreferences

        user._ecp_preferences = UserPreferences.objects.filter(user=user).first()
    return user._ecp_preferences


def browser_time_zone(request) -> str:
    return valid_time_zone(request.COOKIES.get(settings.ECP_TIME_ZONE_COOKIE, ""))


def chosen(request) -> tuple[str, str]:
    """(language, time zone) for this request's pages."""
    prefs = preferences_of(request.user)
    language = language_code(prefs.language) if prefs else ""
    if not language:
        language = translation.get_language_from_request(request)
    zone = valid_time_zone(prefs.time_zone) if prefs else ""
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
