"""Django admin: read-only views for support staff. Changes go through the ECP pages."""

from django.contrib import admin

from .models import AuditEvent, DeviceAccessRule, Mailbox, MobileDevice


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("time", "actor_name", "source", "action", "object_repr", "message")
    list_filter = ("source", "action")
    search_fields = ("actor_name", "object_repr", "message")


@admin.register(MobileDevice)
class MobileDeviceAdmin(ReadOnlyAdmin):
    list_display = ("device_id", "mailbox", "device_type", "device_model", "access_state")
    list_filter = ("access_state", "access_state_reason")
    search_fields = ("device_id", "mailbox__alias", "device_model")


@admin.register(Mailbox)
class MailboxAdmin(ReadOnlyAdmin):
    list_display = ("alias", "primary_smtp_address", "display_name", "activesync_enabled")
    search_fields = ("alias", "primary_smtp_address", "display_name")


@admin.register(DeviceAccessRule)
class DeviceAccessRuleAdmin(ReadOnlyAdmin):
    list_display = ("characteristic", "query_string", "access_level", "created_at")
