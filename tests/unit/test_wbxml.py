"""WBXML decoding/encoding of ActiveSync bodies (MS-ASWBXML), no Django."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.eas import (
    MAX_BODY,
    EASParseError,
    Element,
    build_device_information_body,
    decode,
    encode,
    extract_device_information,
)
from devices.eas.wbxml import (
    MAX_DEPTH,
    PROVISION_TOKENS,
    SETTINGS_TOKENS,
    tag_name,
    tag_token,
)


def s(text: str) -> bytes:
    """STR_I: inline UTF-8 string, NUL-terminated."""
    return b"\x03" + text.encode("utf-8") + b"\x00"


# No captured device trace was found in public sources, so this initial
# Provision request (protocol 14.1) is assembled by hand from the
# MS-ASWBXML tables; the field values come from the MS-ASCMD/MS-ASMS
# DeviceInformation example.
PROVISION_REQUEST = (
    b"\x03"  # WBXML version 1.3
    b"\x01"  # public id: unknown
    b"\x6a"  # charset 106: UTF-8
    b"\x00"  # string table length 0
    b"\x00\x0e"  # SWITCH_PAGE 14 (Provision)
    b"\x45"  # <Provision>           0x05 | 0x40 content
    b"\x00\x12"  # SWITCH_PAGE 18 (Settings)
    b"\x56"  # <DeviceInformation>   0x16 | 0x40
    b"\x48"  # <Set>                 0x08 | 0x40
    b"\x57" + s("Manufacturer-Name-Number") + b"\x01"  # <Model>        0x17
    b"\x58" + s("123456789012345") + b"\x01"  # <IMEI>                   0x18
    b"\x59" + s("My PPC Phone") + b"\x01"  # <FriendlyName>              0x19
    b"\x5a" + s("PPC") + b"\x01"  # <OS>                                 0x1A
    b"\x5b" + s("us-EN") + b"\x01"  # <OSLanguage>                       0x1B
    b"\x5c" + s("206-555-0112") + b"\x01"  # <PhoneNumber>               0x1C
    b"\x60" + s("Apple-iPhone9C1/1402.100") + b"\x01"  # <UserAgent>     0x20
    b"\x61" + s("1") + b"\x01"  # <EnableOutboundSMS> 0x21 (ignored)
    b"\x62" + s("T-Mojo") + b"\x01"  # <MobileOperator>                  0x22
    b"\x01"  # </Set>
    b"\x01"  # </DeviceInformation>
    b"\x00\x0e"  # SWITCH_PAGE 14 (Provision)
    b"\x46"  # <Policies>            0x06 | 0x40
    b"\x47"  # <Policy>              0x07 | 0x40
    b"\x48" + s("MS-EAS-Provisioning-WBXML") + b"\x01"  # <PolicyType> 0x08
    b"\x01"  # </Policy>
    b"\x01"  # </Policies>
    b"\x01"  # </Provision>
)

EXPECTED_INFO = {
    "model": "Manufacturer-Name-Number",
    "imei": "123456789012345",
    "friendly_name": "My PPC Phone",
    "os": "PPC",
    "os_language": "us-EN",
    "phone_number": "206-555-0112",
    "user_agent": "Apple-iPhone9C1/1402.100",
    "mobile_operator": "T-Mojo",
}

# The same DeviceInformation as a Settings command body (protocol != 14.1).
SETTINGS_REQUEST = (
    b"\x03\x01\x6a\x00"
    b"\x00\x12"  # SWITCH_PAGE 18 (Settings)
    b"\x45"  # <Settings>
    b"\x56\x48"  # <DeviceInformation><Set>
    b"\x57" + s("SM-G991B") + b"\x01"  # <Model>
    b"\x5a" + s("Android 14") + b"\x01"  # <OS>
    b"\x01\x01\x01"  # </Set></DeviceInformation></Settings>
)


# --- token tables ---------------------------------------------------------------------


# Values checked against MS-ASWBXML (via Z-Push wbxmldefs.php and a Go
# implementation's spec tests).
@pytest.mark.parametrize(
    ("page", "token", "name"),
    [
        (14, 0x05, "Provision:Provision"),
        (14, 0x06, "Provision:Policies"),
        (14, 0x07, "Provision:Policy"),
        (14, 0x08, "Provision:PolicyType"),
        (14, 0x09, "Provision:PolicyKey"),
        (14, 0x0A, "Provision:Data"),
        (14, 0x0B, "Provision:Status"),
        (14, 0x0C, "Provision:RemoteWipe"),
        (14, 0x0D, "Provision:EASProvisionDoc"),
        (18, 0x05, "Settings:Settings"),
        (18, 0x06, "Settings:Status"),
        (18, 0x07, "Settings:Get"),
        (18, 0x08, "Settings:Set"),
        (18, 0x16, "Settings:DeviceInformation"),
        (18, 0x17, "Settings:Model"),
        (18, 0x18, "Settings:IMEI"),
        (18, 0x19, "Settings:FriendlyName"),
        (18, 0x1A, "Settings:OS"),
        (18, 0x1B, "Settings:OSLanguage"),
        (18, 0x1C, "Settings:PhoneNumber"),
        (18, 0x1D, "Settings:UserInformation"),
        (18, 0x20, "Settings:UserAgent"),
        (18, 0x21, "Settings:EnableOutboundSMS"),
        (18, 0x22, "Settings:MobileOperator"),
        (14, 0x12, "Provision:0x12"),  # unassigned
        (1, 0x05, "Contacts:0x05"),  # page without a table here
        (40, 0x3F, "Page40:0x3F"),  # unknown page
    ],
)
def test_tag_names(page, token, name):
    assert tag_name(page, token) == name
    assert tag_token(name) == (page, token)


def test_tables_are_complete_and_in_range():
    for table in (PROVISION_TOKENS, SETTINGS_TOKENS):
        assert all(0x05 <= token <= 0x3F for token in table)
        assert len(set(table.values())) == len(table)


@pytest.mark.parametrize(
    "tag", ["Model", "Settings:Nope", "Nope:Model", "Settings:0x04", "Page256:0x05"]
)
def test_unknown_tag_names_do_not_encode(tag):
    with pytest.raises(ValueError):
        tag_token(tag)


# --- the test vectors -------------------------------------------------------------------


def test_provision_vector_decodes():
    root = decode(PROVISION_REQUEST)
    assert root.tag == "Provision:Provision"
    assert [child.tag for child in root.children] == [
        "Settings:DeviceInformation",
        "Provision:Policies",
    ]
    policy_type = (
        root.find("Provision:Policies").find("Provision:Policy").find("Provision:PolicyType")
    )
    assert policy_type.text == "MS-EAS-Provisioning-WBXML"


def test_provision_vector_device_information():
    assert extract_device_information(PROVISION_REQUEST) == EXPECTED_INFO


def test_encoder_reproduces_provision_vector():
    without_sms = PROVISION_REQUEST.replace(b"\x61" + s("1") + b"\x01", b"")
    assert build_device_information_body("Provision", EXPECTED_INFO) == without_sms
    assert encode(decode(PROVISION_REQUEST)) == PROVISION_REQUEST


def test_settings_vector():
    expected = {"model": "SM-G991B", "os": "Android 14"}
    assert extract_device_information(SETTINGS_REQUEST) == expected
    assert build_device_information_body("Settings", expected) == SETTINGS_REQUEST


@pytest.mark.parametrize("command", ["Provision", "Settings"])
def test_builder_round_trip(command):
    info = {"model": "iPhone15,2", "friendly_name": "Jörg’s iPhone 📱", "imei": "35"}
    assert extract_device_information(build_device_information_body(command, info)) == info


def test_builder_rejects_unknown_input():
    with pytest.raises(ValueError):
        build_device_information_body("Sync", {})
    with pytest.raises(ValueError):
        build_device_information_body("Settings", {"serial": "1"})


# --- documents without DeviceInformation ------------------------------------------------


def body(*tokens: bytes) -> bytes:
    return b"\x03\x01\x6a\x00" + b"".join(tokens)


NO_INFO = [
    # Provision acknowledgement: PolicyKey and Status, no DeviceInformation.
    body(
        b"\x00\x0e\x45\x46\x47\x48",
        s("MS-EAS-Provisioning-WBXML"),
        b"\x01\x49",
        s("1"),
        b"\x01\x4b",
        s("1"),
        b"\x01\x01\x01\x01",
    ),
    body(b"\x00\x12\x45\x49\x07\x01\x01"),  # <Settings><Oof><Get/></Oof></Settings>
    body(b"\x00\x12\x45\x16\x01"),  # empty <DeviceInformation/>
    body(b"\x45\x01"),  # AirSync <Sync></Sync> on page 0
    body(b"\x00\x0d\x05"),  # empty Ping root
    body(b"\x00\x12\x56\x48\x57", s("x"), b"\x01\x01\x01"),  # DeviceInformation as root
]


@pytest.mark.parametrize("data", NO_INFO)
def test_no_device_information(data):
    assert extract_device_information(data) == {}


def test_settings_only_fields_under_set():
    data = body(b"\x00\x12\x45\x56\x48\x61", s("1"), b"\x01\x5d\x01\x01\x01\x01")
    assert extract_device_information(data) == {}


def test_opaque_and_split_strings():
    # Model as OPAQUE, OS as two STR_I pieces.
    data = body(
        b"\x00\x12\x45\x56\x48\x57\xc3\x03abc\x01\x5a", s("And"), s("roid"), b"\x01\x01\x01\x01"
    )
    assert extract_device_information(data) == {"model": "abc", "os": "Android"}


def test_empty_field():
    data = body(b"\x00\x12\x45\x56\x48\x17\x01\x01\x01")
    assert extract_device_information(data) == {"model": ""}


def test_unknown_tags_decode_generically():
    data = body(b"\x00\x28\x45\x00\x0e\x52", s("x"), b"\x01\x01")
    root = decode(data)
    assert root.tag == "Page40:0x05"
    assert root.children[0].tag == "Provision:0x12"
    assert encode(root) == data


def test_multibyte_lengths():
    payload = b"x" * 200  # OPAQUE length 200 = mb_u_int32 0x81 0x48
    data = body(b"\x00\x12\x45\xc3\x81\x48", payload, b"\x01")
    assert decode(data).children == [payload]
    assert encode(decode(data)) == data


def test_public_id_as_multibyte_integer():
    data = b"\x03\x81\x01\x6a\x00\x45\x01"
    assert decode(data).tag == "AirSync:Sync"


# --- malformed documents -----------------------------------------------------------------

MALFORMED = [
    (b"", "empty"),
    (b"\x03\x01\x6a", "truncated header"),
    (b"\x03\x01\x6a\x00", "no root"),
    (b"\x02\x01\x6a\x00\x45\x01", "WBXML 1.2"),
    (b"<?xml version='1.0'?>", "XML, not WBXML"),
    (b"\x03\x00\x00\x6a\x00\x45\x01", "public id via string table"),
    (b"\x03\x01\x04\x00\x45\x01", "charset not UTF-8"),
    (b"\x03\x01\x6a\x03abc\x45\x01", "non-empty string table"),
    (b"\x03\x01\x6a\xff\xff\xff\xff\x7f\x45\x01", "string table length overflows"),
    (b"\x03\x01\x6a\x80\x80\x80\x80\x80\x00\x45\x01", "mb_u_int32 over five bytes"),
    (body(b"\x45"), "unclosed root"),
    (body(b"\x45\x46\x01"), "unclosed child"),
    (body(b"\x45\x01\x01"), "END after root"),
    (body(b"\x45\x01\x45\x01"), "two roots"),
    (body(b"\x05\x05"), "two empty roots"),
    (body(b"\x45\x01\x00"), "trailing byte"),
    (body(b"\x45\x01\x00\x0e"), "SWITCH_PAGE after root"),
    (body(b"\x01"), "END first"),
    (body(b"\x03abc\x00"), "string outside element"),
    (body(b"\xc3\x01a"), "opaque outside element"),
    (body(b"\x00"), "SWITCH_PAGE without page"),
    (body(b"\x45\x03abc"), "unterminated string"),
    (body(b"\x45\x03\xc3\x28\x00\x01"), "string not UTF-8"),
    (body(b"\x45\xc3\x05ab"), "opaque past end"),
    (body(b"\x45\xc3\x8f\xff\xff\xff\x7f\x01"), "opaque length huge"),
    (body(b"\xc5\x01\x01"), "attributes bit"),
    (body(b"\x85\x01"), "attributes bit on empty tag"),
    (body(b"\x45\x02\x41\x01"), "ENTITY"),
    (body(b"\x45\x04\x00\x01"), "LITERAL"),
    (body(b"\x45\x83\x00\x01"), "STR_T"),
    (body(b"\x45\x43\x01"), "PI"),
    (body(b"\x45\x40abc\x00\x01"), "EXT_I_0"),
    (body(b"\x45\xc0\x01"), "EXT_0"),
    (body(b"\x45\xc4\x01"), "LITERAL_AC"),
    (body(b"\x45" * (MAX_DEPTH + 1) + b"\x01" * (MAX_DEPTH + 1)), "nested too deeply"),
    (b"\x03\x01\x6a\x00\x45" + b"\xc3\x00" * (MAX_BODY // 2) + b"\x01", "over MAX_BODY"),
]


@pytest.mark.parametrize(("data", "why"), MALFORMED, ids=[why for _, why in MALFORMED])
def test_malformed_wbxml_rejected(data, why):
    with pytest.raises(EASParseError):
        decode(data)
    with pytest.raises(EASParseError):
        extract_device_information(data)


def test_max_depth_is_allowed():
    data = body(b"\x45" * MAX_DEPTH + b"\x01" * MAX_DEPTH)
    assert decode(data).tag == "AirSync:Sync"


def info_body(*set_children: bytes) -> bytes:
    return body(b"\x00\x12\x45\x56\x48", *set_children, b"\x01\x01\x01")


MALFORMED_INFO = [
    (info_body(b"\x57", s("a"), b"\x01\x57", s("b"), b"\x01"), "Model twice"),
    (info_body(b"\x57\x58", s("a"), b"\x01\x01"), "element inside Model"),
    (info_body(b"\x57", s("a" * 1025), b"\x01"), "Model over 1024 chars"),
    (info_body(b"\x57", s("a\nb"), b"\x01"), "control char in Model"),
    (info_body(b"\x57", s("a\x7fb"), b"\x01"), "DEL in Model"),
    (info_body(b"\x57\xc3\x02\xc3\x28\x01"), "opaque Model not UTF-8"),
    (body(b"\x00\x12\x45\x56\x48\x01\x48\x01\x01\x01"), "two Set elements"),
    (body(b"\x00\x12\x45\x56\x48\x01\x01\x56\x48\x01\x01\x01"), "two DeviceInformation"),
]


@pytest.mark.parametrize(("data", "why"), MALFORMED_INFO, ids=[why for _, why in MALFORMED_INFO])
def test_malformed_device_information_rejected(data, why):
    decode(data)  # well-formed WBXML ...
    with pytest.raises(EASParseError):
        extract_device_information(data)  # ... but not acceptable DeviceInformation


def test_field_at_limit_accepted():
    data = info_body(b"\x57", s("é" * 1024), b"\x01")
    assert extract_device_information(data) == {"model": "é" * 1024}


def test_non_bytes_rejected():
    with pytest.raises(EASParseError):
        decode("\x03\x01\x6a\x00\x45\x01")  # type: ignore[arg-type]


def test_encoder_rejects_bad_trees():
    with pytest.raises(ValueError):
        encode(Element("Settings:Model", ["a\x00b"]))
    with pytest.raises(ValueError):
        encode(Element("Settings:Model", [42]))  # type: ignore[list-item]
    with pytest.raises(ValueError):
        encode(Element("Settings:Model", ["\ud800"]))  # lone surrogate: not UTF-8
    deep = Element("Settings:Set")
    for _ in range(MAX_DEPTH):
        deep = Element("Settings:Set", [deep])
    with pytest.raises(ValueError):
        encode(deep)


# --- properties ---------------------------------------------------------------------------


def decode_or_reject(data: bytes) -> None:
    try:
        root = decode(data)
    except EASParseError:
        pass
    else:
        assert isinstance(root, Element)
    try:
        info = extract_device_information(data)
    except EASParseError:
        return
    assert all(isinstance(value, str) and len(value) <= 1024 for value in info.values())


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_decode_or_raise(data):
    decode_or_reject(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_body_after_valid_header(data):
    decode_or_reject(b"\x03\x01\x6a\x00" + data)


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
@given(mutated(PROVISION_REQUEST))
def test_mutated_provision_decodes_or_raises(data):
    decode_or_reject(data)


@settings(max_examples=300, deadline=None)
@given(mutated(SETTINGS_REQUEST))
def test_mutated_settings_decodes_or_raises(data):
    decode_or_reject(data)


TAGS = st.builds(
    tag_name,
    st.sampled_from([0, 14, 18, 21, 40]),
    st.integers(0x05, 0x3F),
)
# Any text UTF-8 can carry (no lone surrogates), except NUL, which ends STR_I.
TEXT = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=20
)
LEAVES = TEXT | st.binary(max_size=20)
TREES = st.recursive(
    st.builds(Element, TAGS, st.lists(LEAVES, max_size=3)),
    lambda children: st.builds(Element, TAGS, st.lists(children | LEAVES, max_size=4)),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(TREES)
def test_encode_decode_round_trip(tree):
    assert decode(encode(tree)) == tree


DEVICE_INFO = st.dictionaries(
    st.sampled_from(
        [
            "model",
            "imei",
            "friendly_name",
            "os",
            "os_language",
            "phone_number",
            "user_agent",
            "mobile_operator",
        ]
    ),
    st.text(
        alphabet=st.characters(blacklist_categories=["Cc", "Cs"]),
        max_size=60,
    ),
)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["Provision", "Settings"]), DEVICE_INFO)
def test_device_information_round_trip(command, info):
    assert extract_device_information(build_device_information_body(command, info)) == info
