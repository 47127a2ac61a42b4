"""The gate's upstream mode: the real EAS server says whether a password is right.

An OPTIONS request with the device's own Authorization header to
ECP_GATE_UPSTREAM_URL (e.g. https://mail.example.org/Microsoft-Server-ActiveSync):
200 means valid, 401 or 403 wrong; anything else, or no answer within
ECP_GATE_UPSTREAM_TIMEOUT seconds, means ECP cannot decide (DirectoryUnavailable:
the gate answers 503, failing closed). Works with any EAS server, with no
directory settings. Redirects are not followed: a login page is not a "yes".
"""

import http.client
import logging
import ssl
import urllib.error
import urllib.request

from django.conf import settings

from . import DirectoryUnavailable

log = logging.getLogger(__name__)
VALID = frozenset({200})
WRONG = frozenset({401, 403})


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _opener():
    context = ssl.create_default_context(cafile=settings.ECP_GATE_UPSTREAM_CA_FILE or None)
    return urllib.request.build_opener(_NoRedirect, urllib.request.HTTPSHandler(context=context))


def verify(authorization: str) -> bool:
    """True for a valid login, False for a wrong one; DirectoryUnavailable otherwise."""
    # The scheme is http or https: ecp.settings refuses any other ECP_GATE_UPSTREAM_URL.
    request = urllib.request.Request(  # noqa: S310
        settings.ECP_GATE_UPSTREAM_URL,
        method="OPTIONS",
        headers={
            "Authorization": authorization,
            "User-Agent": "ECP-gate/1 (credential check)",
            "MS-ASProtocolVersion": "14.1",
        },
    )
    try:
        with _opener().open(request, timeout=settings.ECP_GATE_UPSTREAM_TIMEOUT) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (OSError, http.client.HTTPException) as exc:  # refused, timeout, TLS, garbage
        log.warning("upstream %s did not answer: %r", settings.ECP_GATE_UPSTREAM_URL, exc)
        raise DirectoryUnavailable(f"upstream server unavailable: {type(exc).__name__}") from exc
    if status in VALID:
        return True
    if status in WRONG:
        return False
    log.warning("upstream %s answered %s to OPTIONS", settings.ECP_GATE_UPSTREAM_URL, status)
    raise DirectoryUnavailable(f"upstream server answered {status}")
