"""The gate's HTTP endpoints (DESIGN.md, "The gate").

/Microsoft-Server-ActiveSync  standalone: decide, record and answer as a phone expects
/eas/auth                     nginx auth_request: the same decision, headers only
/eas/observe                  nginx mirror: read DeviceInformation from the body; 204
/eas/answer                   nginx error_page for a denied request: the phone's answer

What a denied phone is told (Status 129, the notice mailbox, "provision
first") is devices.gate.answers; this module only decides.

Every path runs the same steps: parse the query (400), check the Basic
credentials (401), check that the login owns the mailbox (403), then look the
partnership up. A known device whose details did not change costs one query
(login, mailbox and device together: devices.gate.lookup) and no write but a
last-seen update at most once a minute; everything else goes through
devices.actions.record_contact.
"""

import re
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from devices import actions, hostile
from devices.audit import Actor
from devices.eas import COMMANDS, MAX_BODY, EASParseError, extract_device_information, parse_query
from devices.eas.useragent import model_from_user_agent
from devices.models import AccessState, AuditSource, MobileDevice, OrgSettings, without_domain

from . import answers, credentials, decisions, lookup, outage
from .lookup import Found

PROTOCOL_VERSIONS = "2.5,12.0,12.1,14.0,14.1,16.0,16.1"
PROTOCOL_COMMANDS = ",".join(sorted(COMMANDS))
# Quarantined and DeviceDiscovery devices may still report themselves.
REPORTING_COMMANDS = frozenset({"Provision", "Settings"})
PROBE_DEVICE_TYPES = frozenset({"easprobedevicetype"})
PROBE_USER_AGENT = "testactivesyncconnectivity"
PROBE_MAILBOX_PREFIX = "extest_"  # the mailboxes New-TestCasConnectivityUser.ps1 creates
REASON_NOT_OWNER = "MailboxNotOwned"
REASON_PROBE = "HealthProbe"
_VERSION_RE = re.compile(r"\d{1,2}\.\d{1,2}")
MAX_USER_AGENT = 256
# Only these mean the database is unreachable (503). Anything else, a DataError
# above all, is a bug to fix: answering it with 503 would let any client make
# monitoring believe the database is down (issue 16).
DATABASE_DOWN = (OperationalError, InterfaceError)
ACTIVESYNC_PATH = "/microsoft-server-activesync"


@dataclass
class Answer:
    status: int
    state: str = ""
    reason: str = ""
    detail: str = ""
    degraded: bool = False  # answered from the outage cache (devices.gate.outage)
    # What devices.gate.answers needs to speak to the phone:
    command: str = ""
    eas_version: str = ""
    device: MobileDevice | None = None
    body: bytes = b""  # the request body, when the decision read it
    policy_key: int | None = None  # from a base64 query

    def response(self) -> HttpResponse:
        body = "" if self.status in (200, 204) else (self.detail or "denied") + "\n"
        response = HttpResponse(body, status=self.status, content_type="text/plain")
        if self.state:
            # str(): an AccessState member is a str subclass, which WSGI servers may refuse.
            response["X-EAS-Access-State"] = str(self.state)
            response["X-EAS-Access-Reason"] = str(self.reason)
        if self.status == 401:
            response["WWW-Authenticate"] = 'Basic realm="ActiveSync"'
        if self.status == 429:
            response["Retry-After"] = str(credentials.FAILURE_WINDOW)
        if self.status == 503:
            response["Retry-After"] = "30"
        if self.degraded:
            response[outage.HEADER] = "database-unavailable"
        return response


def _eas_version(request, parsed) -> str:
    version = parsed.protocol_version or request.META.get("HTTP_MS_ASPROTOCOLVERSION", "")
    version = version.strip()
    if version and not _VERSION_RE.fullmatch(version):
        raise EASParseError("malformed MS-ASProtocolVersion header")
    return version


def _user_agent(request) -> str:
    """The User-Agent as the device wrote it (UTF-8 when valid), without bidi controls."""
    user_agent = hostile.recode_header(request.META.get("HTTP_USER_AGENT", ""))
    if hostile.has_control(user_agent):
        raise EASParseError("User-Agent contains control characters")
    return hostile.drop_bidi(user_agent).strip()[:MAX_USER_AGENT]


def _request_id(request) -> str:
    """The device's X-Request-ID when it is a plain token, else one of our own."""
    return hostile.request_id(request.META.get("HTTP_X_REQUEST_ID", "")) or uuid.uuid4().hex


def _owns(user, named: str | None) -> bool:
    mailbox = getattr(user, "mailbox", None)
    if mailbox is None:
        return False
    if not named:
        return True
    named = without_domain(named).lower()
    return named in (mailbox.alias.lower(), mailbox.primary_smtp_address.lower())


def _is_probe(parsed, user_agent: str) -> bool:
    return (
        parsed.device_type.lower() in PROBE_DEVICE_TYPES or PROBE_USER_AGENT in user_agent.lower()
    )


def _is_probe_mailbox(user) -> bool:
    """Only Exchange's test mailboxes (extest_*) may probe without a partnership.

    Anyone can claim DeviceType EASProbeDeviceType; from any other mailbox a
    probe is a device like any other, recorded and decided.
    """
    return user.mailbox.alias.lower().startswith(PROBE_MAILBOX_PREFIX)


def _read_body(request) -> bytes:
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise EASParseError("malformed Content-Length") from None
    if declared > MAX_BODY:
        raise BodyTooLarge
    body = request.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        raise BodyTooLarge
    return body


class BodyTooLarge(Exception):
    pass


def _verdict(device: MobileDevice, command: str) -> Answer:
    state = device.access_state
    passes = state == AccessState.ALLOWED or (
        state in (AccessState.QUARANTINED, AccessState.DEVICE_DISCOVERY)
        and command in REPORTING_COMMANDS
    )
    return Answer(200 if passes else 403, state, device.access_state_reason)


def _discovery_over(device: MobileDevice) -> bool:
    if device.access_state != AccessState.DEVICE_DISCOVERY:
        return device.access_state == AccessState.UNKNOWN
    org = OrgSettings.load()
    return timezone.now() - device.first_seen >= timedelta(minutes=org.discovery_window_minutes)


def _held_decision_due(device: MobileDevice) -> bool:
    """A flapping device's held-back decision (devices.actions.record_contact) is due."""
    return device.redecide_due_at is not None and timezone.now() >= device.redecide_due_at


def decide_request(request, raw_query: str, *, read_body: bool, throttle_status: int) -> Answer:
    """Parse, authenticate, record and decide one ActiveSync request."""
    try:
        user_agent = _user_agent(request)
        parsed = parse_query(raw_query)
        eas_version = _eas_version(request, parsed)
        header = credentials.parse_basic(request.META.get("HTTP_AUTHORIZATION", ""))
    except EASParseError as exc:
        return Answer(400, detail=f"not a valid ActiveSync request: {exc}")
    except credentials.BadCredentials as exc:
        return Answer(401, detail=str(exc))
    if header is None:
        return Answer(401, detail="credentials required")
    device_key = parsed.device_id.lower()
    # A known device's last answer, kept a few seconds in this process (decisions.py).
    read_at = decisions.clock()
    cache_key = (credentials.credential_key(*header), device_key)
    # Only while the database connection looks alive: an outage is a 503 at once.
    found = cached = decisions.recall(cache_key) if lookup.connection_looks_alive() else None
    if found is None:
        try:
            found = credentials.check(request, *header, device_key=device_key)
        except credentials.Throttled as exc:
            return Answer(throttle_status, detail=str(exc))
        except credentials.BadCredentials as exc:
            return Answer(401, detail=str(exc))
        except credentials.DirectoryUnavailable as exc:
            # Never 401: the password may well be right. Fail closed, and say why.
            return Answer(503, detail=str(exc))
    user = found.user
    if not _owns(user, parsed.user):
        return Answer(
            403, AccessState.BLOCKED, REASON_NOT_OWNER, "this login does not own that mailbox"
        )
    if _is_probe(parsed, user_agent) and _is_probe_mailbox(user):
        allowed = OrgSettings.load().allow_health_probes and user.mailbox.activesync_enabled
        state = AccessState.ALLOWED if allowed else AccessState.BLOCKED
        return Answer(200 if allowed else 403, str(state), REASON_PROBE)

    info, body = None, b""
    if read_body and parsed.command in REPORTING_COMMANDS:
        try:
            body = _read_body(request)
            info = extract_device_information(body) if body else None
            if info and any(hostile.has_control(value) for value in info.values()):
                raise EASParseError("DeviceInformation contains control characters")
        except BodyTooLarge:
            return Answer(413, detail=f"body larger than {MAX_BODY} bytes")
        except EASParseError as exc:
            return Answer(400, detail=f"not a valid ActiveSync body: {exc}")
    contact = actions.Contact(
        device_id=parsed.device_id,
        device_type=parsed.device_type,
        user_agent=user_agent,
        eas_version=eas_version,
        info=info or None,
        user_agent_model=model_from_user_agent(user_agent),
    )
    mailbox, device = user.mailbox, found.device
    redecide = device is not None and (_discovery_over(device) or _held_decision_due(device))
    if device is None or redecide or actions.contact_changes(device, contact):
        actor = Actor(
            user=user,
            source=AuditSource.GATE,
            ip=credentials.client_ip(request) or None,
            request_id=_request_id(request),
        )
        device = actions.record_contact(actor, mailbox, contact, redecide=redecide)
        if cached is None:
            decisions.remember(cache_key, Found(user, device), read_at)
        else:  # the cached login was read earlier: the next request checks it afresh
            decisions.forget(cache_key)
    else:
        actions.touch_last_seen(device)
        if cached is None:
            decisions.remember(cache_key, found, read_at)
    outage.note(*header, parsed, device.access_state, device.access_state_reason)
    answers.note_contact(parsed.command, device)
    answer = _verdict(device, parsed.command)
    answer.command, answer.eas_version, answer.device = parsed.command, eas_version, device
    answer.body, answer.policy_key = body, parsed.policy_key
    return answer


def _unavailable(request, raw_query: str) -> Answer:
    """Fail closed: without the database nobody is let in, unless the opt-in
    outage cache remembers these credentials on this device as Allowed."""
    remembered = outage.remembered(request, raw_query)
    if remembered is None:
        return Answer(503, detail="access control database unavailable")
    state, reason = remembered
    return Answer(200, state, reason, degraded=True)


@csrf_exempt
def activesync(request):
    """The standalone gate at /Microsoft-Server-ActiveSync."""
    if request.method == "OPTIONS":
        response = HttpResponse(status=200)
        response["MS-ASProtocolVersions"] = PROTOCOL_VERSIONS
        response["MS-ASProtocolCommands"] = PROTOCOL_COMMANDS
        response["Allow"] = "OPTIONS,POST"
        response["MS-Server-ActiveSync"] = "16.1"
        return response
    if request.method != "POST":
        response = HttpResponse("use POST or OPTIONS\n", status=405, content_type="text/plain")
        response["Allow"] = "OPTIONS,POST"
        return response
    query = request.META.get("QUERY_STRING", "")
    try:
        answer = decide_request(request, query, read_body=True, throttle_status=429)
        return answers.respond(request, answer, standalone=True)
    except DATABASE_DOWN:
        return _unavailable(request, query).response()


def _original_query(request) -> str | None:
    uri = request.META.get("HTTP_X_ORIGINAL_URI", "")
    path, sep, query = uri.partition("?")
    if not path.lower().rstrip("/").endswith(ACTIVESYNC_PATH):
        return None
    return query


@csrf_exempt
def auth_request(request):
    """GET /eas/auth, for nginx auth_request: the decision as a status code."""
    if request.method != "GET":
        return HttpResponse(status=405)
    query = _original_query(request)
    if query is None:
        return Answer(400, detail="X-Original-URI is not an ActiveSync URI").response()
    if request.META.get("HTTP_X_ORIGINAL_METHOD", "").upper() == "OPTIONS":
        return HttpResponse(status=200)
    try:
        # nginx accepts only 2xx, 401 and 403 from auth_request: throttling is a 401.
        answer = decide_request(request, query, read_body=False, throttle_status=401)
    except DATABASE_DOWN:
        answer = _unavailable(request, query)
    return answer.response()


@csrf_exempt
def observe(request):
    """POST /eas/observe, for nginx mirror: record DeviceInformation from the body."""
    if request.method != "POST":
        return HttpResponse(status=405)
    query = _original_query(request)
    if query is None:
        return Answer(400, detail="X-Original-URI is not an ActiveSync URI").response()
    try:
        answer = decide_request(request, query, read_body=True, throttle_status=401)
    except DATABASE_DOWN:
        answer = _unavailable(request, query)
    if answer.status in (200, 403) and answer.state:
        answer.status = 204
    return answer.response()


@csrf_exempt
def answer(request):
    """POST /eas/answer, nginx's error_page for a request auth_request denied: the
    answer the phone understands (devices.gate.answers), decided once more."""
    if request.method != "POST":
        return HttpResponse(status=405)
    query = _original_query(request)
    if query is None:
        return Answer(400, detail="X-Original-URI is not an ActiveSync URI").response()
    try:
        decided = decide_request(request, query, read_body=True, throttle_status=401)
        return answers.respond(request, decided, standalone=False)
    except DATABASE_DOWN:
        return _unavailable(request, query).response()
