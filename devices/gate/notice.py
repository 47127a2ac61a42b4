"""The one-folder mailbox a quarantined phone sees: an Inbox holding the notice.

Exchange lets a quarantined device sync, and what it syncs is a single
message telling the user the phone waits for approval. ECP does the same
for Quarantined and DeviceDiscovery devices on EAS 12.1+. The notice is the
user mail (emails/user-quarantined-*), rendered from the same template and
context, UserMailInsert and the "Was this you?" links included, in the mailbox's
language (devices.languages).

No state is stored: every sync key is derived from the partnership and the
notice's version (a hash of its text) with the SECRET_KEY, so a key proves
which step the phone is at:

    FolderSync  "0" -> the Inbox and the hierarchy key; that key -> no changes
    Sync        "0" -> key 1; key 1 -> the notice (Add) and key 2;
                key 2 of an older notice -> the new text (Change) and key 2
    foreign keys (the real server's, or forged): "invalid sync key", so the
    phone starts again from "0"

Ping and a waiting Sync hold the request (long poll, at most
ECP_NOTICE_HOLD_SECONDS) and look at the partnership's state every
ECP_NOTICE_POLL_SECONDS: a phone sends about one request a minute, and once
allowed it is told to sync its folders again (Ping Status 7), which sends it
to the real server for a full resync.

Each command is one class: it reads its request and writes its response
through devices.eas; `answer_command` picks the class.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from functools import cached_property

from django.conf import settings
from django.utils import translation
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext

from devices.eas import Element, encode, status
from devices.eas.responses import read_body, status_response, text
from devices.languages import mailbox_language
from devices.links import notice_issue_time
from devices.models import MobileDevice, OrgSettings
from devices.notify import owner_context
from notifications.models import Kind
from notifications.rendering import render

INBOX_ID = "ecp-notice"
NOTICE_ITEM_ID = f"{INBOX_ID}:1"
FOLDER_TYPE_INBOX = 2
MIN_HEARTBEAT = 60  # shorter Ping heartbeats get Status 5 with this
_COLLECTION_KEY = re.compile(r"\{([0-9a-f]{8})([0-9a-f]{16})\}([12])")
PRIMED, DELIVERED = 1, 2


@dataclass(frozen=True)
class Notice:
    subject: str
    body: str
    version: str  # 8 hex digits of a hash of subject and body


class NoticeMailbox:
    """One partnership's view of the notice mailbox."""

    def __init__(self, device: MobileDevice, eas_version: str) -> None:
        self.device = device
        self.eas_version = eas_version

    @cached_property
    def full_device(self) -> MobileDevice:
        """Every column, in one query (the gate's lookup reads only a few)."""
        return MobileDevice.objects.select_related("mailbox", "access_rule").get(pk=self.device.pk)

    @cached_property
    def org(self) -> OrgSettings:
        return OrgSettings.load()

    @cached_property
    def language(self) -> str:
        return mailbox_language(self.full_device.mailbox, self.org)

    @property
    def inbox_name(self) -> str:
        with translation.override(self.language):
            return gettext("Inbox")

    @cached_property
    def notice(self) -> Notice:
        # "Was this you?" links, issued at the start of the current period so that the
        # text (and the version) stays the same between syncs (devices.links).
        device = self.full_device
        context = owner_context(device, self.org, at=notice_issue_time(), language=self.language)
        if device.access_state != "Quarantined":
            context.pop("links")  # DeviceDiscovery: nothing to confirm yet
        subject, body, _html = render(Kind.USER_QUARANTINED, context)
        digest = salted_hmac("ecp.notice.version", f"{subject}\n{body}").hexdigest()
        return Notice(subject, body.strip() + "\n", digest[:8])

    def _mac(self, *parts) -> str:
        value = ":".join(str(p) for p in (self.device.pk, self.device.device_id.lower(), *parts))
        return salted_hmac("ecp.notice.key", value).hexdigest()

    @property
    def hierarchy_key(self) -> str:
        return "F" + self._mac("hierarchy")[:16]

    def collection_key(self, stage: int, version: str | None = None) -> str:
        version = version or self.notice.version
        return "{" + version + self._mac("inbox", stage, version)[:16] + "}" + str(stage)

    def read_collection_key(self, key: str) -> tuple[int, str] | None:
        """(stage, notice version) of a key this mailbox issued, else None."""
        found = _COLLECTION_KEY.fullmatch(key)
        if not found:
            return None
        version, stage = found.group(1), int(found.group(3))
        if key != self.collection_key(stage, version):
            return None
        return stage, version

    def released(self, seconds: float) -> bool:
        """Hold for up to `seconds`; True as soon as the device's state changes."""
        deadline = time.monotonic() + seconds
        poll = max(0.05, float(settings.ECP_NOTICE_POLL_SECONDS))
        while True:
            now_state = (
                MobileDevice.objects.filter(pk=self.device.pk)
                .values_list("access_state", flat=True)
                .first()
            )
            if now_state != self.device.access_state:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(poll, remaining))


class Reply:
    """What a command handler returns: a WBXML body, or an HTTP status alone."""

    def __init__(self, body: bytes | None = None, http_status: int = 200) -> None:
        self.body = body
        self.http_status = http_status


class Command:
    """One command's answer from the notice mailbox."""

    name = ""

    def __init__(self, mailbox: NoticeMailbox, body: bytes) -> None:
        self.mailbox = mailbox
        self.request = read_body(body, self.name)  # EASParseError: the gate says 400

    def reply(self) -> Reply:
        raise NotImplementedError


class FolderSync(Command):
    name = "FolderSync"

    def reply(self) -> Reply:
        if self.request is None:
            return Reply(status_response(self.name, status.FolderSync.INCORRECT_REQUEST_FORMAT))
        key_element = self.request.find("FolderHierarchy:SyncKey")
        key = key_element.text if key_element is not None else ""
        mailbox = self.mailbox
        if key == "0":
            inbox = Element(
                "FolderHierarchy:Add",
                [
                    text("FolderHierarchy:ServerId", INBOX_ID),
                    text("FolderHierarchy:ParentId", "0"),
                    text("FolderHierarchy:DisplayName", mailbox.inbox_name),
                    text("FolderHierarchy:Type", FOLDER_TYPE_INBOX),
                ],
            )
            changes = [text("FolderHierarchy:Count", 1), inbox]
        elif key == mailbox.hierarchy_key:
            changes = [text("FolderHierarchy:Count", 0)]
        else:
            return Reply(status_response(self.name, status.FolderSync.INVALID_SYNC_KEY))
        root = Element(
            "FolderHierarchy:FolderSync",
            [
                text("FolderHierarchy:Status", status.FolderSync.SUCCESS),
                text("FolderHierarchy:SyncKey", mailbox.hierarchy_key),
                Element("FolderHierarchy:Changes", changes),
            ],
        )
        return Reply(encode(root))


class Sync(Command):
    name = "Sync"

    def reply(self) -> Reply:
        collections = self.request.find("AirSync:Collections") if self.request else None
        if collections is None:
            # An empty Sync (or one with only Wait) repeats the last full one,
            # which this stateless mailbox does not remember.
            return Reply(status_response(self.name, status.Sync.INCOMPLETE_REQUEST))
        answered, pending = [], False
        for collection in collections.findall("AirSync:Collection"):
            folder = _child_text(collection, "AirSync:CollectionId")
            if folder != INBOX_ID:
                return Reply(status_response(self.name, status.Sync.FOLDER_HIERARCHY_CHANGED))
            element, delivers = self._collection(collection)
            answered.append(element)
            pending = pending or delivers
        if not pending and self._waits() and self.mailbox.released(self._hold()):
            return Reply(status_response(self.name, status.Sync.FOLDER_HIERARCHY_CHANGED))
        return Reply(encode(Element("AirSync:Sync", [Element("AirSync:Collections", answered)])))

    def _collection(self, collection: Element) -> tuple[Element, bool]:
        mailbox = self.mailbox
        key = _child_text(collection, "AirSync:SyncKey")
        head = [text("AirSync:Class", "Email")] if _before(mailbox.eas_version, "14.0") else []
        found = mailbox.read_collection_key(key) if key != "0" else (0, "")
        if found is None:
            head += [
                text("AirSync:SyncKey", "0"),
                text("AirSync:CollectionId", INBOX_ID),
                text("AirSync:Status", status.Sync.INVALID_SYNC_KEY),
            ]
            return Element("AirSync:Collection", head), False
        stage, version = found
        current = mailbox.notice.version
        next_stage = PRIMED if stage == 0 else DELIVERED
        head += [
            text("AirSync:SyncKey", mailbox.collection_key(next_stage)),
            text("AirSync:CollectionId", INBOX_ID),
            text("AirSync:Status", status.Sync.SUCCESS),
        ]
        if stage == PRIMED or (stage == DELIVERED and version != current):
            verb = "AirSync:Add" if stage == PRIMED else "AirSync:Change"
            item = Element(
                verb,
                [text("AirSync:ServerId", NOTICE_ITEM_ID), self._application_data(collection)],
            )
            head.append(Element("AirSync:Commands", [item]))
            return Element("AirSync:Collection", head), True
        return Element("AirSync:Collection", head), False

    def _application_data(self, collection: Element) -> Element:
        mailbox = self.mailbox
        notice = mailbox.notice
        device = mailbox.full_device
        to = device.mailbox.primary_smtp_address
        body = notice.body.encode("utf-8")
        limit = _truncation_size(collection)
        data = body if limit is None else body[:limit]
        body_parts = [
            text("AirSyncBase:Type", 1),
            text("AirSyncBase:EstimatedDataSize", len(body)),
        ]
        if len(data) < len(body):
            body_parts.append(text("AirSyncBase:Truncated", 1))
        body_parts.append(text("AirSyncBase:Data", data.decode("utf-8", "ignore")))
        received = (device.state_changed_at or device.first_seen).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        fields = [
            text("Email:To", to),
            text("Email:From", settings.DEFAULT_FROM_EMAIL),
            text("Email:Subject", notice.subject),
            text("Email:DateReceived", received),
            text("Email:DisplayTo", device.mailbox.display_name or to),
            text("Email:ThreadTopic", notice.subject),
            text("Email:Importance", 2),
            text("Email:Read", 0),
            Element("AirSyncBase:Body", body_parts),
            text("Email:MessageClass", "IPM.Note"),
            text("Email:InternetCPID", 65001),
        ]
        if not _before(mailbox.eas_version, "14.0"):
            fields.append(text("Email:ContentClass", "urn:content-classes:message"))
        fields.append(text("AirSyncBase:NativeBodyType", 1))
        return Element("AirSync:ApplicationData", fields)

    def _waits(self) -> bool:
        return any(
            self.request.find(tag) is not None
            for tag in ("AirSync:Wait", "AirSync:HeartbeatInterval")
        )

    def _hold(self) -> float:
        return float(settings.ECP_NOTICE_HOLD_SECONDS)


class GetItemEstimate(Command):
    name = "GetItemEstimate"

    def reply(self) -> Reply:
        collections = self.request.find("GetItemEstimate:Collections") if self.request else None
        if collections is None:
            return Reply(status_response(self.name, status.GetItemEstimate.INVALID_COLLECTION))
        responses = [self._estimate(c) for c in collections.findall("GetItemEstimate:Collection")]
        return Reply(encode(Element("GetItemEstimate:GetItemEstimate", responses)))

    def _estimate(self, collection: Element) -> Element:
        folder = _child_text(collection, "GetItemEstimate:CollectionId")
        key = _child_text(collection, "AirSync:SyncKey")
        mailbox = self.mailbox
        found = mailbox.read_collection_key(key) if key and key != "0" else None
        if folder != INBOX_ID:
            code, count = status.GetItemEstimate.INVALID_COLLECTION, None
        elif key == "0":
            code, count = status.GetItemEstimate.SYNC_STATE_NOT_PRIMED, None
        elif found is None:
            code, count = status.GetItemEstimate.INVALID_SYNC_KEY, None
        else:
            stage, version = found
            waiting = stage == PRIMED or version != mailbox.notice.version
            code, count = status.GetItemEstimate.SUCCESS, 1 if waiting else 0
        parts = [text("GetItemEstimate:Status", code)]
        if count is not None:
            parts.append(
                Element(
                    "GetItemEstimate:Collection",
                    [
                        text("GetItemEstimate:CollectionId", INBOX_ID),
                        text("GetItemEstimate:Estimate", count),
                    ],
                )
            )
        return Element("GetItemEstimate:Response", parts)


class Ping(Command):
    name = "Ping"

    def reply(self) -> Reply:
        heartbeat = _child_text(self.request, "Ping:HeartbeatInterval") if self.request else ""
        if heartbeat and (not heartbeat.isdigit() or int(heartbeat) < MIN_HEARTBEAT):
            return Reply(
                encode(
                    Element(
                        "Ping:Ping",
                        [
                            text("Ping:Status", status.Ping.HEARTBEAT_OUT_OF_RANGE),
                            text("Ping:HeartbeatInterval", MIN_HEARTBEAT),
                        ],
                    )
                )
            )
        folders = self.request.find("Ping:Folders") if self.request else None
        ids = [_child_text(f, "Ping:Id") for f in folders.findall("Ping:Folder")] if folders else []
        if any(folder != INBOX_ID for folder in ids):
            # The real server's folders: the phone must learn the notice mailbox's.
            return Reply(status_response(self.name, status.Ping.FOLDER_HIERARCHY_SYNC_REQUIRED))
        hold = float(settings.ECP_NOTICE_HOLD_SECONDS)
        if heartbeat:
            hold = min(hold, int(heartbeat))
        if self.mailbox.released(hold):
            return Reply(status_response(self.name, status.Ping.FOLDER_HIERARCHY_SYNC_REQUIRED))
        return Reply(status_response(self.name, status.Ping.HEARTBEAT_EXPIRED))


class StatusOnly(Command):
    """Commands the notice mailbox cannot serve: their own error status."""

    code = 0

    def __init__(self, mailbox: NoticeMailbox, body: bytes, name: str, code: int) -> None:
        self.name, self.code = name, code
        self.mailbox = mailbox  # the body is not read: a status needs nothing from it

    def reply(self) -> Reply:
        return Reply(status_response(self.name, self.code))


# Command -> its error status while quarantined (docs/PHONE_ANSWERS.md says why).
REFUSALS = {
    "FolderCreate": status.FolderChange.SPECIAL_FOLDER,
    "FolderDelete": status.FolderChange.SPECIAL_FOLDER,
    "FolderUpdate": status.FolderChange.SPECIAL_FOLDER,
    "ItemOperations": status.ItemOperations.OBJECT_NOT_FOUND,
    "MeetingResponse": status.MeetingResponse.INVALID_MEETING_REQUEST,
    "ResolveRecipients": status.ResolveRecipients.SERVER_ERROR,
    "Search": status.Search.SERVER_ERROR,
    "ValidateCert": status.ValidateCert.PROTOCOL_ERROR,
    "Find": status.Common.ACCESS_DENIED,
}
# From 14.0 (no ComposeMail status before): the mail was not sent.
REFUSALS_FROM_14 = {
    "SendMail": status.ComposeMail.MAIL_SUBMISSION_FAILED,
    "SmartReply": status.ComposeMail.MAIL_SUBMISSION_FAILED,
    "SmartForward": status.ComposeMail.MAIL_SUBMISSION_FAILED,
}
HANDLERS = {cls.name: cls for cls in (FolderSync, Sync, GetItemEstimate, Ping)}


def answer_command(device: MobileDevice, eas_version: str, command: str, body: bytes) -> Reply:
    """The notice mailbox's reply to one command (EASParseError for a malformed body)."""
    mailbox = NoticeMailbox(device, eas_version)
    if command in HANDLERS:
        return HANDLERS[command](mailbox, body).reply()
    if command == "MoveItems":
        response = Element("Move:Response", [text("Move:Status", status.MoveItems.INVALID_SOURCE)])
        return Reply(encode(Element("Move:MoveItems", [response])))
    if command == "MeetingResponse":
        result = Element(
            "MeetingResponse:Result",
            [text("MeetingResponse:Status", status.MeetingResponse.INVALID_MEETING_REQUEST)],
        )
        return Reply(encode(Element("MeetingResponse:MeetingResponse", [result])))
    code = REFUSALS.get(command)
    if code is None and not _before(eas_version, "14.0"):
        code = REFUSALS_FROM_14.get(command)
    if code is None:
        return Reply(http_status=403)  # GetAttachment, 2.5-only commands, 12.1 SendMail
    return StatusOnly(mailbox, body, command, code).reply()


def _child_text(parent: Element | None, tag: str) -> str:
    found = parent.find(tag) if parent is not None else None
    return found.text.strip() if found is not None else ""


def _truncation_size(collection: Element) -> int | None:
    options = collection.find("AirSync:Options")
    preference = options.find("AirSyncBase:BodyPreference") if options else None
    size = _child_text(preference, "AirSyncBase:TruncationSize") if preference else ""
    return int(size) if size.isdigit() else None


def version_tuple(version: str) -> tuple[int, int]:
    major, _, minor = (version or "14.1").partition(".")
    return int(major), int(minor or 0)


def _before(version: str, other: str) -> bool:
    return version_tuple(version) < version_tuple(other)
