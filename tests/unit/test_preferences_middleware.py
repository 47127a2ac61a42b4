"""The language and time zone middleware: the gate's paths pay nothing for it, and a
page's language and zone do not outlive its request (a worker thread serves the gate
next)."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.http import HttpResponse
from django.test import RequestFactory
from django.utils import timezone, translation

from devices.preferences import PanelLocaleMiddleware


class UntouchableUser:
    @property
    def is_authenticated(self):
        raise AssertionError("the middleware looked at the user on a gate path")


def page(request):
    return HttpResponse(f"{translation.get_language()} {timezone.get_current_timezone_name()}")


@pytest.mark.parametrize(
    "path",
    [
        "/Microsoft-Server-ActiveSync",
        "/microsoft-server-activesync",
        "/eas/auth",
        "/eas/observe",
        "/eas/answer",
        "/healthz",
        "/readyz",
        "/metrics",
    ],
)
def test_the_gate_paths_skip_it(path):
    request = RequestFactory().post(path, HTTP_ACCEPT_LANGUAGE="de")
    request.user = UntouchableUser()
    request.COOKIES["ecp_tz"] = "Europe/Berlin"
    response = PanelLocaleMiddleware(page)(request)
    assert response.content == b"en UTC"
    assert "Content-Language" not in response.headers
    assert "Vary" not in response.headers


def test_a_page_gets_the_browsers_language_and_zone_for_its_request_only():
    request = RequestFactory().get("/devices/quarantine/", HTTP_ACCEPT_LANGUAGE="fr-CA,fr")
    request.user = AnonymousUser()
    request.COOKIES["ecp_tz"] = "America/Montreal"
    response = PanelLocaleMiddleware(page)(request)
    assert response.content == b"fr America/Montreal"
    assert response["Content-Language"] == "fr"
    assert translation.get_language() == "en"
    assert timezone.get_current_timezone_name() == "UTC"
