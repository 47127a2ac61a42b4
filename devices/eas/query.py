"""Parse the query part of an Exchange ActiveSync request line (MS-ASHTTP).

A device names its command, mailbox and identity in the URI query, in one of
two forms (MS-ASHTTP 2.2.1.1.1):

Plain text (2.2.1.1.1.2)::

    Cmd=Sync&User=rmjones&DeviceId=v140Device&DeviceType=SmartPhone

    Percent-encoded ``name=value`` pairs. Protocol version and policy key
    travel in the ``MS-ASProtocolVersion`` and ``X-MS-PolicyKey`` headers, so
    ``protocol_version``, ``policy_key`` and ``locale`` are None here.

Base64 (2.2.1.1.1.1)::

    jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l

    base64 (RFC 2045 alphabet, ``+`` and ``/`` are data) of the byte layout

    offset  size  field
    0       1     protocol version, e.g. 140 -> "14.0", 141 -> "14.1"
    1       1     command code (see ``COMMAND_CODES``)
    2       2     locale, little-endian uint16 (0x0409 = en-US)
    4       1     DeviceId length n
    5       n     DeviceId
    5+n     1     policy key length: 0 or 4
    ...     0|4   policy key, little-endian uint32
    ...     1     DeviceType length m
    ...     m     DeviceType
    ...           command parameters until the end: tag (1), length (1), value

    Parameter tags are in ``PARAMETER_TAGS``. ``User`` (tag 8) becomes
    ``EASRequest.user``. ``Options`` (tag 7) is a one-byte bitmask; its flags
    are reported as ``("SaveInSent", "T")`` / ``("AcceptMultiPart", "T")`` so
    both forms describe the same request the same way.

Decisions
---------
* Form detection: a query containing ``&``, or ``=`` anywhere other than as
  trailing base64 padding, is plain; anything else must be base64.
* Percent-decoding never turns ``+`` into a space, in either form: in base64
  ``+`` is data, and in the plain form a ``+`` in a User such as
  ``john+tag@contoso.com`` must survive (a space has to come as ``%20``).
  Malformed ``%`` escapes and invalid UTF-8 are rejected. Base64 padding
  may be percent-encoded (``%3D``) or missing.
* The raw query must be printable ASCII and at most ``MAX_QUERY_LENGTH``
  characters: that is all a real URL query can contain.
* Plain-form names match case-insensitively and are reported in their
  canonical spelling; a name given twice (in any case) is rejected, so no two
  layers can disagree about which copy counts. Names outside MS-ASHTTP
  are not refused (a gate should not break a client over an extra
  parameter): they must be short tokens and are passed through in
  ``parameters`` with their values checked like any other.
* DeviceId: at most 32 characters of ``[A-Za-z0-9_-]`` (MS-ASHTTP forbids
  commas and special characters; real devices use dashes and underscores).
  In the base64 form the DeviceId is bytes. When those bytes are already such
  a string they are used as is; otherwise (e.g. a 16-byte binary GUID) the
  device is keyed by the upper-case hex of the bytes. Binary ids are
  therefore limited to 16 bytes, so every ``device_id`` fits in 32
  characters. A text id that happens to spell the hex of another device's
  binary id would map to the same key; that needs two devices whose ids
  match digit for digit, so the risk is accepted rather than prefixing hex
  keys (which would change the key a device is known by).
* DeviceType: at most 32 characters of ``[A-Za-z0-9._-]``.
* User: at most 256 printable characters without whitespace (``alias``,
  ``user@domain``, ``DOMAIN\\alias``). An empty ``User=`` means no user,
  like a base64 query without tag 8: the gate then uses the login's mailbox.
* Cmd must be an MS-ASCMD command name; base64 command codes and parameter
  tags must be in the spec's tables; a base64 protocol version must be one
  that allows the base64 form (12.1, 14.0, 14.1, 16.0, 16.1).
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from dataclasses import dataclass
from urllib.parse import unquote

from devices.eas.errors import EASParseError

MAX_QUERY_LENGTH = 2048
MAX_DEVICE_ID = 32
MAX_DEVICE_TYPE = 32
MAX_USER = 256
MAX_PARAMETER_VALUE = 1024
MAX_PARAMETER_NAME = 64

# MS-ASCMD command names accepted in the plain form's Cmd.
COMMANDS = frozenset(
    {
        "Sync",
        "SendMail",
        "SmartForward",
        "SmartReply",
        "GetAttachment",
        "GetHierarchy",
        "CreateCollection",
        "DeleteCollection",
        "MoveCollection",
        "FolderSync",
        "FolderCreate",
        "FolderDelete",
        "FolderUpdate",
        "MoveItems",
        "GetItemEstimate",
        "MeetingResponse",
        "Search",
        "Settings",
        "Ping",
        "ItemOperations",
        "Provision",
        "ResolveRecipients",
        "ValidateCert",
        "Find",
    }
)
_COMMANDS_BY_LOWER = {name.lower(): name for name in COMMANDS}

# MS-ASHTTP 2.2.1.1.1.1.2 Command Codes (5-8 are unassigned).
COMMAND_CODES = {
    0: "Sync",
    1: "SendMail",
    2: "SmartForward",
    3: "SmartReply",
    4: "GetAttachment",
    9: "FolderSync",
    10: "FolderCreate",
    11: "FolderDelete",
    12: "FolderUpdate",
    13: "MoveItems",
    14: "GetItemEstimate",
    15: "MeetingResponse",
    16: "Search",
    17: "Settings",
    18: "Ping",
    19: "ItemOperations",
    20: "Provision",
    21: "ResolveRecipients",
    22: "ValidateCert",
}

# MS-ASHTTP 2.2.1.1.1.1.3 Command Parameters (2 and 5 are unassigned).
PARAMETER_TAGS = {
    0: "AttachmentName",
    1: "CollectionId",
    3: "ItemId",
    4: "LongId",
    6: "Occurrence",
    7: "Options",
    8: "User",
}
_TAG_BY_NAME = {name: tag for tag, name in PARAMETER_TAGS.items()}
_TAG_OPTIONS = 7
_TAG_USER = 8

# Bits of the Options parameter, reported under their plain-form names.
OPTION_FLAGS = {0x01: "SaveInSent", 0x02: "AcceptMultiPart"}

# The base64 form exists only from 12.1 on (MS-ASHTTP 2.2.1.1.1.1).
BASE64_PROTOCOL_VERSIONS = frozenset({121, 140, 141, 160, 161})

# Plain-form parameters besides Cmd/User/DeviceId/DeviceType
# (MS-ASHTTP 2.2.1.1.1.2.5), keyed by lower case for canonical spelling.
_PLAIN_PARAMETERS = {
    name.lower(): name
    for name in (
        "AttachmentName",
        "CollectionId",
        "ItemId",
        "LongId",
        "Occurrence",
        "SaveInSent",
        "AcceptMultiPart",
    )
}
_CORE_NAMES = {"cmd": "Cmd", "user": "User", "deviceid": "DeviceId", "devicetype": "DeviceType"}

_DEVICE_ID_RE = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_DEVICE_ID}}}")
_DEVICE_TYPE_RE = re.compile(rf"[A-Za-z0-9._-]{{1,{MAX_DEVICE_TYPE}}}")
_PARAMETER_NAME_RE = re.compile(rf"[A-Za-z0-9._-]{{1,{MAX_PARAMETER_NAME}}}")
_RAW_QUERY_RE = re.compile(r"[\x21-\x7e]+")
_BAD_PERCENT_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_BASE64_RE = re.compile(r"[A-Za-z0-9+/]+={0,2}")


@dataclass(frozen=True, slots=True)
class EASRequest:
    """What the request line says about the command and the device."""

    command: str
    device_id: str
    device_type: str
    user: str | None
    protocol_version: str | None
    locale: int | None
    policy_key: int | None
    parameters: tuple[tuple[str, str], ...]
    form: str  # "plain" or "base64"

    def parameter(self, name: str) -> str | None:
        """The value of the named extra parameter, or None."""
        for key, value in self.parameters:
            if key == name:
                return value
        return None


def parse_query(raw_query: str) -> EASRequest:
    """Parse the raw (still percent-encoded) query of an EAS request URI."""
    if not isinstance(raw_query, str):
        raise EASParseError("query must be text")
    if not raw_query:
        raise EASParseError("empty query")
    if len(raw_query) > MAX_QUERY_LENGTH:
        raise EASParseError("query too long")
    if not _RAW_QUERY_RE.fullmatch(raw_query):
        raise EASParseError("query has characters a URL cannot carry")
    if _BAD_PERCENT_RE.search(raw_query):
        raise EASParseError("malformed percent escape")
    if "&" in raw_query or "=" in raw_query.rstrip("="):
        return _parse_plain(raw_query)
    return _parse_base64(raw_query)


# --- plain text form ---------------------------------------------------------


def _percent_decode(text: str) -> str:
    # unquote, not unquote_plus: '+' stays '+'.
    try:
        return unquote(text, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise EASParseError("percent-encoded value is not UTF-8") from None


def _plain_pairs(raw_query: str) -> list[tuple[str, str]]:
    pairs = []
    for segment in raw_query.split("&"):
        if not segment:
            continue  # tolerate "a=1&&b=2" and a trailing '&'
        name, sep, value = segment.partition("=")
        if not sep:
            raise EASParseError("query parameter without '='")
        pairs.append((_percent_decode(name), _percent_decode(value)))
    return pairs


def _canonical_name(name: str) -> str:
    lower = name.lower()
    canonical = _CORE_NAMES.get(lower) or _PLAIN_PARAMETERS.get(lower)
    if canonical:
        return canonical
    if not _PARAMETER_NAME_RE.fullmatch(name):
        raise EASParseError("invalid query parameter name")
    return name


def _parse_plain(raw_query: str) -> EASRequest:
    values: dict[str, str] = {}
    seen: set[str] = set()
    extras: list[tuple[str, str]] = []
    for name, value in _plain_pairs(raw_query):
        canonical = _canonical_name(name)
        if canonical.lower() in seen:
            raise EASParseError(f"duplicate query parameter {canonical}")
        seen.add(canonical.lower())
        if canonical.lower() in _CORE_NAMES:
            values[canonical] = value
        else:
            extras.append((canonical, _check_parameter_value(canonical, value)))
    for required in ("Cmd", "DeviceId", "DeviceType"):
        if required not in values:
            raise EASParseError(f"missing {required}")
    user = values.get("User") or None
    return EASRequest(
        command=_check_command(values["Cmd"]),
        device_id=_check_device_id(values["DeviceId"]),
        device_type=_check_device_type(values["DeviceType"]),
        user=_check_user(user) if user is not None else None,
        protocol_version=None,
        locale=None,
        policy_key=None,
        parameters=tuple(extras),
        form="plain",
    )


# --- field checks shared by both forms ----------------------------------------


def _check_command(value: str) -> str:
    command = _COMMANDS_BY_LOWER.get(value.lower())
    if command is None:
        raise EASParseError("unknown command")
    return command


def _check_device_id(value: str) -> str:
    if not _DEVICE_ID_RE.fullmatch(value):
        raise EASParseError("DeviceId must be 1-32 letters, digits, '-' or '_'")
    return value


def _check_device_type(value: str) -> str:
    if not _DEVICE_TYPE_RE.fullmatch(value):
        raise EASParseError("DeviceType must be 1-32 letters, digits, '.', '-' or '_'")
    return value


def _check_user(value: str) -> str:
    if not value or len(value) > MAX_USER:
        raise EASParseError("User must be 1-256 characters")
    if not value.isprintable() or any(ch.isspace() for ch in value):
        raise EASParseError("User contains whitespace or control characters")
    return value


def _check_parameter_value(name: str, value: str) -> str:
    if len(value) > MAX_PARAMETER_VALUE:
        raise EASParseError(f"{name} too long")
    if not value.isprintable():
        raise EASParseError(f"{name} contains control characters")
    if name in ("SaveInSent", "AcceptMultiPart") and value not in ("T", "F"):
        raise EASParseError(f"{name} must be T or F")
    return value


# --- base64 form ---------------------------------------------------------------


class _Buffer:
    """A cursor over the decoded bytes that fails cleanly on truncation."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def at_end(self) -> bool:
        return self.pos >= len(self.data)

    def take(self, count: int, what: str) -> bytes:
        end = self.pos + count
        if end > len(self.data):
            raise EASParseError(f"base64 query truncated in {what}")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def byte(self, what: str) -> int:
        return self.take(1, what)[0]


def _base64_bytes(raw_query: str) -> bytes:
    text = _percent_decode(raw_query)
    if not _BASE64_RE.fullmatch(text):
        raise EASParseError("query is neither key=value pairs nor base64")
    # Some clients drop the padding; restore it rather than refuse them.
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise EASParseError("invalid base64 query") from None


def _binary_device_id(raw: bytes) -> str:
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        text = ""
    if _DEVICE_ID_RE.fullmatch(text):
        return text
    if len(raw) * 2 > MAX_DEVICE_ID:
        raise EASParseError("binary DeviceId longer than 16 bytes")
    return raw.hex().upper()


def _binary_text(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise EASParseError(f"{what} is not UTF-8") from None


def _binary_options(raw: bytes) -> list[tuple[str, str]]:
    if len(raw) != 1:
        raise EASParseError("Options must be one byte")
    bits = raw[0]
    if bits & ~sum(OPTION_FLAGS):
        raise EASParseError("unknown Options flag")
    return [(name, "T") for bit, name in OPTION_FLAGS.items() if bits & bit]


def _binary_parameters(buf: _Buffer) -> tuple[str | None, list[tuple[str, str]]]:
    user = None
    params: list[tuple[str, str]] = []
    seen: set[int] = set()
    while not buf.at_end():
        tag = buf.byte("parameter tag")
        name = PARAMETER_TAGS.get(tag)
        if name is None:
            raise EASParseError("unknown base64 parameter tag")
        if tag in seen:
            raise EASParseError(f"duplicate parameter {name}")
        seen.add(tag)
        length = buf.byte("parameter length")
        if length == 0:
            raise EASParseError(f"empty parameter {name}")
        raw = buf.take(length, name)
        if tag == _TAG_OPTIONS:
            params.extend(_binary_options(raw))
        elif tag == _TAG_USER:
            user = _check_user(_binary_text(raw, "User"))
        else:
            params.append((name, _check_parameter_value(name, _binary_text(raw, name))))
    return user, params


def _parse_base64(raw_query: str) -> EASRequest:
    buf = _Buffer(_base64_bytes(raw_query))
    version = buf.byte("protocol version")
    if version not in BASE64_PROTOCOL_VERSIONS:
        raise EASParseError("unsupported protocol version in base64 query")
    command = COMMAND_CODES.get(buf.byte("command code"))
    if command is None:
        raise EASParseError("unknown command code")
    (locale,) = struct.unpack("<H", buf.take(2, "locale"))
    id_length = buf.byte("DeviceId length")
    if id_length == 0:
        raise EASParseError("empty DeviceId")
    device_id = _binary_device_id(buf.take(id_length, "DeviceId"))
    policy_key = _binary_policy_key(buf)
    type_length = buf.byte("DeviceType length")
    device_type = _check_device_type(
        _binary_text(buf.take(type_length, "DeviceType"), "DeviceType")
    )
    user, params = _binary_parameters(buf)
    return EASRequest(
        command=command,
        device_id=device_id,
        device_type=device_type,
        user=user,
        protocol_version=f"{version // 10}.{version % 10}",
        locale=locale,
        policy_key=policy_key,
        parameters=tuple(params),
        form="base64",
    )


def _binary_policy_key(buf: _Buffer) -> int | None:
    length = buf.byte("policy key length")
    if length == 0:
        return None
    if length != 4:
        raise EASParseError("policy key length must be 0 or 4")
    (key,) = struct.unpack("<I", buf.take(4, "policy key"))
    return key


def build_base64_query(
    command: str,
    device_id: str | bytes,
    device_type: str,
    *,
    protocol_version: str = "14.1",
    locale: int = 0x0409,
    policy_key: int | None = None,
    user: str | None = None,
    parameters: tuple[tuple[str, str | bytes], ...] = (),
) -> str:
    """Encode a request the way a device does in the base64 form.

    For tests and simulated devices. ``parameters`` use the names of
    ``PARAMETER_TAGS``; ``("Options", b"\\x01")`` passes the bitmask raw.
    The result is plain base64, not percent-encoded.
    """
    codes = {name: code for code, name in COMMAND_CODES.items()}
    major, _, minor = protocol_version.partition(".")
    ident = device_id.encode("utf-8") if isinstance(device_id, str) else device_id
    out = bytearray([int(major) * 10 + int(minor), codes[command]])
    out += struct.pack("<H", locale)
    out += _length_prefixed(ident)
    out += b"\x00" if policy_key is None else b"\x04" + struct.pack("<I", policy_key)
    out += _length_prefixed(device_type.encode("utf-8"))
    if user is not None:
        parameters = (("User", user), *parameters)
    for name, value in parameters:
        raw = value.encode("utf-8") if isinstance(value, str) else value
        out += bytes([_TAG_BY_NAME[name]]) + _length_prefixed(raw)
    return base64.b64encode(bytes(out)).decode("ascii")


def _length_prefixed(raw: bytes) -> bytes:
    if len(raw) > 255:
        raise ValueError("field longer than 255 bytes")
    return bytes([len(raw)]) + raw
