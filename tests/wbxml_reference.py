"""Decode WBXML with libwbxml (Debian's wbxml2xml), independently of devices.eas.

Tests compare what ECP's decoder reads with what this one reads, so a table
error cannot hide behind an encoder and decoder that share it. Tags come back
as "Namespace:Name" like devices.eas.Element tags.
"""

import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from tests.conftest import need_service

WBXML2XML = shutil.which("wbxml2xml")

# libwbxml 0.11 spells these tokens the old way (or does not know them yet).
LIBWBXML_SPELLING = {
    "Email:Att0Id": "Email:AttOId",
    "Email:ReplyTo": "Email:Reply-To",
    "Email:DtStamp": "Email:DTStamp",
    **{
        f"Email:{name}": f"Email:Recurrence_{name}"
        for name in [
            "Type",
            "Until",
            "Occurrences",
            "Interval",
            "DayOfWeek",
            "DayOfMonth",
            "WeekOfMonth",
            "MonthOfYear",
        ]
    },
    "Settings:RightsManagementInformation": "Settings:ihsManagementInformation",
    "ComposeMail:Mime": "ComposeMail:MIME",
}


def ours_as_reference(element) -> tuple:
    """devices.eas's tree in reference_tree's shape and libwbxml's spelling."""
    children = [c for c in element.children if not isinstance(c, str | bytes)]
    text = "".join(c for c in element.children if isinstance(c, str)).strip()
    tag = LIBWBXML_SPELLING.get(element.tag, element.tag)
    return (tag, text, [ours_as_reference(c) for c in children])


def require_wbxml2xml() -> None:
    need_service("wbxml2xml", WBXML2XML is not None, "apt-get install libwbxml2-utils")


def reference_decode(body: bytes) -> ET.Element:
    """libwbxml's reading of an ActiveSync WBXML document, as an ElementTree."""
    require_wbxml2xml()
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp, "in.wbxml"), Path(tmp, "out.xml")
        source.write_bytes(body)
        done = subprocess.run(  # noqa: S603 - a fixed tool and our own temp files
            [WBXML2XML, "-l", "ACTIVESYNC", "-m", "0", "-o", str(target), str(source)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if done.returncode != 0 or not target.exists():
            raise AssertionError(f"wbxml2xml failed: {done.stdout} {done.stderr}")
        text = target.read_text(encoding="utf-8")
    # Drop the DOCTYPE: ElementTree does not need it.
    if "<!DOCTYPE" in text:
        head, _, rest = text.partition("<!DOCTYPE")
        text = rest.split(">", 1)[1]
    return ET.fromstring(text)  # noqa: S314 - our own decoder's output


def qualified(tag: str) -> str:
    """'{AirSync:}Sync' -> 'AirSync:Sync'."""
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return f"{namespace.rstrip(':')}:{local}"
    return tag


def reference_tree(body: bytes) -> tuple:
    """(tag, text, children) tuples from libwbxml, for comparison with ours."""

    def walk(node):
        return (qualified(node.tag), (node.text or "").strip(), [walk(c) for c in node])

    return walk(reference_decode(body))
