import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ecp.settings")
application = get_wsgi_application()

from ecp.checks import log_start_up_warnings  # noqa: E402 (needs the apps loaded)

log_start_up_warnings()
