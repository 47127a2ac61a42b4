"""Production: ECP behind nginx, which terminates TLS (docs/RELIABILITY.md, "Security settings").

    DJANGO_SETTINGS_MODULE=ecp.settings_production gunicorn ecp.wsgi ...

Everything in ecp.settings, with the security switches on by default: secure
cookies, HSTS for a year, https redirects (nginx sends X-Forwarded-Proto), and
DEBUG refused. Each switch still reads its environment variable, so one can
be turned off deliberately (e.g. ECP_HSTS_PRELOAD=false). With a SECRET_KEY
and ALLOWED_HOSTS set, `manage.py check --deploy` reports nothing.
"""

import os

# Production defaults, unless the environment says otherwise; set before the base reads them.
for _name, _value in {
    "ECP_BEHIND_TLS_PROXY": "true",
    "ECP_SECURE_COOKIES": "true",
    "ECP_SSL_REDIRECT": "true",
    "ECP_HSTS_SECONDS": "31536000",
    "ECP_HSTS_INCLUDE_SUBDOMAINS": "true",
    "ECP_HSTS_PRELOAD": "true",
}.items():
    os.environ.setdefault(_name, _value)

from .env import ConfigError  # noqa: E402
from .settings import *  # noqa: E402, F403
from .settings import DEBUG  # noqa: E402

if DEBUG:
    raise ConfigError("DEBUG must be off with ecp.settings_production")

# Warn (manage.py check, and gunicorn's log at start-up) when the links in mails
# point at a host this server does not answer for (ecp/checks.py).
ECP_CHECK_BASE_URL_HOST = True
