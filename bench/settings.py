"""Django settings for the bench: Keyward's own settings plus the competitors' apps.

Production-like on purpose: DEBUG off (so ``check --deploy`` settings, manifest static files and
no query logging), the real middleware stack, the cache on Redis. Only what a benchmark on
127.0.0.1 needs differs: any host, no HTTPS redirect, rates high enough never to throttle.
"""

import os
import secrets
from pathlib import Path

import environ

_LOG_DIR = Path(__file__).resolve().parent / ".results"
_LOG_DIR.mkdir(exist_ok=True)

# Set before config.settings reads them, so the values derived from them (secure cookies, HSTS,
# static files storage) are those of production.
os.environ["DEBUG"] = "false"
os.environ["SECURE_SSL_REDIRECT"] = "false"
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/1")
# The bench sends thousands of requests a minute with one key: the rates must never bite.
os.environ.setdefault("KEYWARD_KEY_RATE", "100000000/min")
os.environ.setdefault("KEYWARD_FAILED_AUTH_RATE", "100000000/min")
os.environ.setdefault("KEYWARD_AUDIT_LOG_FILE", str(_LOG_DIR / "audit.jsonl"))

from config.settings import *  # noqa: E402, F403
from config.settings import BASE_DIR, INSTALLED_APPS, LOGGING, REST_FRAMEWORK  # noqa: E402

DEBUG = False
ALLOWED_HOSTS = ["*"]
SECURE_SSL_REDIRECT = False
ROOT_URLCONF = "bench.urls"
WSGI_APPLICATION = "bench.wsgi.application"

INSTALLED_APPS = [
    *INSTALLED_APPS,
    "rest_framework.authtoken",
    "knox",
    "rest_framework_api_key",
]

# Redis, whatever CACHE_URL a local .env may set: the throttle and the sessions must pay real round
# trips. Each run gets its own key prefix (run.py sets it; gunicorn's workers share it).
CACHES = {"default": environ.Env.cache_url_config(os.environ["REDIS_URL"])}
CACHES["default"]["KEY_PREFIX"] = os.environ.get("BENCH_CACHE_PREFIX", "keyward-bench")

# The product's logging, unchanged (each audit event is still formatted and written as one JSON
# line, 4xx responses still logged) but into git-ignored files rather than the terminal: audit
# events through the product's own KEYWARD_AUDIT_LOG_FILE, any stream handler into app.log.
LOGGING = {
    **LOGGING,
    "handlers": {
        name: {**handler, "class": "logging.FileHandler", "filename": str(_LOG_DIR / "app.log")}
        if handler.get("class") == "logging.StreamHandler"
        else handler
        for name, handler in LOGGING["handlers"].items()
    },
}

# Manifest static files (as in production) need collectstatic: run.py fills this git-ignored
# directory, so the bench never writes into the checkout's staticfiles/.
STATIC_ROOT = Path(BASE_DIR) / "bench" / ".results" / "staticfiles"

# DRF evaluates its DEFAULT_* classes when rest_framework.views is first imported, so a Keyward
# module that does not exist yet (or does not import: BENCH_DRF_FALLBACK=1, set by run.py) would
# break every row. Those entries fall back to DRF's defaults and the Keyward rows report
# "not available"; every probe view sets its own classes anyway.
_DRF_DEFAULTS = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_THROTTLE_CLASSES": [],
    "EXCEPTION_HANDLER": "rest_framework.views.exception_handler",
}


def _module_file_exists(dotted: str) -> bool:
    module = dotted.rsplit(".", 1)[0]
    return (Path(BASE_DIR) / (module.replace(".", "/") + ".py")).is_file()


BENCH_DRF_FALLBACK = []
REST_FRAMEWORK = dict(REST_FRAMEWORK)
for _name, _default in _DRF_DEFAULTS.items():
    _value = REST_FRAMEWORK.get(_name)
    _paths = [_value] if isinstance(_value, str) else list(_value or [])
    if os.environ.get("BENCH_DRF_FALLBACK") == "1" or not all(map(_module_file_exists, _paths)):
        REST_FRAMEWORK[_name] = _default
        BENCH_DRF_FALLBACK.append(_name)
