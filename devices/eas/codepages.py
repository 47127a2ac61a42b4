"""The WBXML code pages ECP reads and writes (MS-ASWBXML 2.1.2.1), token -> tag name.

Only the pages the gate needs to read a device's report (Provision,
Settings), to answer the commands of a quarantined device (AirSync,
FolderHierarchy, Email, AirSyncBase, Ping, GetItemEstimate, ItemOperations)
and to give a blocked device its command's status (Move, MeetingResponse,
ResolveRecipients, ValidateCert, Search, ComposeMail, Find) have tables;
other pages decode as ``Namespace:0xNN``.
Unassigned tokens are left out, so they decode generically too. The tables
are checked against the spec's pages and, in tests/unit/test_wbxml_codepages.py,
against libwbxml's (Debian's ``wbxml2xml -l ACTIVESYNC``).
"""

AIRSYNC_PAGE = 0
EMAIL_PAGE = 2
GET_ITEM_ESTIMATE_PAGE = 6
FOLDER_HIERARCHY_PAGE = 7
PING_PAGE = 13
PROVISION_PAGE = 14
AIRSYNCBASE_PAGE = 17
SETTINGS_PAGE = 18
ITEM_OPERATIONS_PAGE = 20
# Pages whose commands ECP answers only with a status (a blocked device's Status 129).
MOVE_PAGE = 5
MEETING_RESPONSE_PAGE = 8
RESOLVE_RECIPIENTS_PAGE = 10
VALIDATE_CERT_PAGE = 11
SEARCH_PAGE = 15
COMPOSE_MAIL_PAGE = 21
FIND_PAGE = 25


def _table(first: int, names: str, *, skip: tuple[int, ...] = ()) -> dict[int, str]:
    """Consecutive tokens from `first`, jumping over the unassigned ones in `skip`."""
    table, token = {}, first
    for name in names.split():
        while token in skip:
            token += 1
        table[token] = name
        token += 1
    return table


# Code page 0: AirSync. 0x11 Version and 0x19 Truncation are 2.5 only; 0x1A RTFTruncation too.
AIRSYNC_TOKENS = _table(
    0x05,
    "Sync Responses Add Change Delete Fetch SyncKey ClientId ServerId Status Collection"
    " Class Version CollectionId GetChanges MoreAvailable WindowSize Commands Options"
    " FilterType Truncation RTFTruncation Conflict Collections ApplicationData"
    " DeletesAsMoves NotifyGUID Supported SoftDelete MIMESupport MIMETruncation Wait"
    " Limit Partial ConversationMode MaxItems HeartbeatInterval",
)

# Code page 2: Email.
EMAIL_TOKENS = _table(
    0x05,
    "Attachment Attachments AttName AttSize Att0Id AttMethod AttRemoved Body BodySize"
    " BodyTruncated DateReceived DisplayName DisplayTo Importance MessageClass Subject"
    " Read To Cc From ReplyTo AllDayEvent Categories Category DtStamp EndTime"
    " InstanceType BusyStatus Location MeetingRequest Organizer RecurrenceId Reminder"
    " ResponseRequested Recurrences Recurrence Type Until Occurrences Interval DayOfWeek"
    " DayOfMonth WeekOfMonth MonthOfYear StartTime Sensitivity TimeZone GlobalObjId"
    " ThreadTopic MIMEData MIMETruncated MIMESize InternetCPID Flag FlagStatus"
    " ContentClass FlagType CompleteTime DisallowNewTimeProposal",
)

# Code page 6: GetItemEstimate.
GET_ITEM_ESTIMATE_TOKENS = _table(
    0x05,
    "GetItemEstimate Version Collections Collection Class CollectionId DateTime Estimate"
    " Response Status",
)

# Code page 7: FolderHierarchy.
FOLDER_HIERARCHY_TOKENS = _table(
    0x05,
    "Folders Folder DisplayName ServerId ParentId Type Response Status ContentClass"
    " Changes Add Delete Update SyncKey FolderCreate FolderDelete FolderUpdate"
    " FolderSync Count",
)

# Code page 13: Ping.
PING_TOKENS = _table(
    0x05, "Ping AutdState Status HeartbeatInterval Folders Folder Id Class MaxFolders"
)

# Code page 17: AirSyncBase. 0x09 is unassigned.
AIRSYNCBASE_TOKENS = _table(
    0x05,
    "BodyPreference Type TruncationSize AllOrNone Body Data EstimatedDataSize Truncated"
    " Attachments Attachment DisplayName FileReference Method ContentId ContentLocation"
    " IsInline NativeBodyType ContentType Preview BodyPartPreference BodyPart Status"
    " Add Delete ClientId Content Location Annotation Street City State Country"
    " PostalCode Latitude Longitude Accuracy Altitude AltitudeAccuracy LocationUri"
    " InstanceId",
    skip=(0x09,),
)

# Code page 20: ItemOperations.
ITEM_OPERATIONS_TOKENS = _table(
    0x05,
    "ItemOperations Fetch Store Options Range Total Properties Data Status Response"
    " Version Schema Part EmptyFolderContents DeleteSubFolders UserName Password Move"
    " DstFldId ConversationId MoveAlways",
)

# Code page 14: Provision. 0x12 is unassigned.
PROVISION_TOKENS = {
    0x05: "Provision",
    0x06: "Policies",
    0x07: "Policy",
    0x08: "PolicyType",
    0x09: "PolicyKey",
    0x0A: "Data",
    0x0B: "Status",
    0x0C: "RemoteWipe",
    0x0D: "EASProvisionDoc",
    0x0E: "DevicePasswordEnabled",
    0x0F: "AlphanumericDevicePasswordRequired",
    0x10: "DeviceEncryptionEnabled",  # also named RequireStorageCardEncryption
    0x11: "PasswordRecoveryEnabled",
    0x13: "AttachmentsEnabled",
    0x14: "MinDevicePasswordLength",
    0x15: "MaxInactivityTimeDeviceLock",
    0x16: "MaxDevicePasswordFailedAttempts",
    0x17: "MaxAttachmentSize",
    0x18: "AllowSimpleDevicePassword",
    0x19: "DevicePasswordExpiration",
    0x1A: "DevicePasswordHistory",
    0x1B: "AllowStorageCard",
    0x1C: "AllowCamera",
    0x1D: "RequireDeviceEncryption",
    0x1E: "AllowUnsignedApplications",
    0x1F: "AllowUnsignedInstallationPackages",
    0x20: "MinDevicePasswordComplexCharacters",
    0x21: "AllowWiFi",
    0x22: "AllowTextMessaging",
    0x23: "AllowPOPIMAPEmail",
    0x24: "AllowBluetooth",
    0x25: "AllowIrDA",
    0x26: "RequireManualSyncWhenRoaming",
    0x27: "AllowDesktopSync",
    0x28: "MaxCalendarAgeFilter",
    0x29: "AllowHTMLEmail",
    0x2A: "MaxEmailAgeFilter",
    0x2B: "MaxEmailBodyTruncationSize",
    0x2C: "MaxEmailHTMLBodyTruncationSize",
    0x2D: "RequireSignedSMIMEMessages",
    0x2E: "RequireEncryptedSMIMEMessages",
    0x2F: "RequireSignedSMIMEAlgorithm",
    0x30: "RequireEncryptionSMIMEAlgorithm",
    0x31: "AllowSMIMEEncryptionAlgorithmNegotiation",
    0x32: "AllowSMIMESoftCerts",
    0x33: "AllowBrowser",
    0x34: "AllowConsumerEmail",
    0x35: "AllowRemoteDesktop",
    0x36: "AllowInternetSharing",
    0x37: "UnapprovedInROMApplicationList",
    0x38: "ApplicationName",
    0x39: "ApprovedApplicationList",
    0x3A: "Hash",
    0x3B: "AccountOnlyRemoteWipe",
}

# Code page 18: Settings. 0x2A is unassigned.
SETTINGS_TOKENS = {
    0x05: "Settings",
    0x06: "Status",
    0x07: "Get",
    0x08: "Set",
    0x09: "Oof",
    0x0A: "OofState",
    0x0B: "StartTime",
    0x0C: "EndTime",
    0x0D: "OofMessage",
    0x0E: "AppliesToInternal",
    0x0F: "AppliesToExternalKnown",
    0x10: "AppliesToExternalUnknown",
    0x11: "Enabled",
    0x12: "ReplyMessage",
    0x13: "BodyType",
    0x14: "DevicePassword",
    0x15: "Password",
    0x16: "DeviceInformation",
    0x17: "Model",
    0x18: "IMEI",
    0x19: "FriendlyName",
    0x1A: "OS",
    0x1B: "OSLanguage",
    0x1C: "PhoneNumber",
    0x1D: "UserInformation",
    0x1E: "EmailAddresses",
    0x1F: "SmtpAddress",
    0x20: "UserAgent",
    0x21: "EnableOutboundSMS",
    0x22: "MobileOperator",
    0x23: "PrimarySmtpAddress",
    0x24: "Accounts",
    0x25: "Account",
    0x26: "AccountId",
    0x27: "AccountName",
    0x28: "UserDisplayName",
    0x29: "SendDisabled",
    0x2B: "RightsManagementInformation",
}

# Code page 5: Move.
MOVE_TOKENS = _table(0x05, "MoveItems Move SrcMsgId SrcFldId DstFldId Response Status DstMsgId")

# Code page 8: MeetingResponse. 0x0D is unassigned.
MEETING_RESPONSE_TOKENS = _table(
    0x05,
    "CalendarId CollectionId MeetingResponse RequestId Request Result Status UserResponse"
    " InstanceId ProposedStartTime ProposedEndTime SendResponse",
    skip=(0x0D,),
)

# Code page 10: ResolveRecipients.
RESOLVE_RECIPIENTS_TOKENS = _table(
    0x05,
    "ResolveRecipients Response Status Type Recipient DisplayName EmailAddress"
    " Certificates Certificate MiniCertificate Options To CertificateRetrieval"
    " RecipientCount MaxCertificates MaxAmbiguousRecipients CertificateCount"
    " Availability StartTime EndTime MergedFreeBusy Picture MaxSize Data MaxPictures",
)

# Code page 11: ValidateCert.
VALIDATE_CERT_TOKENS = _table(
    0x05, "ValidateCert Certificates Certificate CertificateChain CheckCRL Status"
)

# Code page 15: Search. 0x06 Stores is unused.
SEARCH_TOKENS = _table(
    0x05,
    "Search Stores Store Name Query Options Range Status Response Result Properties"
    " Total EqualTo Value And Or FreeText SubstringOp DeepTraversal LongId"
    " RebuildResults LessThan GreaterThan Schema Supported UserName Password"
    " ConversationId Picture MaxSize MaxPictures",
)

# Code page 21: ComposeMail. 0x0A is unassigned.
COMPOSE_MAIL_TOKENS = _table(
    0x05,
    "SendMail SmartForward SmartReply SaveInSentItems ReplaceMime Source FolderId"
    " ItemId LongId InstanceId Mime ClientId Status AccountId",
    skip=(0x0A,),
)

# Code page 25: Find (16.1). Only the tags of its response's status.
FIND_TOKENS = {0x05: "Find", 0x0A: "Status"}

CODE_PAGES = {
    AIRSYNC_PAGE: AIRSYNC_TOKENS,
    EMAIL_PAGE: EMAIL_TOKENS,
    GET_ITEM_ESTIMATE_PAGE: GET_ITEM_ESTIMATE_TOKENS,
    FOLDER_HIERARCHY_PAGE: FOLDER_HIERARCHY_TOKENS,
    PING_PAGE: PING_TOKENS,
    PROVISION_PAGE: PROVISION_TOKENS,
    AIRSYNCBASE_PAGE: AIRSYNCBASE_TOKENS,
    SETTINGS_PAGE: SETTINGS_TOKENS,
    ITEM_OPERATIONS_PAGE: ITEM_OPERATIONS_TOKENS,
    MOVE_PAGE: MOVE_TOKENS,
    MEETING_RESPONSE_PAGE: MEETING_RESPONSE_TOKENS,
    RESOLVE_RECIPIENTS_PAGE: RESOLVE_RECIPIENTS_TOKENS,
    VALIDATE_CERT_PAGE: VALIDATE_CERT_TOKENS,
    SEARCH_PAGE: SEARCH_TOKENS,
    COMPOSE_MAIL_PAGE: COMPOSE_MAIL_TOKENS,
    FIND_PAGE: FIND_TOKENS,
}
