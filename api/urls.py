"""/api/v1/ (the API), /api/schema/ and /api/docs/ (OpenAPI), /account/tokens/ (the page)."""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import SimpleRouter

from .exceptions import not_found
from .views import access_check, audit, devices, mailboxes, me, notifications, org, rules, tokens

router = SimpleRouter(trailing_slash=False, use_regex_path=False)
router.register("mailboxes", mailboxes.MailboxViewSet, basename="api-mailbox")
router.register("devices", devices.DeviceViewSet, basename="api-device")
router.register("rules", rules.RuleViewSet, basename="api-rule")
router.register("audit-events", audit.AuditEventViewSet, basename="api-audit-event")
router.register("notifications", notifications.NotificationViewSet, basename="api-notification")

v1 = [
    path("me", me.me, name="api-me"),
    path("org-settings", org.OrgSettingsView.as_view(), name="api-org-settings"),
    path("access-check", access_check.AccessCheckView.as_view(), name="api-access-check"),
    *router.urls,
]

urlpatterns = [
    path("api/v1/", include(v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    re_path(r"^api/", not_found),
    path("account/tokens/", tokens.token_list, name="api-tokens"),
    path("account/tokens/<int:pk>/revoke", tokens.revoke, name="api-token-revoke"),
]
