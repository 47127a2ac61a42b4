"""The control panel's roles (devices.permissions) as DRF permission classes.

Object-level checks stay in devices.permissions' lookup helpers
(get_device_for_user and friends), which the views call, so the API and the
pages cannot disagree about who may see or change what.
"""

from rest_framework.permissions import SAFE_METHODS, BasePermission

from devices.permissions import (
    ORG_DEVICE_IDS_READ_ONLY,
    POLICIES_READ_ONLY,
    RULES_READ_ONLY,
    SETTINGS_READ_ONLY,
    STAFF_ROLES,
    Role,
    can_manage_devices,
    can_manage_org_device_ids,
    can_manage_policies,
    can_manage_rules,
    can_manage_settings,
    is_staff_role,
    role_for,
)

STAFF_ONLY = "This is for the help desk and administrators."
NO_ROLE = "This account has no role in the control panel."


class IsStaff(BasePermission):
    """Help Desk or Organization Management."""

    message = STAFF_ONLY

    def has_permission(self, request, view):
        return is_staff_role(request.user)


class CanReadDevices(BasePermission):
    """Staff see every device; an end user sees their own (the view narrows the queryset)."""

    message = NO_ROLE

    def has_permission(self, request, view):
        return role_for(request.user) in (*STAFF_ROLES, Role.END_USER)


class CanManageDevices(BasePermission):
    """Allow, block and remove devices; edit a mailbox's allowed and blocked lists."""

    message = "Ask the help desk to allow, block or remove a device."

    def has_permission(self, request, view):
        return can_manage_devices(request.user)


class _StaffReadsOrgWrites(BasePermission):
    can_write = staticmethod(lambda user: False)

    def has_permission(self, request, view):
        if request.method in SAFE_METHODS or getattr(view, "read_only_action", False):
            if not is_staff_role(request.user):
                self.message = STAFF_ONLY
                return False
            return True
        if not self.can_write(request.user):
            self.message = self.write_message if is_staff_role(request.user) else STAFF_ONLY
            return False
        return True


class RulesPermission(_StaffReadsOrgWrites):
    can_write = staticmethod(can_manage_rules)
    write_message = RULES_READ_ONLY


class OrgSettingsPermission(_StaffReadsOrgWrites):
    can_write = staticmethod(can_manage_settings)
    write_message = SETTINGS_READ_ONLY


class PoliciesPermission(_StaffReadsOrgWrites):
    can_write = staticmethod(can_manage_policies)
    write_message = POLICIES_READ_ONLY


class OrgDeviceIdsPermission(_StaffReadsOrgWrites):
    can_write = staticmethod(can_manage_org_device_ids)
    write_message = ORG_DEVICE_IDS_READ_ONLY


class LifecyclePermission(_StaffReadsOrgWrites):
    """Staff see the dry-run counts (the settings page shows them); Org Management runs."""

    can_write = staticmethod(can_manage_settings)
    write_message = "Only Organization Management can grandfather or purge devices."


class NotificationPermission(BasePermission):
    """As the Sent mail page: view_notification to read, change_notification to resend."""

    def has_permission(self, request, view):
        user = request.user
        if request.method in SAFE_METHODS:
            self.message = "Reading sent mail needs Organization Management."
            return user.has_perm("notifications.view_notification")
        self.message = "Resending mail needs Organization Management."
        return user.has_perm("notifications.change_notification")
