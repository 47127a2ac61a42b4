"""The domain's enumerations. No database access: the decision engine imports them."""

from django.db import models


class AccessLevel(models.TextChoices):
    ALLOW = "Allow", "Allow"
    BLOCK = "Block", "Block"
    QUARANTINE = "Quarantine", "Quarantine"


class AccessState(models.TextChoices):
    ALLOWED = "Allowed", "Allowed"
    BLOCKED = "Blocked", "Blocked"
    QUARANTINED = "Quarantined", "Quarantined"
    DEVICE_DISCOVERY = "DeviceDiscovery", "Device discovery"
    UNKNOWN = "Unknown", "Unknown"


class AccessReason(models.TextChoices):
    GLOBAL = "Global", "Organisation default"
    INDIVIDUAL = "Individual", "Mailbox allow/block list"
    DEVICE_RULE = "DeviceRule", "Device access rule"
    POLICY = "Policy", "ActiveSync disabled for the mailbox"
    UPGRADE = "Upgrade", "Upgrade"
    ORG_LIST = "OrgAllowList", "Organisation-wide allowed DeviceId"
    ACCOUNT_DISABLED = "AccountDisabled", "Account disabled or removed in the directory"


class Characteristic(models.TextChoices):
    DEVICE_TYPE = "DeviceType", "Device type"
    DEVICE_MODEL = "DeviceModel", "Device model"
    DEVICE_OS = "DeviceOS", "Device OS"
    USER_AGENT = "UserAgent", "User agent"


class DeviceIdList(models.TextChoices):
    ALLOWED = "allowed", "Allowed"
    BLOCKED = "blocked", "Blocked"


class AuditSource(models.TextChoices):
    UI = "ui", "Control panel"
    CLI = "cli", "Command line"
    API = "api", "REST API"
    GATE = "gate", "ActiveSync gate"
    SYSTEM = "system", "System"
    SELF_SERVICE = "self-service", "Self-service"
    DIRECTORY = "directory", "Directory"
    MAIL_LINK = "mail-link", "Mail link"


class OwnerAnswer(models.TextChoices):
    """What the device's owner said to "Was this you?" (a signed link in the mail)."""

    NONE = "", "No answer"
    MINE = "mine", "Confirmed by user"
    NOT_MINE = "not-mine", "Not the user's"


class SelfApproval(models.TextChoices):
    NEVER = "never", "Never"
    FIRST_DEVICE = "first", "Their first device only"
    ALWAYS = "always", "Always"


class AdminMailMode(models.TextChoices):
    EACH = "each", "One mail per device"
    DIGEST = "digest", "A digest every N minutes"


# Access level of a rule or the org default -> the state it puts a device in.
STATE_FOR_LEVEL = {
    AccessLevel.ALLOW: AccessState.ALLOWED,
    AccessLevel.BLOCK: AccessState.BLOCKED,
    AccessLevel.QUARANTINE: AccessState.QUARANTINED,
}
