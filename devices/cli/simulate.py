"""simulate-device: send one real ActiveSync request to a running gate and show its decision.

The request is what a phone sends: POST /Microsoft-Server-ActiveSync with the
command and device in the query (plain, or the base64 form with --base64),
Basic credentials, User-Agent and MS-ASProtocolVersion, and for Provision or
Settings a WBXML body carrying DeviceInformation when --model, --os etc. are
given; FolderSync, Sync, GetItemEstimate and Ping send the body a phone would.
For Sync, GetItemEstimate and Ping it first learns the Inbox by FolderSync, and
Sync goes on as a new phone does (SyncKey 0, then the key it got), so the
quarantine notice arrives as it would on the phone. A WBXML reply is printed
decoded. Any HTTP answer, 403 included, is a result (exit 0); only failing to
get one (connection refused, timeout, bad URL) is an error.
"""

import base64
import http.client
import os
import ssl
import urllib.error
import urllib.request
from http import HTTPStatus
from urllib.parse import quote, urlsplit, urlunsplit

from django.conf import settings

from devices.eas import COMMANDS, EASParseError, build_base64_query, build_device_information_body
from devices.eas import decode as decode_wbxml
from devices.eas.client import (
    find_text,
    folder_sync_request,
    get_item_estimate_request,
    ping_request,
    provision_request,
    sync_request,
    to_xml,
)
from devices.eas.query import COMMAND_CODES

from . import CliError, add_verb
from .output import add_format_option, render

ACTIVESYNC_PATH = "/Microsoft-Server-ActiveSync"
PASSWORD_VARIABLE = "EAS_PASSWORD"
# --option -> DeviceInformation key (devices.eas.wbxml.DEVICE_INFORMATION_FIELDS)
INFO_OPTIONS = {
    "model": "model",
    "os": "os",
    "imei": "imei",
    "friendly_name": "friendly_name",
    "os_language": "os_language",
    "phone_number": "phone_number",
    "mobile_operator": "mobile_operator",
    "info_user_agent": "user_agent",
}
REPORTING_COMMANDS = ("Provision", "Settings")
FIELDS = ("url", "command", "device_id", "status", "access_state", "access_reason", "reply")
WBXML = "application/vnd.ms-sync.wbxml"
FOLDER_TYPE_INBOX = "2"
NEEDS_INBOX = ("Sync", "GetItemEstimate", "Ping")
PING_HEARTBEAT = 60  # the shortest heartbeat Exchange (and ECP) accepts


def register(verbs) -> None:
    p = add_verb(
        verbs,
        "simulate-device",
        simulate_device,
        "Send one ActiveSync request, as a device would, to a running gate and print its"
        " decision: the HTTP status, X-EAS-Access-State and X-EAS-Access-Reason.",
        epilog="Exit 0 whenever the gate answered, even 401 or 403. The password may come"
        f" from the {PASSWORD_VARIABLE} environment variable instead of --password; without"
        " either no credentials are sent. DeviceInformation (--model, --os, ...) is sent"
        " in the body of --command Provision or Settings.",
    )
    p.add_argument(
        "--url",
        help="the gate: ECP itself, or nginx in front of the EAS server"
        f" (default ECP_BASE_URL, {settings.ECP_BASE_URL}; {ACTIVESYNC_PATH} is added)",
    )
    p.add_argument("--user", required=True, metavar="LOGIN", help="alias, DOMAIN\\alias or address")
    p.add_argument("--password", metavar="P")
    p.add_argument("--device-id", required=True, metavar="ID")
    p.add_argument("--device-type", default="SmartPhone", metavar="TYPE")
    p.add_argument("--user-agent", default="ECP-simulate-device/1.0", metavar="UA")
    p.add_argument(
        "--command",
        default="FolderSync",
        metavar="CMD",
        help="an ActiveSync command (default FolderSync)",
    )
    p.add_argument(
        "--mailbox",
        metavar="NAME",
        help="the User parameter (default: the login in the plain form, none in base64)",
    )
    p.add_argument(
        "--base64", action="store_true", help="send the base64-encoded binary query string"
    )
    p.add_argument("--protocol-version", default="14.1", metavar="V", help="default 14.1")
    p.add_argument("--policy-key", type=int, metavar="N", help="X-MS-PolicyKey")
    info = p.add_argument_group("DeviceInformation (with --command Provision or Settings)")
    info.add_argument("--model")
    info.add_argument("--os")
    info.add_argument("--imei")
    info.add_argument("--friendly-name")
    info.add_argument("--os-language")
    info.add_argument("--phone-number")
    info.add_argument("--mobile-operator")
    info.add_argument(
        "--info-user-agent", metavar="UA", help="the UserAgent inside DeviceInformation"
    )
    p.add_argument("--timeout", type=float, default=15.0, metavar="SECONDS")
    p.add_argument(
        "--insecure", action="store_true", help="do not verify the TLS certificate (test setups)"
    )
    add_format_option(p)


def simulate_device(out, args) -> None:
    url = _gate_url(args.url or settings.ECP_BASE_URL)
    command = _command(args.command, base64_form=args.base64)
    info = {key: getattr(args, option) for option, key in INFO_OPTIONS.items()}
    info = {key: value for key, value in info.items() if value is not None}
    if info and command not in REPORTING_COMMANDS:
        raise CliError(
            "DeviceInformation (--model, --os, ...) needs --command Provision or Settings."
        )
    if info:
        body = build_device_information_body(command, info)
    elif command == "Provision":
        body = provision_request()
    else:
        body = b""

    def send(cmd: str, payload: bytes) -> tuple[int, dict, bytes]:
        return _exchange(args, url, cmd, payload)

    if command == "FolderSync":
        body = folder_sync_request("0")
    status, answer, content = None, {}, b""
    if command in NEEDS_INBOX:
        inbox = _learn_inbox(send)
        if inbox is None:  # no Inbox to name (denied, or a standalone pass): as it is
            status, answer, content = send(command, b"")
        elif command == "Sync":
            status, answer, content = send(command, sync_request(inbox, "0", version=_v(args)))
            key = _sync_key(content)
            if key:
                status, answer, content = send(command, sync_request(inbox, key, version=_v(args)))
        elif command == "GetItemEstimate":
            primed = _sync_key(send("Sync", sync_request(inbox, "0", version=_v(args)))[2])
            estimate = get_item_estimate_request(inbox, primed or "0", version=_v(args))
            status, answer, content = send(command, estimate)
        else:
            # A held Ping answers after the heartbeat at most: wait for it.
            args.timeout = max(args.timeout, PING_HEARTBEAT + 30)
            status, answer, content = send(command, ping_request([inbox], PING_HEARTBEAT))
    else:
        status, answer, content = send(command, body)
    reply = _decoded(answer, content)
    row = {
        "url": url,
        "command": command,
        "device_id": args.device_id,
        "status": status,
        "access_state": answer.get("X-EAS-Access-State") or None,
        "access_reason": answer.get("X-EAS-Access-Reason") or None,
        "reply": reply,
    }
    if args.format != "table":
        render(out, [row], args.format, fields=FIELDS)
        return
    out.write(f"HTTP {status} {_reason_phrase(status)}".rstrip())
    out.write(f"X-EAS-Access-State: {row['access_state'] or '-'}")
    out.write(f"X-EAS-Access-Reason: {row['access_reason'] or '-'}")
    for name in ("WWW-Authenticate", "Retry-After", "X-MS-ASThrottle"):
        if answer.get(name):
            out.write(f"{name}: {answer.get(name)}")
    if reply:
        out.write(reply)


def _v(args) -> str:
    return args.protocol_version


def _learn_inbox(send):
    """FolderSync from SyncKey 0, as a new phone does: the Inbox's ServerId, or None."""
    _status, answer, content = send("FolderSync", folder_sync_request("0"))
    root = _root(answer, content)
    changes = root.find("FolderHierarchy:Changes") if root is not None else None
    for add in changes.findall("FolderHierarchy:Add") if changes is not None else []:
        if find_text(add, "FolderHierarchy:Type") == FOLDER_TYPE_INBOX:
            return find_text(add, "FolderHierarchy:ServerId")
    return None


def _sync_key(content: bytes) -> str | None:
    try:
        root = decode_wbxml(content) if content else None
    except EASParseError:
        return None
    if root is None:
        return None
    collection = root.find("AirSync:Collections")
    collection = collection.find("AirSync:Collection") if collection is not None else None
    return find_text(collection, "AirSync:SyncKey") if collection is not None else None


def _root(answer, content: bytes):
    if not content or WBXML not in (answer.get("Content-Type") or ""):
        return None
    try:
        return decode_wbxml(content)
    except EASParseError:
        return None


def _decoded(answer, content: bytes) -> str | None:
    root = _root(answer, content)
    return to_xml(root) if root is not None else None


def _exchange(args, url: str, command: str, body: bytes) -> tuple[int, dict, bytes]:
    headers = {
        "User-Agent": args.user_agent,
        "Content-Type": "application/vnd.ms-sync.wbxml",
    }
    password = args.password if args.password is not None else os.environ.get(PASSWORD_VARIABLE)
    if password is not None:
        token = base64.b64encode(f"{args.user}:{password}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    if args.policy_key is not None:
        headers["X-MS-PolicyKey"] = str(args.policy_key)
    if args.base64:
        query = _base64_query(args, command)
    else:
        headers["MS-ASProtocolVersion"] = args.protocol_version
        query = _plain_query(args, command)

    # The scheme is http or https: checked by _gate_url.
    request = urllib.request.Request(  # noqa: S310
        f"{url}?{query}", data=body, headers=headers, method="POST"
    )
    return _send(request, args)


def _gate_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CliError(f"--url must be an http:// or https:// URL, not {url!r}.")
    path = parts.path.rstrip("/")
    if not path.lower().endswith(ACTIVESYNC_PATH.lower()):
        path += ACTIVESYNC_PATH
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _command(value: str, *, base64_form: bool) -> str:
    by_lower = {name.lower(): name for name in COMMANDS}
    command = by_lower.get(value.strip().lower())
    if command is None:
        raise CliError(f"Unknown ActiveSync command {value!r}: e.g. FolderSync, Sync, Provision.")
    if base64_form and command not in COMMAND_CODES.values():
        raise CliError(f"{command} has no code in the base64 query form; drop --base64.")
    return command


def _plain_query(args, command: str) -> str:
    pairs = [
        ("Cmd", command),
        ("User", args.mailbox or args.user),
        ("DeviceId", args.device_id),
        ("DeviceType", args.device_type),
    ]
    return "&".join(f"{name}={quote(value, safe='')}" for name, value in pairs)


def _base64_query(args, command: str) -> str:
    try:
        query = build_base64_query(
            command,
            args.device_id,
            args.device_type,
            protocol_version=args.protocol_version,
            policy_key=args.policy_key,
            user=args.mailbox,
        )
    except (ValueError, KeyError) as e:
        raise CliError(f"cannot build the base64 query: {e}") from None
    return quote(query, safe="")


def _send(request, args) -> tuple[int, dict]:
    context = None
    if args.insecure and request.full_url.startswith("https:"):
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(request, timeout=args.timeout, context=context) as response:  # noqa: S310
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as answer:  # 4xx and 5xx are answers too
        with answer:
            return answer.code, answer.headers, answer.read()
    except urllib.error.URLError as e:
        raise CliError(f"cannot reach {request.full_url.split('?')[0]}: {e.reason}") from None
    except (OSError, ValueError, http.client.HTTPException) as e:  # timeouts, resets, junk
        raise CliError(f"cannot reach {request.full_url.split('?')[0]}: {e}") from None


def _reason_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
