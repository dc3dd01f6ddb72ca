"""Agent Runner settings: one module, every deployment choice read from the environment.

A local `.env` file (written by `make`, never committed; another file with DJANGO_ENV_FILE) is read
first, so a fresh checkout gets a random secret key without anyone editing this file. Variables
already in the environment win over the file.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from agents.conf import conf as agents_conf
from runner.conf import conf as runner_conf

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
    # Before django_q: runner's `qcluster` command (a cluster that takes a task only when one of
    # its workers is free, see runner/cluster.py) replaces django-q2's of the same name.
    "runner",
    "django_q",
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

# --- Runner and agents ------------------------------------------------------------------------
# Every RUNNER_* setting (and TRADING_MODE) is declared once, with its default and meaning, in
# runner/conf.py; the forecaster's (MARKET_SOURCE, GAMMA_BASE_URL, LLM_*, FORECASTER_*) in
# agents/conf.py. Here they are read from the environment where they may be.
RUNNER_SETTINGS = runner_conf.from_environment(env)
vars().update(RUNNER_SETTINGS)
vars().update(agents_conf.from_environment(env))

# --- django-q2 ------------------------------------------------------------------------------
# The cluster-wide timeout sits above the longest cycle deadline plus the hard-timeout margin, so
# a cycle always stops itself first; `retry` sits above the timeout so a task is never redelivered
# while it is still running. Each cycle task also carries its own, shorter, timeout.
_CYCLE_CEILING = (
    RUNNER_SETTINGS["RUNNER_MAX_TIMEOUT_SECONDS"]
    + RUNNER_SETTINGS["RUNNER_HARD_TIMEOUT_MARGIN_SECONDS"]
)
REDIS_URL = env.str("REDIS_URL", default="")
# `manage.py qcluster` takes a task from the broker only when one of its workers is free, so a
# busy cluster leaves due cycles to an idle one (runner/cluster.py); 0 runs django-q2's own pusher.
Q_CLUSTER = {
    "name": "agent-runner",
    "workers": env.int("Q_WORKERS", default=2),
    "timeout": _CYCLE_CEILING,
    "retry": _CYCLE_CEILING + 60,
    "max_attempts": 1,
    "ack_failures": True,
    "catch_up": False,
    "save_limit": 1000,
    # Our qcluster takes a task only when a worker is free (RUNNER_WORKER_GATE); the limit bounds
    # what django-q2's own pusher holds ahead when the gate is off.
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
    # DRF's handler, with Django's refusals of a request (body too large, ...) answered in JSON.
    "EXCEPTION_HANDLER": "runner.api.errors.exception_handler",
}
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

# --- Alerts by mail (the RUNNER_ALERT_* settings are in runner/conf.py) -------------------------
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
