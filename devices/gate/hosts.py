"""A Host that ALLOWED_HOSTS rejects, on the gate's paths, is ECP's configuration
error, not the device's: log it as one and answer 500, without Retry-After.

Django would answer 400 (DisallowedHost), which nginx passed on to the phone
as "not a valid ActiveSync request". This middleware comes first, before
anything else asks for the host.
"""

import logging

from django.core.exceptions import DisallowedHost
from django.http import HttpResponse

logger = logging.getLogger("ecp.gate")
GATE_PATHS = ("/eas/", "/microsoft-server-activesync")
SERVER_CONFIGURATION_ERROR = 500


class RejectedHostIsAConfigurationError:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info.lower().startswith(GATE_PATHS):
            try:
                request.get_host()
            except DisallowedHost:
                host = request.META.get("HTTP_HOST", "")[:255]
                logger.error(
                    "server configuration error: Host %r is not in ALLOWED_HOSTS, so the"
                    " gate cannot answer devices (set ALLOWED_HOSTS, or the Host nginx sends)",
                    host,
                )
                return HttpResponse(
                    "server configuration error\n",
                    status=SERVER_CONFIGURATION_ERROR,
                    content_type="text/plain",
                )
        return self.get_response(request)
