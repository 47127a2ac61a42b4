"""Parsing of the EAS request-line query (MS-ASHTTP 2.2.1.1.1), no Django."""

import base64
import struct
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.eas import EASParseError, EASRequest, build_base64_query, parse_query
from devices.eas.query import COMMAND_CODES, MAX_QUERY_LENGTH

# MS-ASHTTP 2.2.1.1.1.1: the spec's example, equivalent to
# Cmd=Sync&User=rmjones&DeviceId=v140Device&DeviceType=SmartPhone (the base64
# form leaves User out).
SPEC_EXAMPLE = "jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l"


def raw_base64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def header(version=141, command=0, locale=0x0409, device_id=b"dev1", policy=b"\x00"):
    """The fixed part of a base64 query, up to and including the DeviceId."""
    return (
        bytes([version, command])
        + struct.pack("<H", locale)
        + bytes([len(device_id)])
        + device_id
        + policy
    )


def with_type(prefix: bytes, device_type=b"iPhone") -> bytes:
    return prefix + bytes([len(device_type)]) + device_type


VALID = with_type(header())


# --- the spec example ---------------------------------------------------------


def test_spec_example_base64():
    assert parse_query(SPEC_EXAMPLE) == EASRequest(
        command="Sync",
        device_id="v140Device",
        device_type="SmartPhone",
        user=None,
        protocol_version="14.0",
        locale=0x0409,
        policy_key=None,
        parameters=(),
        form="base64",
    )


def test_spec_example_bytes():
    # 0x8C = 140 -> 14.0; 0x00 Sync; 09 04 = locale 0x0409 little-endian;
    # 0x0A + "v140Device"; 0x00 no policy key; 0x0A + "SmartPhone".
    assert base64.b64decode(SPEC_EXAMPLE) == (b"\x8c\x00\x09\x04\x0av140Device\x00\x0aSmartPhone")


def test_spec_example_plain():
    request = parse_query("Cmd=Sync&User=rmjones&DeviceId=v140Device&DeviceType=SmartPhone")
    assert request == EASRequest(
        command="Sync",
        device_id="v140Device",
        device_type="SmartPhone",
        user="rmjones",
        protocol_version=None,
        locale=None,
        policy_key=None,
        parameters=(),
        form="plain",
    )


# --- plain form -------------------------------------------------------------------

PLAIN_CASES = [
    # (query, expected fields)
    (
        "Cmd=Provision&User=CONTOSO%5Cjdoe&DeviceId=ApplC39X1234&DeviceType=iPhone",
        {"command": "Provision", "user": "CONTOSO\\jdoe", "device_type": "iPhone"},
    ),
    (
        "Cmd=Ping&User=jdoe%40contoso.com&DeviceId=androidc1234567890&DeviceType=Android",
        {"command": "Ping", "user": "jdoe@contoso.com", "device_id": "androidc1234567890"},
    ),
    (
        "Cmd=Sync&User=john+tag@contoso.com&DeviceId=a-b_c&DeviceType=SAMSUNG-SM.G991B",
        {"user": "john+tag@contoso.com", "device_id": "a-b_c", "device_type": "SAMSUNG-SM.G991B"},
    ),
    (
        "Cmd=Sync&User=john%2Btag%40contoso.com&DeviceId=x&DeviceType=y",
        {"user": "john+tag@contoso.com"},
    ),
    ("DeviceType=WP8&DeviceId=abc&Cmd=FolderSync", {"command": "FolderSync", "user": None}),
    ("Cmd=Settings&User=&DeviceId=abc&DeviceType=WP8", {"user": None}),
    ("cmd=sync&user=jdoe&deviceid=abc&devicetype=WP8", {"command": "Sync", "user": "jdoe"}),
    ("Cmd=Sync&DeviceId=abc&DeviceType=WP8&", {"command": "Sync"}),
    ("Cmd=%53ync&DeviceId=%61bc&DeviceType=WP8", {"command": "Sync", "device_id": "abc"}),
    ("Cmd=Find&DeviceId=" + "a" * 32 + "&DeviceType=" + "T" * 32, {"command": "Find"}),
    ("Cmd=Sync&User=" + "u" * 256 + "&DeviceId=a&DeviceType=b", {"user": "u" * 256}),
    (
        "Cmd=SmartReply&User=jdoe&DeviceId=abc&DeviceType=PocketPC"
        "&ItemId=5%3A12&CollectionId=5&SaveInSent=T&Occurrence=x",
        {
            "command": "SmartReply",
            "parameters": (
                ("ItemId", "5:12"),
                ("CollectionId", "5"),
                ("SaveInSent", "T"),
                ("Occurrence", "x"),
            ),
        },
    ),
    (
        "Cmd=GetAttachment&DeviceId=abc&DeviceType=PocketPC&AttachmentName=a%20b%2Bc.txt",
        {"parameters": (("AttachmentName", "a b+c.txt"),)},
    ),
    (
        "Cmd=Sync&DeviceId=abc&DeviceType=X&attachmentname=f&X-Extra=1",
        {"parameters": (("AttachmentName", "f"), ("X-Extra", "1"))},
    ),
]


@pytest.mark.parametrize(("query", "expected"), PLAIN_CASES)
def test_plain_form(query, expected):
    request = parse_query(query)
    assert request.form == "plain"
    assert request.protocol_version is None
    assert request.policy_key is None
    assert request.locale is None
    for field, value in expected.items():
        assert getattr(request, field) == value, field


def test_every_command_name_accepted():
    for command in ("GetHierarchy", "CreateCollection", "MoveCollection", "ValidateCert"):
        assert parse_query(f"Cmd={command}&DeviceId=a&DeviceType=b").command == command


def test_parameter_lookup():
    request = parse_query("Cmd=SmartForward&DeviceId=a&DeviceType=b&ItemId=7")
    assert request.parameter("ItemId") == "7"
    assert request.parameter("LongId") is None


# --- base64 form ------------------------------------------------------------------


def test_every_command_code():
    for code, name in COMMAND_CODES.items():
        request = parse_query(raw_base64(with_type(header(command=code))))
        assert request.command == name


@pytest.mark.parametrize(
    ("version", "expected"),
    [(121, "12.1"), (140, "14.0"), (141, "14.1"), (160, "16.0"), (161, "16.1")],
)
def test_protocol_version_byte(version, expected):
    assert parse_query(raw_base64(with_type(header(version=version)))).protocol_version == expected


def test_policy_key_little_endian():
    data = with_type(header(policy=b"\x04" + struct.pack("<I", 3942919513)))
    assert parse_query(raw_base64(data)).policy_key == 3942919513


def test_zero_policy_key_is_kept():
    data = with_type(header(policy=b"\x04\x00\x00\x00\x00"))
    assert parse_query(raw_base64(data)).policy_key == 0


def test_locale():
    assert parse_query(raw_base64(with_type(header(locale=0x0407)))).locale == 0x0407


def test_binary_device_id_keyed_by_hex():
    guid = bytes.fromhex("6F24CAD599A5BF1A690246B8C68FAE8D")
    request = parse_query(raw_base64(with_type(header(device_id=guid))))
    assert request.device_id == "6F24CAD599A5BF1A690246B8C68FAE8D"


def test_text_device_id_with_disallowed_char_keyed_by_hex():
    request = parse_query(raw_base64(with_type(header(device_id=b"a.b"))))
    assert request.device_id == "612E62"


def test_text_device_id_used_as_is():
    request = parse_query(raw_base64(with_type(header(device_id=b"Appl-F17_ABCDEF"))))
    assert request.device_id == "Appl-F17_ABCDEF"


def test_parameters_and_user():
    query = build_base64_query(
        "SmartReply",
        "dev1",
        "iPhone",
        user="CONTOSO\\jdoe",
        parameters=(("CollectionId", "5"), ("ItemId", "5:12"), ("Options", b"\x03")),
    )
    request = parse_query(query)
    assert request.user == "CONTOSO\\jdoe"
    assert request.parameters == (
        ("CollectionId", "5"),
        ("ItemId", "5:12"),
        ("SaveInSent", "T"),
        ("AcceptMultiPart", "T"),
    )


def test_every_string_parameter_tag():
    names = ("AttachmentName", "CollectionId", "ItemId", "LongId", "Occurrence")
    query = build_base64_query("SmartForward", "d", "t", parameters=tuple((n, n) for n in names))
    assert parse_query(query).parameters == tuple((n, n) for n in names)


def test_builder_matches_spec_example():
    assert build_base64_query("Sync", "v140Device", "SmartPhone", protocol_version="14.0") == (
        SPEC_EXAMPLE
    )


def _query_containing(char: str) -> str:
    # Six 1-bits in a row encode as '/', 0b111110 as '+': vary the policy key
    # and the DeviceId length until the wanted character shows up.
    for length in range(1, 4):
        for key in (0xFBEFBE, 0xF8E38F, 0xFFFFFFFF, 0x3EFBEF):
            query = build_base64_query("Ping", "d" * length, "iPhone", policy_key=key)
            if char in query:
                return query
    raise AssertionError(f"no {char!r} produced")


@pytest.mark.parametrize("char", ["+", "/"])
def test_plus_and_slash_in_base64_are_data(char):
    query = _query_containing(char)
    request = parse_query(query)
    assert (request.command, request.device_type) == ("Ping", "iPhone")
    # Percent-encoded the way some clients send it: %2B, %2F, %3D.
    assert parse_query(quote(query, safe="")) == request


def _padded_query() -> str:
    for length in range(1, 4):
        query = build_base64_query("Sync", "d" * length, "iPhone")
        if query.endswith("="):
            return query
    raise AssertionError("no padding produced")


def test_percent_encoded_padding():
    query = _padded_query()
    assert parse_query(query.replace("=", "%3D")) == parse_query(query)


def test_missing_padding_tolerated():
    query = _padded_query()
    assert parse_query(query.rstrip("=")) == parse_query(query)


# --- malformed input ----------------------------------------------------------------

MALFORMED = [
    ("", "empty"),
    ("a" * (MAX_QUERY_LENGTH + 1), "too long"),
    ("Cmd=Sync&DeviceId=a b&DeviceType=x", "space"),
    ("Cmd=Sync&DeviceId=ab&DeviceType=x\n", "control char"),
    ("Cmd=Sync&DeviceId=a%20b&DeviceType=x", "encoded space in DeviceId"),
    ("Cmd=Sync&DeviceId=a%0Ab&DeviceType=x", "encoded newline in DeviceId"),
    ("Cmd=Sync&DeviceId=a,b&DeviceType=x", "comma in DeviceId"),
    ("Cmd=Sync&DeviceId=a.b&DeviceType=x", "dot in DeviceId"),
    ("Cmd=Sync&DeviceId=" + "a" * 33 + "&DeviceType=x", "DeviceId too long"),
    ("Cmd=Sync&DeviceId=&DeviceType=x", "empty DeviceId"),
    ("Cmd=Sync&DeviceId=a&DeviceType=" + "t" * 33, "DeviceType too long"),
    ("Cmd=Sync&DeviceId=a&DeviceType=i/Phone", "slash in DeviceType"),
    ("Cmd=Sync&DeviceId=a&DeviceType=", "empty DeviceType"),
    ("Cmd=Sync&User=" + "u" * 257 + "&DeviceId=a&DeviceType=b", "User too long"),
    ("Cmd=Sync&User=a%20b&DeviceId=a&DeviceType=b", "space in User"),
    ("Cmd=Sync&User=a%09b&DeviceId=a&DeviceType=b", "tab in User"),
    ("Cmd=Sync&User=a%00b&DeviceId=a&DeviceType=b", "NUL in User"),
    ("Cmd=Autodiscover&DeviceId=a&DeviceType=b", "not an MS-ASCMD command"),
    ("Cmd=Options&DeviceId=a&DeviceType=b", "not a command"),
    ("Cmd=&DeviceId=a&DeviceType=b", "empty command"),
    ("DeviceId=a&DeviceType=b", "missing Cmd"),
    ("Cmd=Sync&DeviceType=b", "missing DeviceId"),
    ("Cmd=Sync&DeviceId=a", "missing DeviceType"),
    ("Cmd=Sync&Cmd=Ping&DeviceId=a&DeviceType=b", "duplicate Cmd"),
    ("Cmd=Sync&cmd=Ping&DeviceId=a&DeviceType=b", "duplicate Cmd in other case"),
    ("Cmd=Sync&DeviceId=a&DeviceId=b&DeviceType=b", "duplicate DeviceId"),
    ("Cmd=Sync&User=a&User=b&DeviceId=a&DeviceType=b", "duplicate User"),
    ("Cmd=Sync&DeviceId=a&DeviceType=b&ItemId=1&ItemId=2", "duplicate parameter"),
    ("Cmd=Sync&DeviceId=a&DeviceType=b&Foo", "parameter without ="),
    ("Cmd=Sync&DeviceId=a&DeviceType=b&Fo%20o=1", "bad parameter name"),
    ("Cmd=Sync&DeviceId=a&DeviceType=b&ItemId=%01", "control char in parameter"),
    ("Cmd=Sync&DeviceId=a&DeviceType=b&SaveInSent=yes", "SaveInSent not T/F"),
    ("Cmd=Sync&DeviceId=a&DeviceType=b&ItemId=" + "x" * 1025, "parameter too long"),
    ("Cmd=Sync&DeviceId=%ZZ&DeviceType=b", "malformed percent escape"),
    ("Cmd=Sync&DeviceId=a%&DeviceType=b", "truncated percent escape"),
    ("Cmd=Sync&User=%C3%28&DeviceId=a&DeviceType=b", "invalid UTF-8"),
    ("Cmd=Sync&User=j\u00f6rg&DeviceId=a&DeviceType=b", "raw non-ASCII"),
    ("?Cmd=Sync&DeviceId=a&DeviceType=b", "leading ?"),
    ("not base64!", "neither form"),
    ("jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25", "bad base64 length"),
    ("jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l%", "stray percent"),
    ("jAAJBAp2MTQwRGV2aWNl-ApTbWFydFBob25l", "url-safe alphabet"),
    ("=jAAJ", "padding first"),
]


@pytest.mark.parametrize(("query", "why"), MALFORMED, ids=[why for _, why in MALFORMED])
def test_malformed_query_rejected(query, why):
    with pytest.raises(EASParseError):
        parse_query(query)


MALFORMED_BINARY = [
    (b"", "empty"),
    (b"\x8d", "version only"),
    (header(version=120)[:2], "truncated after command"),
    (with_type(header(version=25)), "2.5 cannot use base64"),
    (with_type(header(version=120)), "12.0 cannot use base64"),
    (with_type(header(version=142)), "unknown version"),
    (with_type(header(command=5)), "unassigned command code 5"),
    (with_type(header(command=23)), "unknown command code 23"),
    (with_type(header(command=255)), "command code 255"),
    (header()[:3], "truncated locale"),
    (header()[:4], "missing DeviceId length"),
    (header()[:6], "truncated DeviceId"),
    (header(), "missing policy key length"),
    (with_type(header(device_id=b"")), "empty DeviceId"),
    (with_type(header(device_id=b"\x00" * 17)), "binary DeviceId over 16 bytes"),
    (with_type(header(device_id=b"a" * 33)), "text DeviceId over 32 chars"),
    (with_type(header(policy=b"\x02\x01\x02")), "policy key length 2"),
    (with_type(header(policy=b"\x04\x01\x02")), "truncated policy key"),
    (header() + b"\x05abc", "truncated DeviceType"),
    (with_type(header(), b""), "empty DeviceType"),
    (with_type(header(), b"i Phone"), "space in DeviceType"),
    (with_type(header(), b"\xff\xfe"), "DeviceType not UTF-8"),
    (with_type(header(), b"T" * 33), "DeviceType too long"),
    (VALID + b"\x08", "parameter tag without length"),
    (VALID + b"\x08\x05ab", "parameter shorter than its length"),
    (VALID + b"\x02\x01a", "unassigned parameter tag 2"),
    (VALID + b"\x09\x01a", "unknown parameter tag 9"),
    (VALID + b"\x08\x00", "empty User"),
    (VALID + b"\x08\x03a b", "space in User"),
    (VALID + b"\x08\x02\xc3\x28", "User not UTF-8"),
    (VALID + b"\x08\x01a\x08\x01b", "duplicate User"),
    (VALID + b"\x01\x01a\x01\x01b", "duplicate CollectionId"),
    (VALID + b"\x07\x02\x01\x00", "Options longer than a byte"),
    (VALID + b"\x07\x01\x04", "unknown Options flag"),
    (VALID + b"\x03\x02\x01\x02", "control chars in ItemId"),
]


@pytest.mark.parametrize(
    ("data", "why"), MALFORMED_BINARY, ids=[why for _, why in MALFORMED_BINARY]
)
def test_malformed_base64_rejected(data, why):
    with pytest.raises(EASParseError):
        parse_query(raw_base64(data) or "A")


def test_error_is_a_value_error_with_message():
    with pytest.raises(ValueError, match="missing DeviceType"):
        parse_query("Cmd=Sync&DeviceId=a")


def test_non_string_rejected():
    with pytest.raises(EASParseError):
        parse_query(b"Cmd=Sync")  # type: ignore[arg-type]


# --- properties ---------------------------------------------------------------------------


def parse_or_reject(query: str) -> EASRequest | None:
    try:
        request = parse_query(query)
    except EASParseError:
        return None
    assert isinstance(request, EASRequest)
    assert len(request.device_id) <= 32
    assert len(request.device_type) <= 32
    assert request.user is None or len(request.user) <= 256
    return request


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_text_parses_or_raises(query):
    parse_or_reject(query)


QUERY_ALPHABET = st.sampled_from(list("CmdUserDeviceIdType=&%+/0123456789aAbBfF\\@.-_ "))


@settings(max_examples=300, deadline=None)
@given(st.text(QUERY_ALPHABET, max_size=120))
def test_query_like_text_parses_or_raises(query):
    parse_or_reject(query)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_as_base64_parse_or_raise(data):
    parse_or_reject(raw_base64(data) or "A")


VALID_BINARY = base64.b64decode(
    build_base64_query(
        "SmartReply",
        bytes.fromhex("6F24CAD599A5BF1A690246B8C68FAE8D"),
        "WindowsMail",
        policy_key=1234,
        user="CONTOSO\\jdoe",
        parameters=(("CollectionId", "5"), ("ItemId", "5:12"), ("Options", b"\x01")),
    )
)


@st.composite
def mutated(draw, data: bytes) -> bytes:
    """Flip, insert or delete a few bytes of a valid encoding."""
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["flip", "insert", "delete"]))
        pos = draw(st.integers(0, len(buf)))
        if action == "insert":
            buf.insert(pos, draw(st.integers(0, 255)))
        elif buf and pos < len(buf):
            if action == "flip":
                buf[pos] ^= 1 << draw(st.integers(0, 7))
            else:
                del buf[pos]
    return bytes(buf)


@settings(max_examples=300, deadline=None)
@given(mutated(VALID_BINARY))
def test_mutated_base64_parses_or_raises(data):
    parse_or_reject(raw_base64(data) or "A")


VALID_PLAIN = b"Cmd=SmartReply&User=CONTOSO%5Cjdoe&DeviceId=abc-1&DeviceType=iPhone&ItemId=5%3A1"


@settings(max_examples=300, deadline=None)
@given(mutated(VALID_PLAIN))
def test_mutated_plain_parses_or_raises(data):
    parse_or_reject(data.decode("latin-1"))


@settings(max_examples=200, deadline=None)
@given(
    command=st.sampled_from(sorted(COMMAND_CODES.values())),
    device_id=st.binary(min_size=1, max_size=16),
    device_type=st.from_regex(r"[A-Za-z0-9._-]{1,32}", fullmatch=True),
    policy_key=st.none() | st.integers(0, 2**32 - 1),
    locale=st.integers(0, 0xFFFF),
    user=st.none() | st.from_regex(r"[A-Za-z0-9@.\\+_-]{1,64}", fullmatch=True),
)
def test_base64_round_trip(command, device_id, device_type, policy_key, locale, user):
    query = build_base64_query(
        command, device_id, device_type, policy_key=policy_key, locale=locale, user=user
    )
    request = parse_query(quote(query, safe=""))
    assert request.command == command
    assert request.device_type == device_type
    assert request.policy_key == policy_key
    assert request.locale == locale
    assert request.user == user
    as_text = device_id.decode("latin-1")
    if as_text.isascii() and all(c.isalnum() or c in "-_" for c in as_text):
        assert request.device_id == as_text
    else:
        assert request.device_id == device_id.hex().upper()
