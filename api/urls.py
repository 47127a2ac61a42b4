"""/api/v1/ (the API), /api/schema/ and /api/docs/ (OpenAPI), /account/tokens/ (the page).

Every /api/v1/ path answers with and without a trailing slash (`/api/v1/devices` and
`/api/v1/devices/`): people type both and DRF's default router uses the slash. The
schema lists the paths without it (api.schema.without_slash_twins).
"""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import SimpleRouter

from .exceptions import not_found
from .views import (
    access_check,
    audit,
    devices,
    jobs,
    lifecycle,
    mailboxes,
    me,
    notifications,
    org,
    org_device_ids,
    policies,
    rules,
    tokens,
)

router = SimpleRouter(trailing_slash=False, use_regex_path=False)
router.register("mailboxes", mailboxes.MailboxViewSet, basename="api-mailbox")
router.register("devices", devices.DeviceViewSet, basename="api-device")
router.register("rules", rules.RuleViewSet, basename="api-rule")
router.register("audit-events", audit.AuditEventViewSet, basename="api-audit-event")
router.register("notifications", notifications.NotificationViewSet, basename="api-notification")
router.register("access-policies", policies.AccessPolicyViewSet, basename="api-access-policy")
router.register("org-device-ids", org_device_ids.OrgDeviceIdViewSet, basename="api-org-device-id")
router.register("rule-change-jobs", jobs.RuleChangeJobViewSet, basename="api-rule-change-job")

v1 = [
    path("me", me.me, name="api-me"),
    path("org-settings", org.OrgSettingsView.as_view(), name="api-org-settings"),
    path(
        "org-settings/preview",
        org.OrgSettingsPreviewView.as_view(),
        name="api-org-settings-preview",
    ),
    path("access-check", access_check.AccessCheckView.as_view(), name="api-access-check"),
    path(
        "grandfather-devices",
        lifecycle.GrandfatherView.as_view(),
        name="api-grandfather-devices",
    ),
    path(
        "purge-quarantined",
        lifecycle.PurgeQuarantinedView.as_view(),
        name="api-purge-quarantined",
    ),
    *router.urls,
]


def with_slash_twins(patterns):
    """Each route once more with a trailing slash, to the same view (unnamed: reverse()
    gives the canonical path without it)."""
    twins = [
        path(f"{p.pattern}/", p.callback, p.default_args)
        for p in patterns
        if not str(p.pattern).endswith("/")
    ]
    return [*patterns, *twins]


urlpatterns = [
    path("api/v1/", include(with_slash_twins(v1))),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    re_path(r"^api/", not_found),
    path("account/tokens/", tokens.token_list, name="api-tokens"),
    path("account/tokens/<int:pk>/revoke", tokens.revoke, name="api-token-revoke"),
]
