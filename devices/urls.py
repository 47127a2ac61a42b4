"""The ECP's pages. Other code links to these paths: keep them as they are."""

from django.urls import path

from .views import (
    audit,
    dashboard,
    devices,
    jobs,
    mailboxes,
    my,
    org,
    org_device_ids,
    policies,
    rules,
)

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("devices/", devices.device_list, name="device-list"),
    path("devices/quarantine/", devices.quarantine, name="quarantine"),
    path("devices/bulk", devices.bulk, name="device-bulk"),
    path("devices/<int:pk>/", devices.device_detail, name="device-detail"),
    path("devices/<int:pk>/allow", devices.allow, name="device-allow"),
    path("devices/<int:pk>/block", devices.block, name="device-block"),
    path("devices/<int:pk>/remove", devices.remove, name="device-remove"),
    path("devices/<int:pk>/replace", devices.replace, name="device-replace"),
    path("mailboxes/", mailboxes.mailbox_list, name="mailbox-list"),
    path("mailboxes/<int:pk>/", mailboxes.mailbox_detail, name="mailbox-detail"),
    path("rules/", rules.rule_list, name="rule-list"),
    path("rules/new", rules.rule_new, name="rule-new"),
    path("rules/preview.csv", rules.rule_preview_csv, name="rule-preview-csv"),
    path("rules/test", rules.rule_test, name="rule-test"),
    path("rules/<int:pk>/edit", rules.rule_edit, name="rule-edit"),
    path("rules/<int:pk>/delete", rules.rule_delete, name="rule-delete"),
    path(
        "rules/<int:pk>/delete/preview.csv",
        rules.rule_delete_preview_csv,
        name="rule-delete-preview-csv",
    ),
    path("jobs/<int:pk>/", jobs.job_detail, name="job-detail"),
    path("jobs/<int:pk>.json", jobs.job_status, name="job-status"),
    path("settings/", org.org_settings, name="org-settings"),
    path("settings/grandfather", org.grandfather, name="org-grandfather"),
    path("policies/", policies.policy_list, name="policy-list"),
    path("policies/new", policies.policy_new, name="policy-new"),
    path("policies/<int:pk>/edit", policies.policy_edit, name="policy-edit"),
    path("policies/<int:pk>/delete", policies.policy_delete, name="policy-delete"),
    path("org-device-ids/", org_device_ids.org_device_id_list, name="org-device-ids"),
    path(
        "org-device-ids/<int:pk>/remove",
        org_device_ids.org_device_id_remove,
        name="org-device-id-remove",
    ),
    path("audit/", audit.audit_list, name="audit"),
    path("audit/export.csv", audit.audit_export, name="audit-export"),
    path("my/devices/", my.my_devices, name="my-devices"),
    path("my/devices/<int:pk>/approve", my.approve, name="my-device-approve"),
]
