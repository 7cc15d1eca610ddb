"""Keyward settings: one module; environments differ only through environment variables."""

import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    env.read_env(BASE_DIR / ".env")

# --- Core -----------------------------------------------------------------------------------
DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env("SECRET_KEY")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "config.apps.KeywardAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_otp",
    "django_otp_webauthn",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "accounts",
    "audit",
    "keys",
    "federation",
    "api",
    "metrics",
    "django_tasks_db",
    "webhooks",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    # Outside every middleware that may answer on its own (SessionLifetimeMiddleware redirects),
    # so that every response is DENY-framed.
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "common.request.RequestContextMiddleware",
    # A declared body over DATA_UPLOAD_MAX_MEMORY_SIZE is a 413 before any view reads it.
    "common.middleware.BodySizeMiddleware",
    # Answers a malformed API credential for the view (process_view): after the request id and
    # the security headers, before CSRF.
    "api.middleware.KeyAuditMiddleware",
    # Outside SessionMiddleware: every page that read the session is no-store.
    "common.middleware.PrivatePagesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "accounts.middleware.SessionLifetimeMiddleware",
    # Innermost: a view's CacheUnavailable (KEYWARD_CACHE_FAILURE=closed) becomes a 503.
    "common.middleware.CacheUnavailableMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.tenants",
            ],
        },
    },
]

# --- Data -----------------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
# Off by default, as in Django: a check is one more round trip before every request. The API's
# key lookup reconnects and retries once when it finds its kept connection dead.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("CONN_HEALTH_CHECKS", default=False)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # psycopg prepares only statements run through a server-side-binding cursor, and only the
    # API's key lookup and the audit writer's INSERT use one (config/db.py): planning the lookup's
    # five-table join cost more than running it. Behind a transaction-mode pooler that cannot
    # keep prepared statements (PgBouncer before 1.21, or without max_prepared_statements), set
    # this to false.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "prepare_threshold", 1 if env.bool("KEYWARD_DB_PREPARED_STATEMENTS", default=True) else None
    )
if DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
    # Concurrent test runs on one server (CI, several checkouts) each get their own database.
    DATABASES["default"]["TEST"] = {
        "NAME": env.str("KEYWARD_TEST_DB_NAME", default=f"test_keyward_{os.getpid()}")
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

_cache_url = env.str("CACHE_URL", default="") or env.str("REDIS_URL", default="")
CACHES = {
    "default": env.cache_url_config(_cache_url)
    if _cache_url
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "keyward"}
}
if CACHES["default"]["BACKEND"].endswith("RedisCache"):
    # A Redis that is down or hung costs a request at most this long (KEYWARD_CACHE_FAILURE
    # says what happens then), never the OS's connect timeout.
    _cache_timeout = env.float("KEYWARD_CACHE_TIMEOUT", default=0.25)
    CACHES["default"].setdefault("OPTIONS", {}).update(
        {"socket_connect_timeout": _cache_timeout, "socket_timeout": _cache_timeout}
    )

# --- Authentication -------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "accounts:home"
LOGOUT_REDIRECT_URL = "accounts:login"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
PASSWORD_RESET_TIMEOUT = 60 * 60 * 24

OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="Keyward")
OTP_TOTP_THROTTLE_FACTOR = 1
# Passkeys (django-otp-webauthn): a second factor after the password, never passwordless.
# The relying party ID is KEYWARD_BASE_URL's host (or the request's own, accounts/passkeys.py);
# origins are the request's own plus these (the library's system check wants at least one).
OTP_WEBAUTHN_ALLOW_PASSWORDLESS_LOGIN = False
OTP_WEBAUTHN_HELPER_CLASS = "accounts.passkeys.KeywardWebAuthnHelper"
OTP_WEBAUTHN_RP_ID_CALLABLE = "accounts.passkeys.rp_id"
OTP_WEBAUTHN_RP_NAME_CALLABLE = "accounts.passkeys.rp_name"
_base_url = urlsplit(env.str("KEYWARD_BASE_URL", default="http://localhost:8000"))
OTP_WEBAUTHN_ALLOWED_ORIGINS = env.list(
    "KEYWARD_WEBAUTHN_ORIGINS", default=[f"{_base_url.scheme}://{_base_url.netloc}"]
)

# --- Sessions and cookies -------------------------------------------------------------------
# The database store, with only a digest of each session key at rest (common/sessions.py).
SESSION_ENGINE = "common.sessions"
SESSION_COOKIE_AGE = int(timedelta(hours=12).total_seconds())
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_HTTPONLY = True


# --- Security headers -----------------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = 0 if DEBUG else env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
if env.bool("BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

# --- Static files ---------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# --- E-mail ---------------------------------------------------------------------------------
_email = env.email_url("EMAIL_URL", default="consolemail://")
MAILERS = {
    "default": {
        "BACKEND": _email["EMAIL_BACKEND"],
        "OPTIONS": {
            k: v
            for k, v in {
                "host": _email.get("EMAIL_HOST"),
                "port": _email.get("EMAIL_PORT"),
                "username": _email.get("EMAIL_HOST_USER"),
                "password": _email.get("EMAIL_HOST_PASSWORD"),
                "use_tls": _email.get("EMAIL_USE_TLS"),
                "use_ssl": _email.get("EMAIL_USE_SSL"),
            }.items()
            if v
        },
    }
}
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="keyward@localhost")

# --- Background tasks ------------------------------------------------------------------------
# E-mails and webhook deliveries run as tasks (django.tasks), enqueued when their transaction
# commits. "database" (django-tasks-db): a task is a row that `manage.py db_worker` processes
# claim with SELECT ... FOR UPDATE SKIP LOCKED, as many workers on as many hosts as needed.
# "immediate": each task runs in the process that enqueues it, with no worker (make run, tests).
_TASK_BACKENDS = {
    "database": "django_tasks_db.DatabaseBackend",
    "immediate": "django.tasks.backends.immediate.ImmediateBackend",
}
TASKS = {
    "default": {
        "BACKEND": _TASK_BACKENDS[
            env.str("KEYWARD_TASKS_BACKEND", default="immediate" if DEBUG else "database")
        ]
    }
}

# --- I18N -----------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- API ------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "federation.authentication.KeywardJWTAuthentication",  # a Keyward JWT, with no query
        "keys.authentication.BearerKeyAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["keys.permissions.HasScope"],
    "DEFAULT_THROTTLE_CLASSES": ["keys.throttling.KeyRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["api.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "api.errors.api_exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Keyward API",
    "DESCRIPTION": "API v1 for bots and services. Authenticate with `Authorization: Bearer <key>`.",
    "VERSION": "1.0.0",
    # 3.1: a bearer scheme's security requirement may list what it needs (here: the scopes).
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_AUTHENTICATION": [],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- Keyward --------------------------------------------------------------------------------
# Each KEYWARD_* setting is taken from the environment only where it is set there. Its default
# lives once, with what it means, in its app's conf.py (accounts, keys, audit, common), read when
# used; the README lists them all.
_KEYWARD_ENVIRONMENT = {
    # accounts/conf.py
    "KEYWARD_AUTH_MAIL": env.str,
    "KEYWARD_BASE_URL": env.str,
    "KEYWARD_FIELD_ENCRYPTION_KEY": env.str,
    "KEYWARD_LOCK_AFTER_FAILURES": env.int,
    "KEYWARD_LOGIN_IP_RATE": env.str,
    "KEYWARD_PASSWORD_RESET_IP_RATE": env.str,
    "KEYWARD_PASSWORD_RESET_ACCOUNT_RATE": env.str,
    "KEYWARD_SESSION_IDLE_TIMEOUT": env.int,
    "KEYWARD_SUDO_SECONDS": env.int,
    # keys/conf.py
    "KEYWARD_TOKEN_PREFIX": env.str,
    "KEYWARD_KEY_RATE": env.str,
    "KEYWARD_FAILED_AUTH_RATE": env.str,
    "KEYWARD_USAGE_ROLLUP_DELAY": env.int,
    "KEYWARD_LEAK_REPORT_PUBLIC_KEYS": env.json,
    "KEYWARD_LEAK_REPORT_GITHUB_KEYS": env.str,
    "KEYWARD_CREDENTIALS_REVOKE_RATE": env.str,
    # audit/conf.py
    "KEYWARD_AUDIT_FAIL_CLOSED": env.bool,
    "KEYWARD_AUDIT_SYNCHRONOUS_COMMIT": env.str,
    "KEYWARD_AUDIT_FLUSH_MS": env.int,
    "KEYWARD_AUDIT_BATCH": env.int,
    "KEYWARD_AUDIT_SIGNING_KEY": env.str,
    "KEYWARD_AUDIT_VERIFY_KEYS": env.list,
    "KEYWARD_AUDIT_UNSIGNED_UNTIL": env.str,
    # common/conf.py
    "KEYWARD_TRUSTED_PROXIES": env.list,
    "KEYWARD_CACHE_FAILURE": env.str,
    # federation/conf.py
    "KEYWARD_JWT_ISSUER": env.str,
    # webhooks/conf.py
    "KEYWARD_WEBHOOKS_TIMEOUT": env.int,
    "KEYWARD_WEBHOOKS_RETRY_HOURS": env.int,
    "KEYWARD_WEBHOOKS_SECRET_OVERLAP_HOURS": env.int,
    "KEYWARD_WEBHOOKS_ALLOW_HTTP": env.bool,
    # metrics/conf.py
    "KEYWARD_METRICS_ALLOWED_NETWORKS": env.list,
    "KEYWARD_METRICS_TOKEN": env.str,
}
for _name, _read in _KEYWARD_ENVIRONMENT.items():
    if _name in os.environ:
        globals()[_name] = _read(_name)
KEYWARD_SESSION_MAX_AGE = SESSION_COOKIE_AGE  # a portal session never outlives its cookie

# --- Logging --------------------------------------------------------------------------------
# Audit events are streamed as one JSON line each on "keyward.audit": to standard error with the
# other logs, or alone (bare JSON lines) to KEYWARD_AUDIT_LOG_FILE for a log shipper.
_audit_file = env.str("KEYWARD_AUDIT_LOG_FILE", default="")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "client_errors_without_traceback": {"()": "common.logs.ClientErrorsWithoutTraceback"}
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "bare": {"format": "%(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
        "audit": {
            "class": "logging.handlers.WatchedFileHandler",
            "filename": _audit_file,
            "formatter": "bare",
        }
        if _audit_file
        else {"class": "logging.StreamHandler", "formatter": "plain"},
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "keyward.audit": {"handlers": ["audit"], "level": "INFO", "propagate": False},
        # Django's own "django" logger keeps the console handler of its DEFAULT_LOGGING (under
        # DEBUG) besides the root's: every request log line was printed twice.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.request": {"filters": ["client_errors_without_traceback"]},
    },
}
