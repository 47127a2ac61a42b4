"""One error shape for every error: {"message": "...", "errors": {"field": ["..."]}}.

`message` is a sentence for people; `errors` names the request body fields or
query parameters that were wrong (dotted for nested ones: "add_allowed.0").
ActionError from devices.actions is a 400 with its message, ConflictError a
409. A lost or refused database connection (OperationalError, InterfaceError)
is a 503 with Retry-After, wherever in the request it happens: in a view or in
authentication (exception_handler), or in a middleware such as the session's
(server_error, the project's handler500, for every path under /api/). Any
other unexpected error under /api/ is a 500 in the same shape.
"""

import sys

from django.db import InterfaceError, OperationalError
from django.http import JsonResponse
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

from devices.actions import ActionError, ConflictError


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "This conflicts with something that already exists."
    default_code = "conflict"


class ActionFailed(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "Nothing was changed."
    default_code = "invalid"


class DatabaseUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The database is unavailable; try again shortly."
    default_code = "database_unavailable"


RETRY_AFTER = "30"  # seconds, as the gate's own 503
# A lost or refused connection; not an IntegrityError or DataError, which are our bugs.
OUTAGE = (OperationalError, InterfaceError)


def exception_handler(exc, context):
    if isinstance(exc, ConflictError):
        exc = Conflict(str(exc))
    elif isinstance(exc, ActionError):
        exc = ActionFailed(str(exc))
    elif isinstance(exc, OUTAGE):
        exc = DatabaseUnavailable()
    response = drf_exception_handler(exc, context)
    if response is not None:
        response.data = error_body(response.data)
        if isinstance(exc, DatabaseUnavailable):
            response["Retry-After"] = RETRY_AFTER
    return response


def server_error(request, *args, **kwargs):
    """handler500: under /api/, the error shape (503 for an outage); elsewhere Django's page.

    Django calls it while handling the exception, so sys.exc_info() names it.
    It reaches here from what DRF does not see: the middleware (the session
    saved after the view) and plain Django views under /api/.
    """
    if not request.path.startswith("/api/"):
        return defaults.server_error(request, *args, **kwargs)
    if isinstance(sys.exc_info()[1], OUTAGE):
        response = JsonResponse(
            {"message": str(DatabaseUnavailable.default_detail), "errors": {}}, status=503
        )
        response["Retry-After"] = RETRY_AFTER
        return response
    return JsonResponse({"message": "Internal server error.", "errors": {}}, status=500)


def error_body(detail) -> dict:
    errors: dict[str, list[str]] = {}
    general: list[str] = []
    if isinstance(detail, dict) and set(detail) != {"detail"}:
        _flatten(detail, "", errors)
        general = errors.pop(api_settings.NON_FIELD_ERRORS_KEY, [])
    elif isinstance(detail, dict):
        general = [str(detail["detail"])]
    elif isinstance(detail, list):
        general = [str(item) for item in detail]
    else:
        general = [str(detail)]
    if general:
        message = " ".join(general)
    elif errors:
        message = "Invalid input: " + "; ".join(
            f"{field}: {' '.join(messages)}" for field, messages in list(errors.items())[:3]
        )
        if len(errors) > 3:
            message += f"; and {len(errors) - 3} more"
    else:
        message = "Invalid request."
    return {"message": message, "errors": errors}


def _flatten(detail, prefix: str, out: dict) -> None:
    if isinstance(detail, dict):
        for key, value in detail.items():
            _flatten(value, f"{prefix}.{key}" if prefix else str(key), out)
    elif isinstance(detail, list) and any(isinstance(item, (dict, list)) for item in detail):
        for i, value in enumerate(detail):
            if value:
                _flatten(value, f"{prefix}.{i}" if prefix else str(i), out)
    elif isinstance(detail, list):
        out.setdefault(prefix or api_settings.NON_FIELD_ERRORS_KEY, []).extend(map(str, detail))
    else:
        out.setdefault(prefix or api_settings.NON_FIELD_ERRORS_KEY, []).append(str(detail))


@csrf_exempt  # a 404 whatever the method; nothing to protect
def not_found(request, *args, **kwargs):
    """Unknown URLs under /api/ answer in the API's error shape, not with an HTML page."""
    return JsonResponse(
        {"message": f"No API endpoint at {request.path}.", "errors": {}}, status=404
    )
