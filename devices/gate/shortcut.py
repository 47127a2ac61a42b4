"""The gate's endpoints skip the middleware that serves the panel's pages.

Sessions, CSRF, the signed-in user, messages, static files and django-axes do
nothing for a device's request (the gate's views are CSRF-exempt, read Basic
credentials themselves and throttle failures themselves), yet each costs its
share of every request: the profile of issue 19 counted about a fifth of a
known device's time in them (docs/PERFORMANCE.md). This middleware sits in
MIDDLEWARE after the metrics and the host check; for the four gate paths it
calls the view through GATE_MIDDLEWARE, which keeps what the answer's headers
and the protocol need (the security headers, the Content-Security-Policy,
X-Frame-Options, CommonMiddleware's checks and Content-Length). Every other
path takes the whole stack.
"""

from django.core.handlers.exception import convert_exception_to_response
from django.utils.module_loading import import_string

from . import views

ACTIVESYNC = "/microsoft-server-activesync"
# Path, lower-cased and without a trailing slash -> the view (ecp/urls.py routes the same).
GATE_VIEWS = {
    ACTIVESYNC: views.activesync,
    "/eas/auth": views.auth_request,
    "/eas/observe": views.observe,
    "/eas/answer": views.answer,
}
# The MIDDLEWARE entries that shape a gate answer, in MIDDLEWARE's order.
GATE_MIDDLEWARE = (
    "django.middleware.security.SecurityMiddleware",
    "ecp.security.ContentSecurityPolicyMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
)


def _path(path_info: str) -> str:
    path = path_info.lower()
    return path[:-1] if path.endswith("/") and len(path) > 1 else path


def _call_view(request):
    return GATE_VIEWS[_path(request.path_info)](request)


class GateShortcut:
    def __init__(self, get_response):
        self.get_response = get_response
        handler = convert_exception_to_response(_call_view)
        for path in reversed(GATE_MIDDLEWARE):
            handler = convert_exception_to_response(import_string(path)(handler))
        self.gate = handler

    def __call__(self, request):
        path = _path(request.path_info)
        # As ecp/urls.py routes: the ActiveSync path in any case, with or without a
        # trailing slash; /eas/... exactly as written.
        if path == ACTIVESYNC or (path in GATE_VIEWS and path == request.path_info):
            return self.gate(request)
        return self.get_response(request)
