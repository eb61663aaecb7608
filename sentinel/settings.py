"""UptimeSentinel settings: one module, every value read from the environment.

The defaults point at the services a development machine runs on their standard
local ports, so ``make run`` works with no configuration. Production sets
``DEBUG=false``, a real ``SECRET_KEY`` (or ``SECRET_KEY_FILE``) and ``ALLOWED_HOSTS``.
docs/configuration.md lists every variable.
"""

from __future__ import annotations

import ipaddress
import ssl
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured
from kombu import Exchange, Queue

from core.regions import (
    LOCAL,
    RESULTS_QUEUE,
    broker_queue,
    probe_queue,
    region_name_problem,
)
from sentinel.env import Env

BASE_DIR = Path(__file__).resolve().parent.parent
env = Env()

# Only used when DEBUG is on; production refuses to start without a real key
# (see sentinel.checks).
INSECURE_DEV_SECRET_KEY = "django-insecure-dev-only-uptimesentinel"  # noqa: S105

DEBUG = env.bool("DEBUG", True)
SECRET_KEY = env.str("SECRET_KEY", INSECURE_DEV_SECRET_KEY)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", [])
SITE_NAME = env.str("SITE_NAME", "UptimeSentinel")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "auditlog",
    "core",
    "sentinel",
    "monitors",
    "telemetry",
    "reporting",
    "alerting",
    "statuspages",
    "configfiles",
    "accounts",
    "projects",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # A status page's custom domain: that page's URLs only (statuspages.middleware).
    "statuspages.middleware.StatusDomainMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # request.user.is_verified(): signed in with a second factor (django-otp).
    "django_otp.middleware.OTPMiddleware",
    # The audit trail's actor: the signed-in user behind each change (django-auditlog).
    "sentinel.audit.AuditActorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "sentinel.urls"
WSGI_APPLICATION = "sentinel.wsgi.application"
ASGI_APPLICATION = "sentinel.asgi.application"

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
            ],
        },
    },
]

# --- Services -------------------------------------------------------------------

# What this process is: "all" may run anything (web, workers, Beat, ingest); "probe" is a
# probe worker, which needs only RabbitMQ and the Redis buffer. A probe worker without a
# DATABASE_URL (unset or empty) has no database at all (core.nodatabase: anything that
# tries one fails, naming these settings). Any other process without DATABASE_URL uses
# the development database below, and where there is none manage.py says so in one line
# naming DATABASE_URL (core.reachability).
SENTINEL_ROLE = env.choice("SENTINEL_ROLE", "all", choices=("all", "probe"))
HAS_DATABASE = SENTINEL_ROLE != "probe" or bool(env.raw("DATABASE_URL"))
DATABASE_URL = (
    env.str("DATABASE_URL", "mysql://root:@127.0.0.1:3306/sentinel") if HAS_DATABASE else ""
)
if HAS_DATABASE:
    DATABASES = {"default": environ.Env.db_url_config(DATABASE_URL)}
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].update(
        {
            "charset": "utf8mb4",
            # Fail fast with a clear message rather than hang when the server is away.
            "connect_timeout": env.int("DATABASE_CONNECT_TIMEOUT", 5, minimum=1, maximum=120),
        }
    )
    DATABASES["default"]["CONN_MAX_AGE"] = env.int(
        "DATABASE_CONN_MAX_AGE", 60, minimum=0, maximum=3600
    )
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"]["TEST"] = {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"}
else:
    DATABASES = {"default": {"ENGINE": "core.nodatabase"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", "redis://127.0.0.1:6379/0")
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "sentinel",
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            "SOCKET_CONNECT_TIMEOUT": 2,
            "SOCKET_TIMEOUT": 2,
            # A cache that is down is a slower page, not an error page: reads miss, writes
            # are skipped, and each failure is logged (the write buffer has its own
            # client and does not ignore anything).
            "IGNORE_EXCEPTIONS": True,
        },
    }
}

DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
# A private CA to verify an amqps:// broker's certificate with (a remote probe region
# reaching the central RabbitMQ over TLS); empty: the system's CAs.
SENTINEL_BROKER_CA_FILE = env.str("SENTINEL_BROKER_CA_FILE", "").strip()
if urlsplit(CELERY_BROKER_URL).scheme == "amqps":
    # The certificate chain and the broker's host name are both checked: py-amqp checks
    # the host name only when it is given one.
    CELERY_BROKER_USE_SSL = {
        "cert_reqs": ssl.CERT_REQUIRED,
        "server_hostname": urlsplit(CELERY_BROKER_URL).hostname,
        **({"ca_certs": SENTINEL_BROKER_CA_FILE} if SENTINEL_BROKER_CA_FILE else {}),
    }

# --- Auth, sessions, security ---------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/dashboard/login/"
LOGIN_REDIRECT_URL = "/dashboard/"
LOGOUT_REDIRECT_URL = "/dashboard/login/"
# Two-factor sign-in (accounts/, django-otp): with this on, the admin lets staff in only
# with a code (a session signed in with one, or the admin's own code field).
SENTINEL_ADMIN_REQUIRE_2FA = env.bool("SENTINEL_ADMIN_REQUIRE_2FA", False)
# The name authenticator apps show beside the account.
OTP_TOTP_ISSUER = SITE_NAME

SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", not DEBUG)
# gunicorn sits behind nginx (docker/nginx.conf), which sets this header.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env.int(
    "SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000, minimum=0, maximum=63072000
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SILENCED_SYSTEM_CHECKS = env.list("SILENCED_SYSTEM_CHECKS", [])

# --- I18N, static ---------------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").is_dir() else []
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Hashed, compressed files served by WhiteNoise from gunicorn (nginx caches them).
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", "INFO")},
}

# --- REST framework -------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        # A project's API key: Authorization: Bearer us_... (projects.api.auth).
        "projects.api.auth.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        # Writes inside a project: the member's role or the API key decides (403).
        "projects.api.permissions.ProjectRole",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["reporting.api.throttling.TokenRateThrottle"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    # One kind of page for every list (raw results alone are keyset-paged).
    "DEFAULT_PAGINATION_CLASS": "reporting.api.pagination.PagePagination",
    # Documents every error answer of every endpoint (reporting/api/schema.py).
    "DEFAULT_SCHEMA_CLASS": "reporting.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "reporting.api.errors.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "UptimeSentinel API",
    "DESCRIPTION": "Monitors, their check results, uptime and latency, tags, alert rules, "
    "notification channels, maintenance windows and incidents. Authenticate with "
    "`Authorization: Token <key>` (make a key with "
    "`python manage.py drf_create_token <user>`) or the dashboard's session.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The docs page loads Swagger UI from this server (drf-spectacular-sidecar), never a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Monitors and status page incidents both have a "status" of their own choices.
    "ENUM_NAME_OVERRIDES": {
        "PageIncidentStatusEnum": "statuspages.models.PageIncident.Status",
        "PageIncidentImpactEnum": "statuspages.models.PageIncident.Impact",
    },
}

# --- Celery ---------------------------------------------------------------------
# Routing lives here and only here: each task module names its queue through
# CELERY_TASK_ROUTES, and every queue is durable on a direct exchange of its own name.

# Probe regions (core.regions, monitors.regions). This process's region: a probe
# worker consumes only its region's queue. A worker of a remote region (any other name
# than "local") needs only CELERY_BROKER_URL: it sends its results back over RabbitMQ.
SENTINEL_REGION = env.str("SENTINEL_REGION", LOCAL).strip()
# Every region the dispatcher hands slots to (the central site's list); a monitor
# checks from all of them or from those it names.
SENTINEL_REGIONS = env.list("SENTINEL_REGIONS", [LOCAL])
for _name, _value in [("SENTINEL_REGION", SENTINEL_REGION)] + [
    ("SENTINEL_REGIONS", region) for region in SENTINEL_REGIONS
]:
    if _problem := region_name_problem(_value):
        raise ImproperlyConfigured(f"{_name}: {_problem}.")
if not SENTINEL_REGIONS or len(set(SENTINEL_REGIONS)) != len(SENTINEL_REGIONS):
    raise ImproperlyConfigured("SENTINEL_REGIONS must name at least one region, each once.")
SENTINEL_REMOTE_REGION = SENTINEL_REGION != LOCAL
# The address this worker's checks connect from (empty: the system's choice); regions
# simulated on one machine use 127.0.0.2, .3, .4 (the whole loopback range is local).
SENTINEL_SOURCE_ADDRESS = env.str("SENTINEL_SOURCE_ADDRESS", "").strip()
if SENTINEL_SOURCE_ADDRESS:
    try:
        ipaddress.ip_address(SENTINEL_SOURCE_ADDRESS)
    except ValueError:
        raise ImproperlyConfigured(
            f"SENTINEL_SOURCE_ADDRESS={SENTINEL_SOURCE_ADDRESS!r} is not an IP address."
        ) from None
# A region with no result for this long is shown as silent (/healthz, /metrics).
SENTINEL_REGION_SILENT_SECONDS = env.int(
    "SENTINEL_REGION_SILENT_SECONDS", 180, minimum=30, maximum=86400
)

SENTINEL_QUEUES = (
    "dispatch",
    *(probe_queue(region) for region in SENTINEL_REGIONS),
    "ingest",
    "alerts",
    "maintenance",
    RESULTS_QUEUE,
)
# Messages rejected without requeue (a task that gave up after its retries) are
# dead-lettered to the "dead" queue, kept for an operator to inspect, not lost.
# No worker consumes it; sentinel.celery declares it when a worker starts. Messages
# whose expiry passed in a queue (a periodic drain or dispatch while the workers were
# away, a probe batch too late to check) are dead-lettered to the same exchange by
# RabbitMQ, but the dead queue's binding takes only the rejected ones (the
# x-first-death-reason header RabbitMQ sets; "all-with-x" matches an x- header), so
# expired ones are dropped, as Celery drops an expired task it receives.
SENTINEL_DEAD_LETTER_EXCHANGE = "sentinel.dead"


def _queue(name: str, *, no_declare: bool = False) -> Queue:
    return broker_queue(
        name, dead_letter_exchange=SENTINEL_DEAD_LETTER_EXCHANGE, no_declare=no_declare
    )


if SENTINEL_REMOTE_REGION:
    # A remote region's worker declares nothing (its RabbitMQ user may not: the central
    # site declares every region's queue) and knows only its own queue and the results'.
    CELERY_TASK_QUEUES: tuple[Queue, ...] = (
        _queue(probe_queue(SENTINEL_REGION), no_declare=True),
        _queue(RESULTS_QUEUE, no_declare=True),
    )
    # Remote control and events would need queues and exchanges of their own.
    CELERY_WORKER_ENABLE_REMOTE_CONTROL = False
else:
    CELERY_TASK_QUEUES = (
        *(_queue(name) for name in SENTINEL_QUEUES),
        Queue(
            "dead",
            Exchange(SENTINEL_DEAD_LETTER_EXCHANGE, type="headers", durable=True),
            durable=True,
            binding_arguments={"x-match": "all-with-x", "x-first-death-reason": "rejected"},
        ),
    )
CELERY_TASK_DEFAULT_QUEUE = "maintenance"
CELERY_TASK_ROUTES = {
    "sentinel.*": {"queue": "maintenance"},
    "monitors.dispatch.*": {"queue": "dispatch"},
    # A slot's batch goes to each of its regions' queues (monitors.dispatch names the
    # queue); the local region's is "probes".
    "monitors.probes.*": {"queue": probe_queue(LOCAL)},
    "monitors.regions.*": {"queue": RESULTS_QUEUE},
    "telemetry.ingest.*": {"queue": "ingest"},
    "telemetry.maintenance.*": {"queue": "maintenance"},
    "monitors.alerts.*": {"queue": "alerts"},
    "alerting.*": {"queue": "alerts"},
}
# Tasks opt in to acks_late + reject_on_worker_lost one by one, where a rerun is
# safe (dispatch claims idempotently; a probe batch re-run stores nothing twice).
CELERY_TASK_ACKS_LATE = False
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_DELIVERY_MODE = "persistent"
CELERY_BROKER_TRANSPORT_OPTIONS = {"confirm_publish": True}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = 4
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULER = "sentinel.beat:Scheduler"
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    # Reminders while down, the end of flapping, and sends a killed worker left behind.
    "alerting-sweep": {"task": "alerting.sweep", "schedule": 60.0},
}

# --- Email (notification channel) ------------------------------------------------
# The console backend in development prints notifications instead of sending them.

EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env.str("EMAIL_HOST", "localhost")
EMAIL_PORT = env.int("EMAIL_PORT", 25, minimum=1, maximum=65535)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", 10, minimum=1, maximum=120)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", "UptimeSentinel <alerts@localhost>")

# --- Product --------------------------------------------------------------------

# Alerting (alerting/): outgoing notifications and the rules that hold them back.
SENTINEL_NOTIFY_TIMEOUT_SECONDS = env.int(
    "SENTINEL_NOTIFY_TIMEOUT_SECONDS", 10, minimum=1, maximum=60
)
SENTINEL_NOTIFY_MAX_RETRIES = env.int("SENTINEL_NOTIFY_MAX_RETRIES", 5, minimum=0, maximum=20)
SENTINEL_CHANNEL_UNHEALTHY_AFTER = env.int(
    "SENTINEL_CHANNEL_UNHEALTHY_AFTER", 5, minimum=1, maximum=1000
)
# A monitor that changes state this many times within the window is flapping: one
# notice, then nothing until it has been stable for the settle period.
SENTINEL_FLAP_CHANGES = env.int("SENTINEL_FLAP_CHANGES", 3, minimum=2, maximum=100)
SENTINEL_FLAP_WINDOW_MINUTES = env.int("SENTINEL_FLAP_WINDOW_MINUTES", 30, minimum=1, maximum=1440)
SENTINEL_FLAP_SETTLE_MINUTES = env.int("SENTINEL_FLAP_SETTLE_MINUTES", 15, minimum=1, maximum=1440)
# The site's time zone (IANA name): the zone a new maintenance window starts with, whose
# weekly repeats keep their wall-clock time across daylight saving changes. Checked by
# sentinel.E004. Stored times and the rest of the product stay UTC (TIME_ZONE above).
SENTINEL_TIME_ZONE = env.str("SENTINEL_TIME_ZONE", "UTC")

# Loopback, private and link-local targets are refused unless this is on (self-hosted
# monitoring of an internal network, and the tests and benchmarks on 127.0.0.1).
SENTINEL_ALLOW_PRIVATE_TARGETS = env.bool("SENTINEL_ALLOW_PRIVATE_TARGETS", False)
SENTINEL_ALLOWED_NETWORKS = env.list("SENTINEL_ALLOWED_NETWORKS", [])

# Telemetry: the Redis buffer, ingest and the partitioned result tables (telemetry/).
# Raw check results are kept this many days, in daily partitions dropped whole.
TELEMETRY_RETENTION_DAYS = env.int("TELEMETRY_RETENTION_DAYS", 90, minimum=1, maximum=3660)
# Rollups outlive the raw rows: hourly ones for month-scale windows, daily ones for years.
TELEMETRY_HOURLY_RETENTION_DAYS = env.int(
    "TELEMETRY_HOURLY_RETENTION_DAYS", 100, minimum=1, maximum=3660
)
TELEMETRY_DAILY_RETENTION_DAYS = env.int(
    "TELEMETRY_DAILY_RETENTION_DAYS", 800, minimum=1, maximum=36600
)
# Partitions exist this many days ahead, so maintenance can miss a few runs.
TELEMETRY_PARTITIONS_AHEAD_DAYS = env.int(
    "TELEMETRY_PARTITIONS_AHEAD_DAYS", 7, minimum=1, maximum=366
)
# Results per ingest transaction (one LOAD DATA, or one multi-row INSERT); 10,000 rows
# stay well under the default max_allowed_packet (16 MB on MariaDB, 64 MB on MySQL 8).
# Large: each transaction has a fixed cost (the commit's log flush, the pending rollup
# row) that a large batch spreads over more results. While results trickle in, the
# linger below bounds a batch instead.
TELEMETRY_INGEST_BATCH_SIZE = env.int(
    "TELEMETRY_INGEST_BATCH_SIZE", 10000, minimum=1, maximum=10000
)
# The ingest loop waits up to this long for a batch to fill once results arrive, so a
# trickle of results is a few large transactions rather than one per result.
TELEMETRY_INGEST_LINGER_MS = env.int("TELEMETRY_INGEST_LINGER_MS", 1000, minimum=0, maximum=10000)
# Ingest loads batches with LOAD DATA LOCAL INFILE (a few times faster than INSERT)
# when the server allows it, and falls back to INSERT when it does not. Allowing it
# means a connection sends a local file when the server asks for one: connect to a
# MySQL you trust, over TLS across a network (MySQL's own advice for LOCAL). False:
# INSERT only, and connections do not offer local files at all.
TELEMETRY_INGEST_LOAD_DATA = env.bool("TELEMETRY_INGEST_LOAD_DATA", True)
if TELEMETRY_INGEST_LOAD_DATA and HAS_DATABASE:
    DATABASES["default"]["OPTIONS"]["local_infile"] = 1
# While ingest is busy, rollups are folded from the pending deltas at least this often
# (an idle ingest folds at once): the rollups' lag, traded against rollup writes.
TELEMETRY_ROLLUP_FOLD_SECONDS = env.int(
    "TELEMETRY_ROLLUP_FOLD_SECONDS", 30, minimum=1, maximum=3600
)
# The per-monitor summaries that status pages and the dashboard overview read take the
# rollup folds' deltas at most this often, many folds' at once (telemetry.summary): their
# lag, traded against rewriting every monitor's summary row at each fold. 0: every fold.
TELEMETRY_SUMMARY_FOLD_SECONDS = env.int(
    "TELEMETRY_SUMMARY_FOLD_SECONDS", 300, minimum=0, maximum=3600
)
# A batch taken by a consumer that has not acknowledged it for this long is reclaimed
# by another (the consumer is presumed dead; a replay is harmless, inserts are idempotent).
TELEMETRY_INGEST_RECLAIM_SECONDS = env.int(
    "TELEMETRY_INGEST_RECLAIM_SECONDS", 60, minimum=1, maximum=86400
)
# Where probe workers keep results while Redis is unreachable (replayed on the next push).
TELEMETRY_SPOOL_DIR = env.str("TELEMETRY_SPOOL_DIR", str(BASE_DIR / "var" / "spool"))

# Heartbeat pings (monitors.pingapp): the most of a POST body kept with a ping (bytes;
# the rest is read and dropped, and the ping marked truncated), the pings one ping URL
# may send per minute before it is answered 429, and how long pings (with their
# bodies) are kept in heartbeat_ping (their results follow TELEMETRY_RETENTION_DAYS).
HEARTBEAT_PING_BODY_MAX_BYTES = env.int(
    "HEARTBEAT_PING_BODY_MAX_BYTES", 100_000, minimum=0, maximum=1_000_000
)
HEARTBEAT_PING_RATE_LIMIT = env.int("HEARTBEAT_PING_RATE_LIMIT", 100, minimum=1, maximum=100_000)
HEARTBEAT_PING_RETENTION_DAYS = env.int(
    "HEARTBEAT_PING_RETENTION_DAYS", 14, minimum=1, maximum=3660
)

# The dispatcher (monitors.dispatch) claims the slots due before now + this horizon
# each minute; the extra seconds over 60 send a minute's first batches ahead of time.
SENTINEL_DISPATCH_HORIZON_SECONDS = env.int(
    "SENTINEL_DISPATCH_HORIZON_SECONDS", 70, minimum=60, maximum=120
)
# Slots missed while the dispatch could not run (MySQL away, Beat down) are caught up
# by the next dispatch if they are no older than this: each gets its result, at twice
# the monitor's rhythm until it is back on time (monitors.dispatch). Older ones are
# skipped; 0 turns catching up off (one slot at the monitor's phase, as for a new one).
SENTINEL_DISPATCH_CATCH_UP_SECONDS = env.int(
    "SENTINEL_DISPATCH_CATCH_UP_SECONDS", 120, minimum=0, maximum=3600
)
# Slots per probe task. A message costs ~1 ms of broker work, so one per check caps a
# 2-core box near 900 checks/s; batches take that off the table. 250 rather than 100:
# when each batch committed its monitors' live state, it halved the MySQL transactions
# at 100,000 monitors a minute and cut probe CPU a little, lag unchanged (CHANGELOG.md).
SENTINEL_PROBE_BATCH_SIZE = env.int("SENTINEL_PROBE_BATCH_SIZE", 250, minimum=1, maximum=1000)
# A probe batch still queued this long after its second is dropped, not run late.
SENTINEL_PROBE_EXPIRE_SECONDS = env.int("SENTINEL_PROBE_EXPIRE_SECONDS", 45, minimum=5, maximum=600)

# API requests per token (or per signed-in user) and period: "N/second|minute|hour|day".
SENTINEL_API_RATE = env.str("SENTINEL_API_RATE", "600/minute")
# Requests that check monitors now (check-now, a bulk check_now), per token or user,
# on top of SENTINEL_API_RATE: each makes the probes connect to targets at once.
SENTINEL_API_CHECK_NOW_RATE = env.str("SENTINEL_API_CHECK_NOW_RATE", "30/minute")
# How long a project invitation's email link works (projects.services.invitation_create).
SENTINEL_INVITATION_EXPIRY_HOURS = env.int(
    "SENTINEL_INVITATION_EXPIRY_HOURS", 72, minimum=1, maximum=24 * 90
)
# Seconds a stats or series answer is served from Redis; never longer than the
# monitor's own interval, so a new check shows within one interval.
SENTINEL_REPORT_CACHE_SECONDS = env.int(
    "SENTINEL_REPORT_CACHE_SECONDS", 30, minimum=0, maximum=3600
)
# Seconds a status page's live part, JSON and badge state are served from Redis (the
# same for every visitor); an owner's edit or post shows at once regardless.
SENTINEL_STATUS_PAGE_CACHE_SECONDS = env.int(
    "SENTINEL_STATUS_PAGE_CACHE_SECONDS", 30, minimum=0, maximum=3600
)
# How often an open status page refreshes its live part in the browser.
SENTINEL_STATUS_PAGE_REFRESH_SECONDS = env.int(
    "SENTINEL_STATUS_PAGE_REFRESH_SECONDS", 60, minimum=10, maximum=3600
)
# Per-monitor up and latency gauges on /metrics: one series per monitor, so off for
# large fleets.
SENTINEL_METRICS_PER_MONITOR = env.bool("SENTINEL_METRICS_PER_MONITOR", False)
# Bearer token for Prometheus scrapes of /metrics (or SENTINEL_METRICS_TOKEN_FILE);
# without it only staff sessions may read /metrics, except in development.
SENTINEL_METRICS_TOKEN = env.str("SENTINEL_METRICS_TOKEN", "")
