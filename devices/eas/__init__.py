"""Pure parsing of Exchange ActiveSync requests for the gate (no Django).

``parse_query`` reads the request line's query (plain or base64 form, see
``devices.eas.query``); ``extract_device_information`` reads the
``Settings:DeviceInformation`` of a Provision or Settings WBXML body (see
``devices.eas.wbxml``). Both raise only ``EASParseError`` on bad input.
"""

from devices.eas.errors import EASParseError
from devices.eas.query import COMMANDS, EASRequest, build_base64_query, parse_query
from devices.eas.wbxml import (
    MAX_BODY,
    Element,
    build_device_information_body,
    decode,
    encode,
    extract_device_information,
)

__all__ = [
    "COMMANDS",
    "MAX_BODY",
    "EASParseError",
    "EASRequest",
    "Element",
    "build_base64_query",
    "build_device_information_body",
    "decode",
    "encode",
    "extract_device_information",
    "parse_query",
]
