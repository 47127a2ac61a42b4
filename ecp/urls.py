from django.contrib import admin
from django.urls import include, path, re_path

from devices import health, metrics, sent_mail
from devices.gate import views as gate
from devices.views import auth

# Exchange's paths are case-insensitive and phones send either spelling. A character
# class per letter, not (?i:...): Django cannot reverse a URLconf with inline flags.
ACTIVESYNC_ROUTE = (
    "^"
    + "".join(
        f"[{c.upper()}{c.lower()}]" if c.isalpha() else c for c in "Microsoft-Server-ActiveSync"
    )
    + "/?$"
)

urlpatterns = [
    path("healthz", health.healthz),
    path("readyz", health.readyz),
    path("metrics", metrics.metrics),
    re_path(ACTIVESYNC_ROUTE, gate.activesync),
    path("eas/auth", gate.auth_request),
    path("eas/observe", gate.observe),
    path("eas/answer", gate.answer),
    path("accounts/login/", auth.login, name="login"),
    path("accounts/logout/", auth.logout, name="logout"),
    path("accounts/password/", auth.password_change, name="password-change"),
    path("notifications/", sent_mail.sent_mail, name="sent-mail"),
    path("notifications/<int:pk>/resend", sent_mail.resend, name="sent-mail-resend"),
    path("admin/", admin.site.urls),
    path("", include("api.urls")),
    path("", include("devices.urls")),
]

# Under /api/, errors outside DRF (a middleware's, during a database outage) stay JSON.
handler500 = "api.exceptions.server_error"
