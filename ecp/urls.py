from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from devices import health, sent_mail
from devices.gate import views as gate

urlpatterns = [
    path("healthz", health.healthz),
    path("readyz", health.readyz),
    path("Microsoft-Server-ActiveSync", gate.activesync),
    path("eas/auth", gate.auth_request),
    path("eas/observe", gate.observe),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("notifications/", sent_mail.sent_mail, name="sent-mail"),
    path("notifications/<int:pk>/resend", sent_mail.resend, name="sent-mail-resend"),
    path("admin/", admin.site.urls),
    path("", include("api.urls")),
    path("", include("devices.urls")),
]
