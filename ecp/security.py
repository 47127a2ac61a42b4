"""HTTP security that settings alone do not give: the Content-Security-Policy,
and django-axes' hooks (who a sign-in attempt comes from, what it does not cover).

See docs/RELIABILITY.md, "Security settings".
"""

from axes.backends import AxesStandaloneBackend
from axes.handlers.database import AxesDatabaseHandler

# No inline script, handler or style anywhere (the pages load static files only);
# nobody may frame the ECP (the Allow button), forms post only to the ECP.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
)

# The gate throttles failed Basic sign-ins itself (per login and address, in the
# cache, without a database write): django-axes must not count, lock or answer them.
GATE_PATHS = ("/microsoft-server-activesync", "/eas/")


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response


def client_ip(request) -> str:
    """The address axes counts against: X-Real-IP from a trusted proxy, as the gate does.

    Behind nginx every request comes from 127.0.0.1; counting per REMOTE_ADDR
    would let one attacker lock every user out.
    """
    from devices.gate.credentials import client_ip as gate_client_ip

    return gate_client_ip(request)


def not_a_sign_in(request, credentials) -> bool:
    """AXES_WHITELIST_CALLABLE: gate requests are throttled by the gate, not by axes."""
    return request.path.lower().startswith(GATE_PATHS)


class SignInLockout(AxesStandaloneBackend):
    """Axes' lockout check for sign-ins; authenticate() without a request is no sign-in.

    Scripts and test clients call authenticate() with no request; axes would
    raise for those. Sign-in pages (ours and the admin's) always pass one.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


class SignInAttempts(AxesDatabaseHandler):
    """Axes' database handler, silent for the gate: no query on a failed device sign-in."""

    def user_login_failed(self, sender, credentials, request=None, **kwargs):
        if request is not None and not_a_sign_in(request, credentials):
            return None
        return super().user_login_failed(sender, credentials, request, **kwargs)
