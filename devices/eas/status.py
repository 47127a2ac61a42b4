"""ActiveSync status codes ECP sends, as named constants (MS-ASCMD 2.2.3.177).

Each command has its own small table of Status values (1 is success
everywhere); from protocol 14.0 the common status codes (101-177) may answer
any command. Only the codes ECP uses, or that a test names, are listed.
"""

from enum import IntEnum


class Common(IntEnum):
    """MS-ASCMD 2.2.3.177.1, Common Status Codes (protocol 14.0 and later)."""

    INVALID_CONTENT = 101
    INVALID_WBXML = 102
    SERVER_ERROR_RETRY_LATER = 111
    DEVICE_IS_BLOCKED_FOR_THIS_USER = 129
    ACCESS_DENIED = 130
    COMMAND_NOT_SUPPORTED = 137
    DEVICE_NOT_PROVISIONED = 142


class Sync(IntEnum):
    SUCCESS = 1
    INVALID_SYNC_KEY = 3
    PROTOCOL_ERROR = 4
    SERVER_ERROR = 5
    OBJECT_NOT_FOUND = 8
    FOLDER_HIERARCHY_CHANGED = 12
    INCOMPLETE_REQUEST = 13


class FolderSync(IntEnum):
    SUCCESS = 1
    SERVER_ERROR = 6
    INVALID_SYNC_KEY = 9
    INCORRECT_REQUEST_FORMAT = 10


class FolderChange(IntEnum):
    """FolderCreate, FolderDelete and FolderUpdate."""

    SUCCESS = 1
    SPECIAL_FOLDER = 3  # the notice's Inbox cannot be changed
    SERVER_ERROR = 6


class GetItemEstimate(IntEnum):
    SUCCESS = 1
    INVALID_COLLECTION = 2
    SYNC_STATE_NOT_PRIMED = 3
    INVALID_SYNC_KEY = 4


class Ping(IntEnum):
    HEARTBEAT_EXPIRED = 1  # no changes: the client pings again
    CHANGES_OCCURRED = 2
    MISSING_PARAMETERS = 3
    SYNTAX_ERROR = 4
    HEARTBEAT_OUT_OF_RANGE = 5
    TOO_MANY_FOLDERS = 6
    FOLDER_HIERARCHY_SYNC_REQUIRED = 7
    SERVER_ERROR = 8


class Provision(IntEnum):
    SUCCESS = 1
    PROTOCOL_ERROR = 2
    SERVER_ERROR = 3


class Policy(IntEnum):
    SUCCESS = 1
    NO_POLICY = 2
    UNKNOWN_POLICY_TYPE = 3


class Settings(IntEnum):
    SUCCESS = 1
    PROTOCOL_ERROR = 2


class ItemOperations(IntEnum):
    SUCCESS = 1
    PROTOCOL_ERROR = 2
    SERVER_ERROR = 3
    OBJECT_NOT_FOUND = 6


class MoveItems(IntEnum):
    INVALID_SOURCE = 1


class MeetingResponse(IntEnum):
    SUCCESS = 1
    INVALID_MEETING_REQUEST = 2


class ResolveRecipients(IntEnum):
    SUCCESS = 1
    PROTOCOL_ERROR = 5
    SERVER_ERROR = 6


class Search(IntEnum):
    SUCCESS = 1
    SERVER_ERROR = 3


class ComposeMail(IntEnum):
    """SendMail, SmartReply, SmartForward (their Status exists from 14.0)."""

    MAIL_SUBMISSION_FAILED = 120


class ValidateCert(IntEnum):
    SUCCESS = 1
    PROTOCOL_ERROR = 2


class Find(IntEnum):
    SUCCESS = 1
