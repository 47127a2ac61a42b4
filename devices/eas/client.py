"""Request bodies as a phone writes them, and replies as text (no Django).

``eas simulate-device`` and the protocol tests speak to the gate through
these: the smallest valid FolderSync, Sync, GetItemEstimate, Ping and
Provision requests, and ``to_xml`` to print a decoded reply.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from devices.eas.wbxml import EAS_PROVISIONING_POLICY, Element, encode


def _text(tag: str, value) -> Element:
    return Element(tag, [str(value)])


def folder_sync_request(sync_key: str = "0") -> bytes:
    return encode(
        Element("FolderHierarchy:FolderSync", [_text("FolderHierarchy:SyncKey", sync_key)])
    )


def sync_request(
    collection_id: str,
    sync_key: str = "0",
    *,
    version: str = "14.1",
    truncation_size: int | None = None,
    wait: int | None = None,
) -> bytes:
    collection = []
    if version.startswith(("2.", "12.")):
        collection.append(_text("AirSync:Class", "Email"))
    collection += [_text("AirSync:SyncKey", sync_key), _text("AirSync:CollectionId", collection_id)]
    if sync_key != "0":
        collection += [Element("AirSync:DeletesAsMoves"), Element("AirSync:GetChanges")]
        collection.append(_text("AirSync:WindowSize", 25))
        preference = [_text("AirSyncBase:Type", 1)]
        if truncation_size is not None:
            preference.append(_text("AirSyncBase:TruncationSize", truncation_size))
        collection.append(
            Element("AirSync:Options", [Element("AirSyncBase:BodyPreference", preference)])
        )
    children = [Element("AirSync:Collections", [Element("AirSync:Collection", collection)])]
    if wait is not None:
        children.append(_text("AirSync:Wait", wait))
    return encode(Element("AirSync:Sync", children))


def get_item_estimate_request(collection_id: str, sync_key: str, *, version="14.1") -> bytes:
    if version.startswith(("2.", "12.")):
        parts = [
            _text("GetItemEstimate:Class", "Email"),
            _text("GetItemEstimate:CollectionId", collection_id),
            _text("AirSync:FilterType", 0),
            _text("AirSync:SyncKey", sync_key),
        ]
    else:
        parts = [
            _text("AirSync:SyncKey", sync_key),
            _text("GetItemEstimate:CollectionId", collection_id),
        ]
    collection = Element("GetItemEstimate:Collection", parts)
    collections = Element("GetItemEstimate:Collections", [collection])
    return encode(Element("GetItemEstimate:GetItemEstimate", [collections]))


def ping_request(folder_ids, heartbeat: int = 480) -> bytes:
    folders = [
        Element("Ping:Folder", [_text("Ping:Id", folder), _text("Ping:Class", "Email")])
        for folder in folder_ids
    ]
    return encode(
        Element(
            "Ping:Ping",
            [_text("Ping:HeartbeatInterval", heartbeat), Element("Ping:Folders", folders)],
        )
    )


def provision_request(policy_key: int | None = None) -> bytes:
    """The initial request (no key) or the acknowledgement of `policy_key`."""
    policy = [_text("Provision:PolicyType", EAS_PROVISIONING_POLICY)]
    if policy_key is not None:
        policy += [_text("Provision:PolicyKey", policy_key), _text("Provision:Status", 1)]
    policies = Element("Provision:Policies", [Element("Provision:Policy", policy)])
    return encode(Element("Provision:Provision", [policies]))


def find_text(root: Element, *path: str) -> str | None:
    """The text at a path of tags below `root` (first match at each step), or None."""
    node = root
    for tag in path:
        node = node.find(tag) if node is not None else None
    return node.text if node is not None else None


def to_xml(element: Element, indent: str = "") -> str:
    """An element tree as indented XML, for people to read."""
    namespace, _, name = element.tag.partition(":")
    tag = f"{namespace}:{name}"
    if not element.children:
        return f"{indent}<{tag}/>"
    if all(isinstance(c, str | bytes) for c in element.children):
        value = "".join(c if isinstance(c, str) else f"[{len(c)} bytes]" for c in element.children)
        return f"{indent}<{tag}>{escape(value)}</{tag}>"
    lines = [f"{indent}<{tag}>"]
    for child in element.children:
        if isinstance(child, Element):
            lines.append(to_xml(child, indent + "  "))
        elif isinstance(child, str):
            lines.append(indent + "  " + escape(child))
    lines.append(f"{indent}</{tag}>")
    return "\n".join(lines)
