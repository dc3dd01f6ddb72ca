"""Agent Runner settings: one module, every deployment choice read from the environment.

A local `.env` file (written by `make`, never committed; another file with DJANGO_ENV_FILE) is read
first, so a fresh checkout gets a random secret key without anyone editing this file. Variables
already in the environment win over the file.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(env.str("DJANGO_ENV_FILE", default=str(BASE_DIR / ".env")), overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off "
            "(`make run` writes a random one to .env for local use)."
        )
    SECRET_KEY = "django-insecure-local-development-only"

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

# --- HTTPS (production) ---------------------------------------------------------------------
# Off by default so `make run` and tests work over plain http. `DJANGO_HTTPS=1` turns every one
# on (the documented production setting); each can still be overridden on its own.
HTTPS = env.bool("DJANGO_HTTPS", default=False)
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=HTTPS)
# Load balancers and Prometheus usually probe over plain http inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^livez$", r"^metrics$"]
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=HTTPS)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=HTTPS)
SESSION_COOKIE_SECURE = env.bool("DJANGO_SESSION_COOKIE_SECURE", default=HTTPS)
CSRF_COOKIE_SECURE = env.bool("DJANGO_CSRF_COOKIE_SECURE", default=HTTPS)
if env.bool("DJANGO_BEHIND_PROXY", default=False):
    # Trust the proxy's X-Forwarded-Proto (only when a proxy that sets it sits in front).
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

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
    "django_q",
    "runner",
    "agents",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "runner.middleware.RequestIdMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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

# --- Database -------------------------------------------------------------------------------
# SQLite by default (a first run needs nothing installed); PostgreSQL in production via DATABASE_URL.
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (web, qcluster workers, CLI) share the file: WAL lets readers run beside a
    # writer, IMMEDIATE takes the write lock at BEGIN so two claims queue instead of deadlocking,
    # and the busy timeout makes them wait rather than fail with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- Runner -----------------------------------------------------------------------------------
# Agent kinds the runner can load: kind -> dotted path of a class implementing runner.protocol.
RUNNER_AGENT_KINDS = {
    "forecaster": "agents.forecaster.ForecasterAgent",
    # More kinds from the environment, as JSON: {"mykind": "mypackage.module.MyAgent"}
    **env.json("RUNNER_EXTRA_AGENT_KINDS", default={}),
}
RUNNER_DEFAULT_AGENT = env.str("RUNNER_DEFAULT_AGENT", default="default")
# A claimed cycle holds a lease renewed by a heartbeat every LEASE_SECONDS / 3; a run whose lease
# ran out (its worker was killed or hung) is marked abandoned by the next claim or the reaper.
RUNNER_LEASE_SECONDS = env.int("RUNNER_LEASE_SECONDS", default=30)
# A queued run that no worker starts within this time is marked skipped (no cluster running).
RUNNER_QUEUED_RUN_TTL_SECONDS = env.int("RUNNER_QUEUED_RUN_TTL_SECONDS", default=600)
RUNNER_RUN_LOG_LINES = env.int("RUNNER_RUN_LOG_LINES", default=500)
# Extra fields for the seed-compatible status: dotted paths of callables f(agent) -> dict.
RUNNER_STATUS_EXTRAS = ["agents.status.forecast_totals"]
# `manage.py rundispatcher` sleeps until the next slot, or at most this long (new schedules).
RUNNER_DISPATCH_POLL_SECONDS = env.float("RUNNER_DISPATCH_POLL_SECONDS", default=0.5)
# The environment is the ceiling on trading: agents can only be `live` when this says `live`.
TRADING_MODE = env.str("TRADING_MODE", default="dry_run")
if TRADING_MODE not in ("dry_run", "live"):
    raise ImproperlyConfigured(f"TRADING_MODE must be 'dry_run' or 'live', not {TRADING_MODE!r}.")
# Reports: dotted paths of callables(agent_or_None, since, until) -> dict whose keys are merged
# into a report's `outputs` (what the agents produced); runner never imports agent code itself.
RUNNER_REPORT_EXTRAS = ["agents.reports.forecaster_output"]
# Retention: a daily django-q2 schedule deletes finished runs older than this (e.g. "90d");
# empty disables it. `manage.py pruneruns --sync-schedule` (and migrate) keep the schedule in step.
RUNNER_PRUNE_RUNS_OLDER_THAN = env.str("RUNNER_PRUNE_RUNS_OLDER_THAN", default="")
MARKET_SOURCE = env.str("MARKET_SOURCE", default="snapshot")
GAMMA_BASE_URL = env.str("GAMMA_BASE_URL", default="https://gamma-api.polymarket.com")
LLM_BASE_URL = env.str("LLM_BASE_URL", default="")
LLM_API_KEY = env.str("LLM_API_KEY", default="")
LLM_MODEL = env.str("LLM_MODEL", default="")

# --- django-q2 ------------------------------------------------------------------------------
# The longest cycle deadline the runner allows; django-q2's hard timeout sits above it so the
# cycle always stops itself first, and `retry` sits above the timeout so a task is never
# redelivered while it is still running.
RUNNER_MAX_TIMEOUT_SECONDS = 3600
# Each cycle task carries its own django-q2 timeout: the agent's timeout_seconds plus this margin,
# so a cycle that ignores its deadline is killed long before the cluster-wide ceiling.
RUNNER_HARD_TIMEOUT_MARGIN_SECONDS = env.int("RUNNER_HARD_TIMEOUT_MARGIN_SECONDS", default=60)
REDIS_URL = env.str("REDIS_URL", default="")
Q_CLUSTER = {
    "name": "agent-runner",
    "workers": env.int("Q_WORKERS", default=2),
    "timeout": RUNNER_MAX_TIMEOUT_SECONDS + RUNNER_HARD_TIMEOUT_MARGIN_SECONDS,
    "retry": RUNNER_MAX_TIMEOUT_SECONDS + RUNNER_HARD_TIMEOUT_MARGIN_SECONDS + 60,
    "max_attempts": 1,
    "ack_failures": True,
    "catch_up": False,
    "save_limit": 1000,
    # Each cluster takes at most one task ahead of its free workers, so a busy cluster does not
    # sit on due cycles (for `retry` seconds if it dies) while another cluster is idle.
    "queue_limit": 1,
    "label": "Task queue",
    "poll": 0.2,
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# --- Cache ------------------------------------------------------------------------------------
# Shared by every web process on every machine: the API throttle counts live here, so a
# per-process cache would let each gunicorn worker grant the full rate. Redis when REDIS_URL is
# set, otherwise a table in the default database (every `migrate` creates it: runner.apps).
RUNNER_CACHE_TABLE = "runner_cache"
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "agent-runner",
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": RUNNER_CACHE_TABLE,
            # Past this many rows a write deletes the expired ones, then a third of the rest; a
            # throttle count deleted early lets its user through again, so leave room.
            "OPTIONS": {"MAX_ENTRIES": 10_000},
        }
    }
# django-q2 writes each cluster's status to a cache every half second (for `qinfo`); keep that in
# the cluster's own memory, as before, rather than a database write twice a second per cluster.
CACHES["django_q"] = {
    "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
    "LOCATION": "django-q-cluster-status",
}
Q_CLUSTER["cache"] = "django_q"

# --- REST framework -------------------------------------------------------------------------
# Token first: its WWW-Authenticate header makes DRF answer 401 (not 403) to anonymous requests.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
# Throttle for control requests (start, stop, pause, resume, run-once, interval) per user,
# e.g. "120/min"; read on every request so it can be changed in tests and deployments alike.
RUNNER_API_CONTROL_RATE = env.str("RUNNER_API_CONTROL_RATE", default="120/min")
# The seed-compatible POST /api/agent/run-once waits this long at most for its cycle to finish,
# and runs the cycle in the web process itself when no worker has claimed it after the grace.
RUNNER_API_RUN_ONCE_WAIT_SECONDS = env.float("RUNNER_API_RUN_ONCE_WAIT_SECONDS", default=60.0)
RUNNER_API_RUN_ONCE_GRACE_SECONDS = env.float("RUNNER_API_RUN_ONCE_GRACE_SECONDS", default=2.0)
SPECTACULAR_SETTINGS = {
    "TITLE": "Agent Runner API",
    "DESCRIPTION": "Control, schedule and audit trading-research agents.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Nothing is anonymous, the schema and the docs included (the docs use the session login).
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # Separate request and response components, so read-only fields never appear in request bodies.
    "COMPONENT_SPLIT_REQUEST": True,
    # Two models have a `status` with different choices; name their schema enums apart.
    "ENUM_NAME_OVERRIDES": {
        "RunStatusEnum": "runner.models.RunStatus",
        "ForecastStatusEnum": "agents.models.Forecast.Status",
    },
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Health, metrics, alerts (runner.health, runner.metrics, runner.alerts) --------------------
# /healthz fails when no cluster heartbeat was seen for this long (the watchdog task beats every
# minute) or when a running agent's next run is this far in the past.
RUNNER_HEARTBEAT_MAX_AGE_SECONDS = env.int("RUNNER_HEARTBEAT_MAX_AGE_SECONDS", default=180)
RUNNER_OVERDUE_GRACE_SECONDS = env.int("RUNNER_OVERDUE_GRACE_SECONDS", default=300)
# /metrics answers clients in these networks, or any client with `Authorization: Bearer <token>`.
RUNNER_METRICS_ALLOWED_IPS = env.list(
    "RUNNER_METRICS_ALLOWED_IPS", default=["127.0.0.1/32", "::1/128"]
)
RUNNER_METRICS_TOKEN = env.str("RUNNER_METRICS_TOKEN", default="")
RUNNER_ALERT_EMAILS = env.list("RUNNER_ALERT_EMAILS", default=[])
RUNNER_ALERT_WEBHOOK_URL = env.str("RUNNER_ALERT_WEBHOOK_URL", default="")
RUNNER_ALERT_WEBHOOK_TIMEOUT = env.float("RUNNER_ALERT_WEBHOOK_TIMEOUT", default=5.0)
# Mail for alerts: e.g. EMAIL_URL=smtp+tls://user:password@smtp.example.com:587
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="agent-runner@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Logging ----------------------------------------------------------------------------------
# One line per event. LOG_FORMAT=json writes JSON objects; both formats carry the agent, run id
# and request id of the code that logged (runner.logs keeps them in context variables).
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be 'plain' or 'json', not {LOG_FORMAT!r}.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "runner.logs.ContextFilter"}},
    "formatters": {
        "plain": {
            "()": "runner.logs.PlainFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s "
            "[agent=%(agent)s run=%(run_id)s request=%(request_id)s] %(message)s",
        },
        "json": {"()": "runner.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["context"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}
