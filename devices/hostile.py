"""Hostile characters: what may be stored, and how stored text is shown.

Devices name themselves (DeviceInformation, User-Agent), and the names land in
pages, mail subjects and CSV files. No control character (C0, DEL, C1, the
Unicode line and paragraph separators) and no bidi override or isolate
(U+202A-U+202E, U+2066-U+2069, which reorder what a reader sees) is stored:
the gate refuses controls (400) and drops bidi controls; people's input (CLI,
forms, API, imports) is normalised, line breaks becoming spaces. Text stored
before this existed is shown through `neutral()` (the `neutral` template
filter, the mail subject), which makes every such character a visible U+FFFD.

Pure: no Django, so the gate's parsers and the fuzzer use it as is.
"""

import re

BIDI_CONTROLS = frozenset(chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)))
LINE_BREAKS = frozenset("\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
REPLACEMENT = "\ufffd"

_CONTROLS = "\x00-\x1f\x7f-\x9f\u2028\u2029"
_BIDI = "\u202a-\u202e\u2066-\u2069"
_UNSAFE_RE = re.compile(f"[{_CONTROLS}{_BIDI}]")
_CONTROL_RE = re.compile(f"[{_CONTROLS}]")
_BIDI_RE = re.compile(f"[{_BIDI}]")
_BREAKS_RE = re.compile("[\r\n\t\x0b\x0c\x1c-\x1e\x85\u2028\u2029]+")


_TOKEN_RE = re.compile(r"[\x21-\x7e]{1,64}")


def request_id(given: str) -> str | None:
    """A client's X-Request-ID when it is a plain token (printable ASCII, at most
    64 characters), else None: the caller makes its own."""
    given = (given or "").strip()
    return given if _TOKEN_RE.fullmatch(given) else None


def is_unsafe(ch: str) -> bool:
    return _UNSAFE_RE.match(ch) is not None


def has_unsafe(text: str) -> bool:
    """True when the text holds a control or bidi-control character."""
    return _UNSAFE_RE.search(text) is not None


def has_control(text: str) -> bool:
    return _CONTROL_RE.search(text) is not None


def drop_bidi(text: str) -> str:
    return _BIDI_RE.sub("", text)


def recode_header(value: str) -> str:
    """A request header's real text.

    WSGI hands headers over as latin-1-decoded str (PEP 3333), so a device's
    UTF-8 User-Agent "Gerät" arrives as "GerÃ¤t". When the bytes are valid
    UTF-8 (Python's decoder refuses overlong forms and surrogates) they are
    decoded as such; otherwise the latin-1 reading stands.
    """
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError:
        return value  # not from WSGI (an ASGI server, a test): already text
    if raw.isascii():
        return value
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return value


def clean_line(text: str | None) -> str:
    """People's one-line input (a display name): line breaks and tabs become one
    space, other controls and bidi controls go, the ends are trimmed."""
    if not text:
        return ""
    text = _BREAKS_RE.sub(" ", text)
    return _UNSAFE_RE.sub("", text).strip()


def clean_device_text(text: str | None) -> str:
    """A device-reported value as it is stored: no control, no bidi control."""
    if not text:
        return ""
    return _UNSAFE_RE.sub("", text)


def escape_in_json(text: str) -> str:
    """JSON text with every unsafe character as a \\uXXXX escape: the same data,
    nothing raw on a terminal. (They can only occur inside JSON strings.)"""
    return _UNSAFE_RE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def neutral(value) -> str:
    """Stored text made safe to show: each unsafe character a visible U+FFFD."""
    if value is None:
        return ""
    return _UNSAFE_RE.sub(REPLACEMENT, str(value))
