"""Probes for load balancers: no authentication, no session. And /favicon.ico."""

from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import redirect
from django.templatetags.static import static
from django.utils.cache import patch_cache_control

from audit import conf as audit_conf
from common import conf


def healthz(request):
    """Answer 200 while the process is up."""
    return JsonResponse({"status": "ok"})


def _database_answers() -> bool:
    # A kept connection the server dropped (restart, failover, idle timeout) fails once: reconnect
    # and ask again before calling a healthy database down.
    for _ in range(2):
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            return True
        except Exception:  # noqa: BLE001 - any failure means not ready
            connection.close()
    return False


def _audit_writable() -> bool:
    """Can this process write the audit log? Under KEYWARD_AUDIT_FAIL_CLOSED no request made
    with a key is served without its event: a worker that cannot insert events is not ready."""
    if connection.vendor != "postgresql":
        return True
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT has_table_privilege(current_user, 'audit_auditevent', 'INSERT') "
                "AND has_sequence_privilege(current_user, "
                "pg_get_serial_sequence('audit_auditevent', 'id'), 'USAGE')"
            )
            return bool(cursor.fetchone()[0])
    except Exception:  # noqa: BLE001 - any failure means not ready
        return False


def _cache_answers() -> bool:
    try:
        cache.set("keyward:readyz", 1, 5)
        return cache.get("keyward:readyz") == 1
    except Exception:  # noqa: BLE001 - any failure means the cache is not there
        return False


def readyz(request):
    """Answer 200 when the database and the cache answer and the audit log can be written,
    else 503 naming what failed.

    A cache that does not answer is only ``degraded`` (200) under KEYWARD_CACHE_FAILURE=open:
    the workers serve on with per-process limits, so a load balancer must not take them all out.
    """
    failed, degraded = [], []
    if not _database_answers():
        failed.append("database")
    elif not _audit_writable():
        (failed if audit_conf.settings.AUDIT_FAIL_CLOSED else degraded).append("audit")
    if not _cache_answers():
        (failed if conf.settings.CACHE_FAILURE == "closed" else degraded).append("cache")
    if failed:
        return JsonResponse({"status": "unavailable", "failed": failed}, status=503)
    if degraded:
        return JsonResponse({"status": "ok", "degraded": degraded})
    return JsonResponse({"status": "ok"})


def favicon(request):
    """Send /favicon.ico (asked for by browsers and tools that read no <link rel="icon">) to the
    static file, which whitenoise serves with its hashed name in production."""
    response = redirect(static("favicon.ico"))
    patch_cache_control(response, public=True, max_age=86400)
    return response
