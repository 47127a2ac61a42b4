"""What the phone is told, once the gate has decided (DESIGN.md, "A denial is an
answer the phone understands").

    Allowed             behind nginx: passes (nginx sends it to the EAS server);
                        standalone Provision/Settings: a real WBXML answer;
                        standalone, anything else: HTTP 200 with the command's
                        own server-error status (the standalone endpoint
                        serves no mailbox; never an empty 200)
    Blocked             EAS 14.0+: the command's own response with Status 129
                        (DeviceIsBlockedForThisUser) and X-MS-ASThrottle naming
                        the reason; older versions: HTTP 403
    DeviceDiscovery     never reported itself (no DeviceInformation, has not
                        provisioned since): asked to provision, Status 142 from
                        14.0, HTTP 449 before
    Quarantined,        EAS 12.1+: the notice mailbox (devices.gate.notice);
    DeviceDiscovery     older versions: HTTP 403

The standalone endpoint answers this way itself; behind nginx, auth_request
only says 403 and nginx hands the request to /eas/answer, which answers the
same way. Pure decisions live in devices.access; this module only speaks.
"""

from django.core.cache import cache
from django.http import HttpResponse
from django.utils.crypto import salted_hmac

from devices.eas import MAX_BODY, EASParseError, status
from devices.eas.responses import (
    RESPONSE_ROOTS,
    provision_response,
    read_body,
    settings_response,
    status_response,
)
from devices.models import AccessState, MobileDevice

from . import decisions, notice

WBXML = "application/vnd.ms-sync.wbxml"
HTTP_PROVISION_REQUIRED = 449  # MS-ASHTTP: "Retry after sending a Provision command"
THROTTLE_HEADER = "X-MS-ASThrottle"
_PROVISIONED_KEY = "ecp:gate:provisioned:{pk}"


def respond(request, answer, *, standalone: bool) -> HttpResponse:
    """The HTTP response for a decided request (`answer` is a views.Answer)."""
    device = answer.device
    if device is None or not answer.command:
        return answer.response()
    command, version = answer.command, answer.eas_version
    if answer.status == 200:
        if standalone and command == "Provision":
            return _provision(answer, device)
        if standalone and command == "Settings":
            return _settings(answer, device)
        if not standalone:
            # Decided again between nginx's 403 and this request: allowed now.
            response = answer.response()
            response.status_code, response["Retry-After"] = 503, "5"
            return response
        return _not_served(answer)
    if answer.status != 403:
        return answer.response()
    state = answer.state
    if state == AccessState.BLOCKED:
        if _from(version, "14.0") and command in RESPONSE_ROOTS:
            body = status_response(command, status.Common.DEVICE_IS_BLOCKED_FOR_THIS_USER)
            response = _wbxml(answer, body)
        else:
            response = answer.response()
        response[THROTTLE_HEADER] = str(answer.reason)
        return response
    if state not in (AccessState.QUARANTINED, AccessState.DEVICE_DISCOVERY):
        return answer.response()
    if must_provision(request, answer):
        if _from(version, "14.0") and command in RESPONSE_ROOTS:
            return _wbxml(answer, status_response(command, status.Common.DEVICE_NOT_PROVISIONED))
        response = answer.response()
        response.status_code = HTTP_PROVISION_REQUIRED
        return response
    if not _from(version, "12.1"):
        return answer.response()
    try:
        body = _read(request, answer)
        reply = notice.answer_command(device, version, command, body)
    except EASParseError as exc:
        return _plain(answer, 400, f"not a valid ActiveSync body: {exc}")
    except BodyTooLarge:
        return _plain(answer, 413, f"body larger than {MAX_BODY} bytes")
    if reply.body is None:
        response = answer.response()
        response.status_code = reply.http_status
        return response
    return _wbxml(answer, reply.body)


# --- allowed at the standalone endpoint, which serves no mailbox -----------------------

# Command -> its own "server error" status, valid from EAS 2.5/12.0 on: the phone
# keeps its account and retries later (docs/PHONE_ANSWERS.md says why).
SERVER_ERRORS = {
    "Sync": status.Sync.SERVER_ERROR,
    "FolderSync": status.FolderSync.SERVER_ERROR,
    "FolderCreate": status.FolderChange.SERVER_ERROR,
    "FolderDelete": status.FolderChange.SERVER_ERROR,
    "FolderUpdate": status.FolderChange.SERVER_ERROR,
    "Ping": status.Ping.SERVER_ERROR,
    "ItemOperations": status.ItemOperations.SERVER_ERROR,
    "ResolveRecipients": status.ResolveRecipients.SERVER_ERROR,
    "Search": status.Search.SERVER_ERROR,
}
NOT_SERVED = "this endpoint decides device access only and serves no mailbox"
NOT_SERVED_RETRY_AFTER = "3600"


def _not_served(answer) -> HttpResponse:
    """An allowed device's command at the standalone endpoint: a real answer that
    says "server error, try later", never an empty 200."""
    command = answer.command
    code = SERVER_ERRORS.get(command)
    if code is None and _from(answer.eas_version, "14.0") and command in RESPONSE_ROOTS:
        code = status.Common.SERVER_ERROR_RETRY_LATER
    if code is None:
        # GetAttachment, the 2.5-only commands, and before 14.0 those without a
        # server-error status of their own: no WBXML answer exists.
        response = _plain(answer, 503, NOT_SERVED)
        response["Retry-After"] = NOT_SERVED_RETRY_AFTER
        return response
    return _wbxml(answer, status_response(command, code))


# --- provisioning -------------------------------------------------------------------


def note_contact(command: str, device: MobileDevice) -> None:
    """Remember that a device in discovery provisioned (for the discovery window),
    so that it is asked once, not on every request."""
    if command == "Provision" and device.access_state == AccessState.DEVICE_DISCOVERY:
        window = decisions.org_settings().discovery_window_minutes * 60
        cache.set(_PROVISIONED_KEY.format(pk=device.pk), True, timeout=max(window, 60))


def must_provision(request, answer) -> bool:
    device = answer.device
    if device.access_state != AccessState.DEVICE_DISCOVERY or device.device_info_received:
        return False
    if answer.command in ("Provision", "Settings"):
        return False
    presented = request.META.get("HTTP_X_MS_POLICYKEY", "").strip() or str(answer.policy_key or "")
    if presented and presented == str(policy_keys(device)[1]):
        return False  # provisioned here, at the standalone endpoint
    return not cache.get(_PROVISIONED_KEY.format(pk=device.pk))


def policy_keys(device: MobileDevice) -> tuple[int, int]:
    """(temporary, final) policy keys of the standalone endpoint's Provision: derived,
    never stored, never 0."""

    def key(step: str) -> int:
        digest = salted_hmac("ecp.policy.key", f"{device.pk}:{step}").hexdigest()
        return (int(digest[:8], 16) & 0x7FFFFFFF) or 1

    return key("temporary"), key("final")


def _provision(answer, device) -> HttpResponse:
    try:
        request_root = read_body(answer.body, "Provision")
    except EASParseError as exc:
        return _plain(answer, 400, f"not a valid ActiveSync body: {exc}")
    temporary, final = policy_keys(device)
    body = provision_response(request_root, temporary_key=temporary, final_key=final)
    return _wbxml(answer, body)


def _settings(answer, device) -> HttpResponse:
    try:
        request_root = read_body(answer.body, "Settings")
    except EASParseError as exc:
        return _plain(answer, 400, f"not a valid ActiveSync body: {exc}")
    email = device.mailbox.primary_smtp_address
    return _wbxml(answer, settings_response(request_root, email=email))


# --- plumbing -----------------------------------------------------------------------


class BodyTooLarge(Exception):
    pass


def _read(request, answer) -> bytes:
    if answer.body:
        return answer.body
    body = request.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        raise BodyTooLarge
    return body


def _wbxml(answer, body: bytes) -> HttpResponse:
    response = HttpResponse(body, status=200, content_type=WBXML)
    _copy_decision(answer, response)
    return response


def _plain(answer, status_code: int, detail: str) -> HttpResponse:
    response = HttpResponse(detail + "\n", status=status_code, content_type="text/plain")
    _copy_decision(answer, response)
    return response


def _copy_decision(answer, response) -> None:
    if answer.state:
        response["X-EAS-Access-State"] = str(answer.state)
        response["X-EAS-Access-Reason"] = str(answer.reason)


def _from(version: str, minimum: str) -> bool:
    return bool(version) and notice.version_tuple(version) >= notice.version_tuple(minimum)
