"""Start-up checks of the configuration that Django's own checks do not cover.

Mails carry absolute links built on ECP_BASE_URL; when its host is not one the
server answers for (ALLOWED_HOSTS), every link in every mail ends in a 400.
Production settings turn the warning on (ECP_CHECK_BASE_URL_HOST): the check
runs with `manage.py check` / `migrate`, and ecp.wsgi logs it when gunicorn starts.
"""

import logging
from urllib.parse import urlsplit

from django.conf import settings
from django.core import checks
from django.http.request import split_domain_port, validate_host

logger = logging.getLogger("ecp")


def base_url_host_warnings() -> list[checks.Warning]:
    if not getattr(settings, "ECP_CHECK_BASE_URL_HOST", False):
        return []
    netloc = urlsplit(settings.ECP_BASE_URL).netloc.rpartition("@")[2]
    host, _port = split_domain_port(netloc.lower())
    if host and validate_host(host, settings.ALLOWED_HOSTS):
        return []
    return [
        checks.Warning(
            f"ECP_BASE_URL ({settings.ECP_BASE_URL}) names the host {host or netloc!r},"
            f" which is not in ALLOWED_HOSTS ({', '.join(settings.ALLOWED_HOSTS) or 'empty'}):"
            " the links in mails will not open.",
            hint="Set ECP_BASE_URL to the address people reach the control panel at,"
            " or add its host to ALLOWED_HOSTS.",
            id="ecp.W001",
        )
    ]


@checks.register(checks.Tags.compatibility)
def check_base_url_host(app_configs=None, **kwargs):
    return base_url_host_warnings()


def log_start_up_warnings() -> None:
    """gunicorn runs no system checks: say it in the server's log instead."""
    for warning in base_url_host_warnings():
        logger.warning("%s %s (%s)", warning.msg, warning.hint, warning.id)
