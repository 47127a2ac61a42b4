"""ActiveSync command responses ECP writes, as WBXML element trees (no Django).

``status_response(command, status)`` is the smallest valid answer to a
command: its response's root element holding one Status, e.g.
``<FolderSync><Status>129</Status></FolderSync>``. Common status codes
(MS-ASCMD 2.2.2, protocol 14.0+) travel this way, e.g. 129 for a blocked
device and 142 for one that must provision. Commands without a WBXML
response (GetAttachment, the 2.5-only ones) are not in ``RESPONSE_ROOTS``;
they can only get an HTTP status.

The Provision and Settings answers for the standalone gate are here too:
they are all a device needs to go on to FolderSync.
"""

from __future__ import annotations

from devices.eas import status
from devices.eas.errors import EASParseError
from devices.eas.wbxml import EAS_PROVISIONING_POLICY, Element, decode, encode

# Command -> the qualified root tag of its response.
RESPONSE_ROOTS = {
    "Sync": "AirSync:Sync",
    "FolderSync": "FolderHierarchy:FolderSync",
    "FolderCreate": "FolderHierarchy:FolderCreate",
    "FolderDelete": "FolderHierarchy:FolderDelete",
    "FolderUpdate": "FolderHierarchy:FolderUpdate",
    "GetItemEstimate": "GetItemEstimate:GetItemEstimate",
    "Ping": "Ping:Ping",
    "Provision": "Provision:Provision",
    "Settings": "Settings:Settings",
    "ItemOperations": "ItemOperations:ItemOperations",
    "MoveItems": "Move:MoveItems",
    "MeetingResponse": "MeetingResponse:MeetingResponse",
    "ResolveRecipients": "ResolveRecipients:ResolveRecipients",
    "Search": "Search:Search",
    "SendMail": "ComposeMail:SendMail",
    "SmartReply": "ComposeMail:SmartReply",
    "SmartForward": "ComposeMail:SmartForward",
    "ValidateCert": "ValidateCert:ValidateCert",
    "Find": "Find:Find",
}

# A permissive policy: ECP decides access, it does not manage the device.
POLICY_SETTINGS = (
    ("DevicePasswordEnabled", "0"),
    ("AlphanumericDevicePasswordRequired", "0"),
    ("PasswordRecoveryEnabled", "0"),
    ("DeviceEncryptionEnabled", "0"),
    ("AttachmentsEnabled", "1"),
    ("MinDevicePasswordLength", "1"),
    ("MaxInactivityTimeDeviceLock", "9999"),
    ("MaxDevicePasswordFailedAttempts", "16"),
    ("AllowSimpleDevicePassword", "1"),
    ("DevicePasswordExpiration", "0"),
    ("DevicePasswordHistory", "0"),
)


def text(tag: str, value) -> Element:
    return Element(tag, [str(value)])


def namespace_of(command: str) -> str:
    return RESPONSE_ROOTS[command].partition(":")[0]


def status_response(command: str, code: int) -> bytes:
    """The command's response root holding only Status `code`."""
    root = RESPONSE_ROOTS[command]
    return encode(Element(root, [text(f"{namespace_of(command)}:Status", int(code))]))


def read_body(body: bytes, command: str) -> Element | None:
    """The decoded request body (None when empty); EASParseError when it is not
    WBXML or not this command's request."""
    if not body:
        return None
    root = decode(body)
    if root.tag != RESPONSE_ROOTS.get(command, root.tag):
        raise EASParseError(f"a {command} request must start with <{RESPONSE_ROOTS[command]}>")
    return root


# --- Provision ----------------------------------------------------------------------


def provision_response(request: Element | None, *, temporary_key: int, final_key: int) -> bytes:
    """MS-ASPROV's two-step answer: the policy and a temporary key for the initial
    request, the final key for the acknowledgement (a request that carries a key)."""
    children: list[Element] = [text("Provision:Status", status.Provision.SUCCESS)]
    if request is not None and request.find("Settings:DeviceInformation") is not None:
        children.insert(
            0,
            Element(
                "Settings:DeviceInformation", [text("Settings:Status", status.Settings.SUCCESS)]
            ),
        )
    policy = _requested_policy(request)
    if policy is not None:
        policy_type = policy.find("Provision:PolicyType")
        kind = policy_type.text if policy_type is not None else EAS_PROVISIONING_POLICY
        acknowledged = policy.find("Provision:PolicyKey") is not None
        answer = [text("Provision:PolicyType", kind)]
        if kind != EAS_PROVISIONING_POLICY:
            answer.append(text("Provision:Status", status.Policy.UNKNOWN_POLICY_TYPE))
        elif acknowledged:
            answer += [
                text("Provision:Status", status.Policy.SUCCESS),
                text("Provision:PolicyKey", final_key),
            ]
        else:
            document = Element(
                "Provision:EASProvisionDoc",
                [text(f"Provision:{name}", value) for name, value in POLICY_SETTINGS],
            )
            answer += [
                text("Provision:Status", status.Policy.SUCCESS),
                text("Provision:PolicyKey", temporary_key),
                Element("Provision:Data", [document]),
            ]
        children.append(Element("Provision:Policies", [Element("Provision:Policy", answer)]))
    return encode(Element("Provision:Provision", children))


def _requested_policy(request: Element | None) -> Element | None:
    if request is None:
        return Element("Provision:Policy", [text("Provision:PolicyType", EAS_PROVISIONING_POLICY)])
    policies = request.find("Provision:Policies")
    if policies is None:
        return None  # e.g. only a remote-wipe acknowledgement
    return policies.find("Provision:Policy")


# --- Settings -----------------------------------------------------------------------


def settings_response(request: Element | None, *, email: str) -> bytes:
    """Success for each part a Settings request asks about; UserInformation gives
    the mailbox's address, Oof says it is off."""
    children = [text("Settings:Status", status.Settings.SUCCESS)]
    ok = text("Settings:Status", status.Settings.SUCCESS)
    for part in request.children if request is not None else []:
        if not isinstance(part, Element):
            continue
        name = part.tag.partition(":")[2]
        if name == "UserInformation":
            addresses = Element("Settings:EmailAddresses", [text("Settings:SmtpAddress", email)])
            get = Element("Settings:Get", [addresses])
            children.append(Element("Settings:UserInformation", [ok, get]))
        elif name == "Oof" and part.find("Settings:Get") is not None:
            get = Element("Settings:Get", [text("Settings:OofState", 0)])
            children.append(Element("Settings:Oof", [ok, get]))
        elif name in ("Oof", "DeviceInformation", "DevicePassword", "RightsManagementInformation"):
            children.append(Element(f"Settings:{name}", [ok]))
    return encode(Element("Settings:Settings", children))
