"""A small WBXML 1.3 decoder and encoder for ActiveSync bodies (MS-ASWBXML).

The gate reads one thing from request bodies: ``Settings:DeviceInformation``,
which a device sends in ``Provision`` (protocol 14.1) or ``Settings``
(other versions). This module decodes a whole document into ``Element``
trees, so any tag can be walked, and pulls those fields out.

Wire format (WBXML 1.3 as ActiveSync uses it)::

    header   version 0x03, public id mb_u_int32 (0x01: unknown),
             charset mb_u_int32 (106: UTF-8), string table length (0)
    body     one root element

    token    0x00 SWITCH_PAGE + page byte: later tags are in that code page
             0x01 END: closes the innermost open element
             0x03 STR_I + UTF-8 bytes + 0x00: inline text
             0xC3 OPAQUE + mb_u_int32 length + bytes: raw data
             other: a tag; bits 0-5 token (0x05-0x3F) in the current page,
             bit 6 "has content" (children follow, closed by END),
             bit 7 "has attributes" (never used by ActiveSync)

``mb_u_int32`` is big-endian base-128: 7 bits a byte, high bit set on all
but the last byte, at most 5 bytes.

Everything else WBXML allows (string table references, entities, literals,
extensions, processing instructions, attributes) is absent from ActiveSync
and rejected. So are inputs over ``MAX_BODY`` bytes and nesting deeper than
``MAX_DEPTH``, so a hostile body costs bounded time and memory.

Tag names are ``"Namespace:Name"``, e.g. ``"Settings:Model"``. The code pages
with token tables are in ``devices.eas.codepages``. A tag without a known name decodes as
``"Namespace:0xNN"`` (``"Page40:0x05"`` on an unknown page), and encodes
back the same way, instead of failing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from devices.eas.codepages import (  # noqa: F401 - also read from here
    CODE_PAGES,
    PROVISION_PAGE,
    PROVISION_TOKENS,
    SETTINGS_PAGE,
    SETTINGS_TOKENS,
)
from devices.eas.errors import EASParseError

MAX_BODY = 64 * 1024
MAX_DEPTH = 32
MAX_FIELD_LENGTH = 1024  # MS-ASCMD DeviceInformationStringType maxLength

WBXML_VERSION = 0x03
PUBLIC_ID_UNKNOWN = 0x01
CHARSET_UTF8 = 106

SWITCH_PAGE = 0x00
END = 0x01
STR_I = 0x03
OPAQUE = 0xC3
# Global tokens that ActiveSync never uses (MS-ASWBXML 2.1.2.1.1).
_UNSUPPORTED_GLOBALS = frozenset(
    {0x02, 0x04, 0x40, 0x41, 0x42, 0x43, 0x44, 0x80, 0x81, 0x82, 0x83, 0x84, 0xC0, 0xC1, 0xC2, 0xC4}
)
_TAG_CONTENT = 0x40
_TAG_ATTRIBUTES = 0x80
_TAG_MASK = 0x3F
_FIRST_TAG = 0x05

# MS-ASWBXML 2.1.2.1 code page numbers and namespaces.
PAGE_NAMES = {
    0: "AirSync",
    1: "Contacts",
    2: "Email",
    3: "AirNotify",
    4: "Calendar",
    5: "Move",
    6: "GetItemEstimate",
    7: "FolderHierarchy",
    8: "MeetingResponse",
    9: "Tasks",
    10: "ResolveRecipients",
    11: "ValidateCert",
    12: "Contacts2",
    13: "Ping",
    14: "Provision",
    15: "Search",
    16: "GAL",
    17: "AirSyncBase",
    18: "Settings",
    19: "DocumentLibrary",
    20: "ItemOperations",
    21: "ComposeMail",
    22: "Email2",
    23: "Notes",
    24: "RightsManagement",
    25: "Find",
}
_PAGE_BY_NAME = {name: page for page, name in PAGE_NAMES.items()}

_TOKENS = CODE_PAGES
_TOKEN_BY_NAME = {
    page: {name: token for token, name in table.items()} for page, table in _TOKENS.items()
}

# DeviceInformation children (Settings page) and the keys they are reported as.
DEVICE_INFORMATION_FIELDS = {
    "Model": "model",
    "IMEI": "imei",
    "FriendlyName": "friendly_name",
    "OS": "os",
    "OSLanguage": "os_language",
    "PhoneNumber": "phone_number",
    "UserAgent": "user_agent",
    "MobileOperator": "mobile_operator",
}
_FIELD_BY_KEY = {key: name for name, key in DEVICE_INFORMATION_FIELDS.items()}

EAS_PROVISIONING_POLICY = "MS-EAS-Provisioning-WBXML"


@dataclass(slots=True)
class Element:
    """One WBXML element: a qualified tag and its children in order."""

    tag: str
    children: list[Element | str | bytes] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(child for child in self.children if isinstance(child, str))

    def findall(self, tag: str) -> list[Element]:
        return [c for c in self.children if isinstance(c, Element) and c.tag == tag]

    def find(self, tag: str) -> Element | None:
        found = self.findall(tag)
        return found[0] if found else None


# --- names ----------------------------------------------------------------------


def _page_name(page: int) -> str:
    return PAGE_NAMES.get(page, f"Page{page}")


def tag_name(page: int, token: int) -> str:
    """The qualified name of a token in a code page."""
    name = _TOKENS.get(page, {}).get(token)
    return f"{_page_name(page)}:{name or f'0x{token:02X}'}"


def tag_token(tag: str) -> tuple[int, int]:
    """The (code page, token) of a qualified tag name; ValueError if unknown."""
    namespace, sep, local = tag.partition(":")
    if not sep:
        raise ValueError(f"tag {tag!r} has no namespace")
    page = _page_number(namespace)
    token = _TOKEN_BY_NAME.get(page, {}).get(local)
    if token is None:
        token = _generic_token(tag, local)
    return page, token


def _page_number(namespace: str) -> int:
    if namespace in _PAGE_BY_NAME:
        return _PAGE_BY_NAME[namespace]
    digits = namespace.removeprefix("Page")
    if digits != namespace and digits.isdigit() and int(digits) <= 0xFF:
        return int(digits)
    raise ValueError(f"unknown namespace {namespace!r}")


def _generic_token(tag: str, local: str) -> int:
    try:
        token = int(local, 16) if local.lower().startswith("0x") else -1
    except ValueError:
        token = -1
    if not _FIRST_TAG <= token <= _TAG_MASK:
        raise ValueError(f"unknown tag {tag!r}")
    return token


# --- decoder ----------------------------------------------------------------------


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def at_end(self) -> bool:
        return self.pos >= len(self.data)

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise EASParseError("WBXML truncated")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def take(self, count: int) -> bytes:
        end = self.pos + count
        if end > len(self.data):
            raise EASParseError("WBXML truncated")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def mb_u_int32(self) -> int:
        value = 0
        for _ in range(5):
            octet = self.byte()
            value = (value << 7) | (octet & 0x7F)
            if not octet & 0x80:
                if value > 0xFFFFFFFF:
                    break
                return value
        raise EASParseError("WBXML integer too large")

    def inline_string(self) -> str:
        end = self.data.find(b"\x00", self.pos)
        if end < 0:
            raise EASParseError("WBXML string not terminated")
        raw = self.data[self.pos : end]
        self.pos = end + 1
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise EASParseError("WBXML string is not UTF-8") from None


def _read_header(reader: _Reader) -> None:
    if reader.byte() != WBXML_VERSION:
        raise EASParseError("not WBXML 1.3")
    if reader.mb_u_int32() == 0:
        # Public id 0 means "see the string table", which EAS leaves empty.
        raise EASParseError("WBXML public id by string table is not supported")
    if reader.mb_u_int32() != CHARSET_UTF8:
        raise EASParseError("WBXML charset must be UTF-8")
    if reader.mb_u_int32() != 0:
        raise EASParseError("WBXML string table must be empty")


def decode(body: bytes) -> Element:
    """Decode an ActiveSync WBXML document into its root element."""
    if not isinstance(body, bytes | bytearray | memoryview):
        raise EASParseError("WBXML body must be bytes")
    body = bytes(body)
    if len(body) > MAX_BODY:
        raise EASParseError("WBXML body too large")
    reader = _Reader(body)
    _read_header(reader)
    root = _read_body(reader)
    if not reader.at_end():
        raise EASParseError("data after the WBXML root element")
    return root


def _read_body(reader: _Reader) -> Element:
    page = 0
    root: Element | None = None
    stack: list[Element] = []
    while root is None or stack:
        token = reader.byte()
        if token == SWITCH_PAGE:
            page = reader.byte()
        elif token == END:
            if not stack:
                raise EASParseError("WBXML END without an open element")
            stack.pop()
        elif token in (STR_I, OPAQUE):
            if not stack:
                raise EASParseError("WBXML content outside an element")
            stack[-1].children.append(_read_content(reader, token))
        elif token in _UNSUPPORTED_GLOBALS:
            raise EASParseError(f"WBXML token 0x{token:02X} is not used by ActiveSync")
        else:
            element = _open_tag(token, page)
            if stack:
                stack[-1].children.append(element)
            else:
                root = element
            if token & _TAG_CONTENT:
                if len(stack) >= MAX_DEPTH:
                    raise EASParseError("WBXML nested too deeply")
                stack.append(element)
    return root


def _read_content(reader: _Reader, token: int) -> str | bytes:
    if token == STR_I:
        return reader.inline_string()
    return reader.take(reader.mb_u_int32())


def _open_tag(token: int, page: int) -> Element:
    if token & _TAG_ATTRIBUTES:
        raise EASParseError("WBXML attributes are not used by ActiveSync")
    return Element(tag_name(page, token & _TAG_MASK))


# --- encoder ----------------------------------------------------------------------


def encode(root: Element) -> bytes:
    """Encode an element tree as an ActiveSync WBXML document."""
    out = bytearray([WBXML_VERSION, PUBLIC_ID_UNKNOWN, CHARSET_UTF8, 0x00])
    _encode_element(root, out, [0], depth=1)
    return bytes(out)


def _encode_element(element: Element, out: bytearray, page: list[int], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ValueError("element tree nested too deeply")
    tag_page, token = tag_token(element.tag)
    if tag_page != page[0]:
        out += bytes([SWITCH_PAGE, tag_page])
        page[0] = tag_page
    if not element.children:
        out.append(token)
        return
    out.append(token | _TAG_CONTENT)
    for child in element.children:
        if isinstance(child, Element):
            _encode_element(child, out, page, depth + 1)
        elif isinstance(child, str):
            _encode_string(child, out)
        elif isinstance(child, bytes | bytearray):
            out.append(OPAQUE)
            out += _mb_u_int32(len(child)) + bytes(child)
        else:
            raise ValueError(f"unsupported child {type(child).__name__}")
    out.append(END)


def _encode_string(text: str, out: bytearray) -> None:
    if "\x00" in text:
        raise ValueError("WBXML inline strings cannot contain NUL")
    out.append(STR_I)
    out += text.encode("utf-8") + b"\x00"


def _mb_u_int32(value: int) -> bytes:
    if not 0 <= value <= 0xFFFFFFFF:
        raise ValueError("mb_u_int32 out of range")
    groups = [value & 0x7F]
    value >>= 7
    while value:
        groups.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(groups))


# --- DeviceInformation ----------------------------------------------------------


def extract_device_information(body: bytes) -> dict[str, str]:
    """The DeviceInformation fields of a Provision or Settings request body.

    Keys are those of ``DEVICE_INFORMATION_FIELDS`` that the device sent;
    an empty dict when the body carries no DeviceInformation.
    """
    root = decode(body)
    if root.tag not in ("Provision:Provision", "Settings:Settings"):
        return {}
    device_information = _single(root, "Settings:DeviceInformation")
    if device_information is None:
        return {}
    device_set = _single(device_information, "Settings:Set")
    if device_set is None:
        return {}
    info: dict[str, str] = {}
    for child in device_set.children:
        if not isinstance(child, Element):
            continue
        namespace, _, name = child.tag.partition(":")
        key = DEVICE_INFORMATION_FIELDS.get(name) if namespace == "Settings" else None
        if key is None:
            continue  # e.g. EnableOutboundSMS: not needed by the gate
        if key in info:
            raise EASParseError(f"DeviceInformation repeats {child.tag}")
        info[key] = _field_value(child)
    return info


def _single(parent: Element, tag: str) -> Element | None:
    found = parent.findall(tag)
    if len(found) > 1:
        raise EASParseError(f"more than one {tag}")
    return found[0] if found else None


def _field_value(element: Element) -> str:
    parts = []
    for child in element.children:
        if isinstance(child, Element):
            raise EASParseError(f"{element.tag} must hold text only")
        if isinstance(child, bytes):
            try:
                child = child.decode("utf-8")
            except UnicodeDecodeError:
                raise EASParseError(f"{element.tag} is not UTF-8") from None
        parts.append(child)
    value = "".join(parts)
    if len(value) > MAX_FIELD_LENGTH:
        raise EASParseError(f"{element.tag} longer than {MAX_FIELD_LENGTH} characters")
    if any(ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 for ch in value):
        raise EASParseError(f"{element.tag} contains control characters")
    return value


def build_device_information_body(command: str, info: dict[str, str]) -> bytes:
    """A request body carrying DeviceInformation, as a device sends it.

    ``command`` is "Provision" (protocol 14.1: DeviceInformation inside the
    initial Provision request) or "Settings". ``info`` uses the keys of
    ``DEVICE_INFORMATION_FIELDS``.
    """
    unknown = set(info) - set(_FIELD_BY_KEY)
    if unknown:
        raise ValueError(f"unknown DeviceInformation keys: {sorted(unknown)}")
    device_set = Element("Settings:Set")
    for name, key in DEVICE_INFORMATION_FIELDS.items():  # schema order
        if key in info:
            device_set.children.append(Element(f"Settings:{name}", [info[key]]))
    device_information = Element("Settings:DeviceInformation", [device_set])
    if command == "Provision":
        policy_type = Element("Provision:PolicyType", [EAS_PROVISIONING_POLICY])
        policies = Element("Provision:Policies", [Element("Provision:Policy", [policy_type])])
        root = Element("Provision:Provision", [device_information, policies])
    elif command == "Settings":
        root = Element("Settings:Settings", [device_information])
    else:
        raise ValueError("command must be 'Provision' or 'Settings'")
    return encode(root)
