"""ECP settings. Every value comes from the environment with a working default.

Embedded default: SQLite under var/, mail written to files under var/mail/,
Celery tasks run in-process after commit. See README "Configuration".
"""

from datetime import timedelta
from pathlib import Path

from .env import (
    ConfigError,
    database_from_url,
    envbool,
    envint,
    envlist,
    envnetworks,
    envstr,
    envwebhooks,
    secret_key,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(envstr("ECP_VAR_DIR", str(BASE_DIR / "var")))

SECRET_KEY = secret_key(VAR_DIR)
DEBUG = envbool("DEBUG", False)
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "crispy_forms",
    "crispy_bootstrap5",
    "django_celery_beat",
    "devices",
    "notifications",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "api",
    "axes",
]

MIDDLEWARE = [
    "devices.metrics.GateMetricsMiddleware",  # first: it times the whole stack for the gate
    # Before any get_host() (the metrics middleware above reads only the path).
    "devices.gate.hosts.RejectedHostIsAConfigurationError",
    # The gate's paths skip what only the panel needs (sessions, CSRF, auth, messages, axes).
    "devices.gate.shortcut.GateShortcut",
    "django.middleware.security.SecurityMiddleware",
    "ecp.security.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # The viewer's language and time zone; the gate's paths skip it (devices/preferences.py).
    "devices.preferences.PanelLocaleMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks
]

ROOT_URLCONF = "ecp.urls"
WSGI_APPLICATION = "ecp.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "devices.views.undo.undo_offer",
            ],
        },
    },
]

_database_url = envstr("DATABASE_URL")
if _database_url:
    DATABASES = {"default": database_from_url(_database_url)}
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "ecp.sqlite3",
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# The quarantine list's covering index (MobileDevice.Meta) carries INCLUDE columns on
# PostgreSQL; on the embedded SQLite it is a plain partial index, as intended.
SILENCED_SYSTEM_CHECKS = ["models.W040"]

# The gate caches verified credentials here. Redis shares them between processes.
_cache_url = envstr("CACHE_URL")
# A Redis that hangs must not hang the gate: each call gives up after a second.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": _cache_url,
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }
    if _cache_url
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

# The panel, the mails and the phone notice (README, "Languages and time zones").
# English is the default; locale/ holds the translations (`make messages` refreshes them).
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("de", "Deutsch"), ("fr", "Français"), ("es", "Español")]
LOCALE_PATHS = [BASE_DIR / "locale"]
LANGUAGE_COOKIE_NAME = "ecp_language"
# The browser's zone, as static/js/timezone.js reports it, until the user picks one.
ECP_TIME_ZONE_COOKIE = "ecp_tz"
TIME_ZONE = envstr("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# The REST API (api/): token or session authentication, JSON only, one error shape.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "api.pagination.PagePagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "api.exceptions.exception_handler",
    "URL_FORMAT_OVERRIDE": None,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "ECP REST API",
    "DESCRIPTION": "ActiveSync device access: org settings, mailboxes, devices, rules, "
    "access policies, organisation-wide DeviceIds, grandfathering, purge, rule change jobs, "
    "audit and sent mail. Authenticate with `Authorization: Token <key>` (create a token "
    "at /account/tokens/ or with `manage.py eas new-api-token USER`).",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "PREPROCESSING_HOOKS": ["api.schema.without_slash_twins"],
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "AccessStateEnum": "devices.choices.AccessState",
        "AccessLevelEnum": "devices.choices.AccessLevel",
        "AccessReasonEnum": "devices.choices.AccessReason",
        "CharacteristicEnum": "devices.choices.Characteristic",
    },
    # Swagger UI from drf-spectacular-sidecar's static files: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
}

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

# Mail: files under var/mail/ unless an SMTP host is configured.
EMAIL_HOST = envstr("EMAIL_HOST", "")
EMAIL_PORT = envint("EMAIL_PORT", 25)
EMAIL_HOST_USER = envstr("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = envstr("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = envint("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = envstr("DEFAULT_FROM_EMAIL", "ECP <ecp@localhost>")
EMAIL_BACKEND = envstr(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.filebased.EmailBackend",
)
EMAIL_FILE_PATH = envstr("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))

# Absolute base of the links in mails, e.g. https://ecp.example.org
ECP_BASE_URL = envstr("ECP_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
# Seconds before a mail's first retry after a transient SMTP error; doubles per attempt.
ECP_MAIL_BACKOFF_BASE = envint("ECP_MAIL_BACKOFF_BASE", 30)
# Seconds before a mail claimed by a worker that died mid-send may be sent again.
ECP_MAIL_SENDING_TIMEOUT = envint("ECP_MAIL_SENDING_TIMEOUT", 300)
# At most one mail per kind, recipient and device per this many minutes; later
# changes are folded into the next mail (0: no coalescing).
ECP_NOTIFY_MIN_INTERVAL_MINUTES = envint("ECP_NOTIFY_MIN_INTERVAL_MINUTES", 60)
# A device that changes its own decision-relevant details more often than this within
# one such interval is flapping: decisions that would loosen its access wait until the
# interval ends, and it adds no new DeviceClass rows.
ECP_DEVICE_DETAIL_CHANGES_LIMIT = envint("ECP_DEVICE_DETAIL_CHANGES_LIMIT", 4)
# DeviceClass (the device families offered in the rule form) stops growing here.
ECP_DEVICE_CLASS_MAX = envint("ECP_DEVICE_CLASS_MAX", 10000)

# Signed, expiring, single-use action links in the mails (devices/links.py): Allow and
# Block for the admins, "Was this you?" for the user. Hours a link stays valid.
ECP_LINK_MAX_AGE_HOURS = envint("ECP_LINK_MAX_AGE_HOURS", 72)
if ECP_LINK_MAX_AGE_HOURS < 1:
    raise ConfigError("ECP_LINK_MAX_AGE_HOURS must be 1 or more")
# Chat webhooks (notifications/webhooks.py): Slack-compatible or Microsoft Teams incoming
# webhooks, comma-separated (`teams:` or `slack:` before a URL picks the format), each told
# of every quarantine through the outbox; seconds to wait for one to answer.
ECP_WEBHOOK_URLS = envwebhooks("ECP_WEBHOOK_URLS")
ECP_WEBHOOK_TIMEOUT = envint("ECP_WEBHOOK_TIMEOUT", 10)

# A rule change that moves more devices than this runs as a Celery job with a progress
# page instead of inside the request.
ECP_RULE_CHANGE_INLINE_LIMIT = envint("ECP_RULE_CHANGE_INLINE_LIMIT", 5000)

# The gate trusts X-Real-IP (the device's address) only from these proxies.
ECP_TRUSTED_PROXIES = envlist("ECP_TRUSTED_PROXIES", ["127.0.0.1", "::1"])

# Celery: with no broker, tasks run in-process after the transaction commits.
CELERY_BROKER_URL = envstr("CELERY_BROKER_URL", "")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = TIME_ZONE
# A broker outage must not hold a request: publish fails fast, the outbox sweep retries.
CELERY_TASK_PUBLISH_RETRY = True
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 2, "socket_timeout": 5}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    "notifications-sweep": {"task": "notifications.tasks.sweep", "schedule": 60.0},
    "notifications-digests": {"task": "notifications.tasks.send_digests", "schedule": 60.0},
    "devices-discovery": {"task": "devices.tasks.end_discovery_windows", "schedule": 60.0},
    "devices-purge": {"task": "devices.tasks.purge_stale_quarantine", "schedule": 3600.0},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO")},
}

# --- Security (docs/RELIABILITY.md, "Security settings"; tests/test_security_*.py) ---
# The defaults serve plain http on 127.0.0.1 (`make run`); ecp/settings_production.py
# turns every switch on for TLS behind nginx, and `manage.py check --deploy` is clean there.
# Behind a TLS-terminating proxy that sets X-Forwarded-Proto (and strips a client's own):
ECP_BEHIND_TLS_PROXY = envbool("ECP_BEHIND_TLS_PROXY", False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if ECP_BEHIND_TLS_PROXY else None
SECURE_SSL_REDIRECT = envbool("ECP_SSL_REDIRECT", False)
# nginx's auth_request and mirror, and health probes, reach ECP over loopback http.
SECURE_REDIRECT_EXEMPT = [
    *(r"^eas/", r"^Microsoft-Server-ActiveSync", r"^healthz$", r"^readyz$", r"^metrics$")
]
SECURE_HSTS_SECONDS = envint("ECP_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("ECP_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = envbool("ECP_HSTS_PRELOAD", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"  # and CSP frame-ancestors 'none' (ecp/security.py): nobody frames Allow
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = envbool("ECP_SECURE_COOKIES", False)
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True  # forms carry the token; no script reads the cookie
# Lax, not Strict: following the link in a notification mail keeps the session.
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"

# GET /metrics (docs/METRICS.md): from these addresses or networks ("none": from none),
# or from anywhere with `Authorization: Bearer <ECP_METRICS_TOKEN>` (unset: no token works).
# Behind a trusted proxy (ECP_TRUSTED_PROXIES) the address is the client's X-Real-IP.
ECP_METRICS_ALLOWED = envnetworks("ECP_METRICS_ALLOWED", ["127.0.0.0/8", "::1"])
ECP_METRICS_TOKEN = envstr("ECP_METRICS_TOKEN", "")

# The gate fails closed when PostgreSQL is down (503). Opt in (seconds > 0) to let devices
# it allowed within that time keep syncing during an outage (devices/gate/outage.py).
ECP_GATE_OUTAGE_CACHE_SECONDS = envint("ECP_GATE_OUTAGE_CACHE_SECONDS", 0)
# A known device's answer is kept this many seconds in each worker (0: off); every
# audited change ends it sooner (devices/gate/decisions.py). A Block takes effect within it.
ECP_DECISION_CACHE_SECONDS = envint("ECP_DECISION_CACHE_SECONDS", 5)
# The notice mailbox of quarantined phones (devices/gate/notice.py): how long a Ping
# or a waiting Sync is held, and how often the partnership's state is looked at then.
ECP_NOTICE_HOLD_SECONDS = envint("ECP_NOTICE_HOLD_SECONDS", 90)
ECP_NOTICE_POLL_SECONDS = envint("ECP_NOTICE_POLL_SECONDS", 10)

# Sign-in brute force (django-axes): 10 failures of one login from one address lock that
# pair for 15 minutes; the real user from another address is not locked out. Counted in
# the database, so every worker process sees the same count.
AUTHENTICATION_BACKENDS = [
    "ecp.security.SignInLockout",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = envint("ECP_SIGNIN_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = timedelta(minutes=envint("ECP_SIGNIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "ecp.security.client_ip"
AXES_WHITELIST_CALLABLE = "ecp.security.not_a_sign_in"
AXES_HANDLER = "ecp.security.SignInAttempts"
AXES_SENSITIVE_PARAMETERS = ["password", "old_password", "new_password1", "new_password2"]
AXES_VERBOSE = False  # no banner on every manage.py command; lockouts are still logged

# --- Directory and mail-server sign-in (README, "Directory and mail-server sign-in") ---
# Where the gate checks a device's Basic password: local (ECP's own logins), ldap (bind
# as the user; needs AUTH_LDAP_SERVER_URI) or upstream (an authenticated OPTIONS to the
# real EAS server at ECP_GATE_UPSTREAM_URL).
ECP_GATE_CREDENTIALS = envstr("ECP_GATE_CREDENTIALS", "local")
if ECP_GATE_CREDENTIALS not in ("local", "ldap", "upstream"):
    raise ConfigError("ECP_GATE_CREDENTIALS must be local, ldap or upstream")
ECP_GATE_UPSTREAM_URL = envstr("ECP_GATE_UPSTREAM_URL", "")
ECP_GATE_UPSTREAM_TIMEOUT = envint("ECP_GATE_UPSTREAM_TIMEOUT", 5)
# The certificate bundle to check the upstream's TLS certificate with (default: the system's).
ECP_GATE_UPSTREAM_CA_FILE = envstr("ECP_GATE_UPSTREAM_CA_FILE", "")
if ECP_GATE_CREDENTIALS == "upstream" and not ECP_GATE_UPSTREAM_URL.startswith(
    ("http://", "https://")
):
    raise ConfigError("ECP_GATE_CREDENTIALS=upstream needs ECP_GATE_UPSTREAM_URL (http[s]://...)")
# The domain of a new mailbox's address when the login names none (upstream mode, or a
# directory entry without a mail attribute).
ECP_DEFAULT_MAIL_DOMAIN = envstr("ECP_DEFAULT_MAIL_DOMAIN", "").lower().lstrip("@")

ECP_LDAP_ENABLED = bool(envstr("AUTH_LDAP_SERVER_URI", ""))
if ECP_LDAP_ENABLED:
    import os

    from .ldap_config import ldap_settings

    globals().update(ldap_settings(os.environ))  # django-auth-ldap reads AUTH_LDAP_*

    # The directory first, then ECP's own logins (local admins keep signing in).
    AUTHENTICATION_BACKENDS.insert(1, "devices.directory.backend.DirectoryBackend")
    CELERY_BEAT_SCHEDULE["devices-directory-sync"] = {
        "task": "devices.tasks.sync_directory",
        "schedule": 60.0 * ECP_DIRECTORY_SYNC_MINUTES,  # noqa: F821 - set just above
    }
elif ECP_GATE_CREDENTIALS == "ldap":
    raise ConfigError("ECP_GATE_CREDENTIALS=ldap needs AUTH_LDAP_SERVER_URI")
