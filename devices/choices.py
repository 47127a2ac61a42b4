"""The domain's enumerations. No database access: the decision engine imports them."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class AccessLevel(models.TextChoices):
    ALLOW = "Allow", _("Allow")
    BLOCK = "Block", _("Block")
    QUARANTINE = "Quarantine", _("Quarantine")


class AccessState(models.TextChoices):
    ALLOWED = "Allowed", _("Allowed")
    BLOCKED = "Blocked", _("Blocked")
    QUARANTINED = "Quarantined", _("Quarantined")
    DEVICE_DISCOVERY = "DeviceDiscovery", _("Device discovery")
    UNKNOWN = "Unknown", _("Unknown")


class AccessReason(models.TextChoices):
    GLOBAL = "Global", _("Organisation default")
    INDIVIDUAL = "Individual", _("Mailbox allow/block list")
    DEVICE_RULE = "DeviceRule", _("Device access rule")
    POLICY = "Policy", _("ActiveSync disabled for the mailbox")
    UPGRADE = "Upgrade", _("Upgrade")
    ORG_LIST = "OrgAllowList", _("Organisation-wide allowed DeviceId")
    ACCOUNT_DISABLED = "AccountDisabled", _("Account disabled or removed in the directory")


class Characteristic(models.TextChoices):
    DEVICE_TYPE = "DeviceType", "Device type"
    DEVICE_MODEL = "DeviceModel", "Device model"
    DEVICE_OS = "DeviceOS", "Device OS"
    USER_AGENT = "UserAgent", "User agent"


class DeviceIdList(models.TextChoices):
    ALLOWED = "allowed", "Allowed"
    BLOCKED = "blocked", "Blocked"


class AuditSource(models.TextChoices):
    UI = "ui", _("Control panel")
    CLI = "cli", _("Command line")
    API = "api", _("REST API")
    GATE = "gate", _("ActiveSync gate")
    SYSTEM = "system", _("System")
    SELF_SERVICE = "self-service", _("Self-service")
    DIRECTORY = "directory", _("Directory")
    MAIL_LINK = "mail-link", _("Mail link")


class OwnerAnswer(models.TextChoices):
    """What the device's owner said to "Was this you?" (a signed link in the mail)."""

    NONE = "", _("No answer")
    MINE = "mine", _("Confirmed by user")
    NOT_MINE = "not-mine", _("Not the user's")


class SelfApproval(models.TextChoices):
    NEVER = "never", _("Never")
    FIRST_DEVICE = "first", _("Their first device only")
    ALWAYS = "always", _("Always")


class AdminMailMode(models.TextChoices):
    EACH = "each", _("One mail per device")
    DIGEST = "digest", _("A digest every N minutes")


# Access level of a rule or the org default -> the state it puts a device in.
STATE_FOR_LEVEL = {
    AccessLevel.ALLOW: AccessState.ALLOWED,
    AccessLevel.BLOCK: AccessState.BLOCKED,
    AccessLevel.QUARANTINE: AccessState.QUARANTINED,
}
