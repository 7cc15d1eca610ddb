"""Probes for load balancers: no authentication, no session."""

from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse


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


def readyz(request):
    """Answer 200 when the database and the cache answer, else 503 naming what failed."""
    failed = []
    if not _database_answers():
        failed.append("database")
    try:
        cache.set("keyward:readyz", 1, 5)
        if cache.get("keyward:readyz") != 1:
            failed.append("cache")
    except Exception:  # noqa: BLE001
        failed.append("cache")
    if failed:
        return JsonResponse({"status": "unavailable", "failed": failed}, status=503)
    return JsonResponse({"status": "ok"})
