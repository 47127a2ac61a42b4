"""The ECP's pages. Other code links to these paths: keep them as they are."""

from django.urls import path

from .views import dashboard, devices, mailboxes, my, org, rules

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("devices/", devices.device_list, name="device-list"),
    path("devices/quarantine/", devices.quarantine, name="quarantine"),
    path("devices/bulk", devices.bulk, name="device-bulk"),
    path("devices/<int:pk>/", devices.device_detail, name="device-detail"),
    path("devices/<int:pk>/allow", devices.allow, name="device-allow"),
    path("devices/<int:pk>/block", devices.block, name="device-block"),
    path("devices/<int:pk>/remove", devices.remove, name="device-remove"),
    path("mailboxes/", mailboxes.mailbox_list, name="mailbox-list"),
    path("mailboxes/<int:pk>/", mailboxes.mailbox_detail, name="mailbox-detail"),
    path("rules/", rules.rule_list, name="rule-list"),
    path("rules/new", rules.rule_new, name="rule-new"),
    path("rules/test", rules.rule_test, name="rule-test"),
    path("rules/<int:pk>/edit", rules.rule_edit, name="rule-edit"),
    path("rules/<int:pk>/delete", rules.rule_delete, name="rule-delete"),
    path("settings/", org.org_settings, name="org-settings"),
    path("my/devices/", my.my_devices, name="my-devices"),
]
