"""Peak memory of the portal's CSV export, in a process of its own: ``python -m bench.memprobe
<tenant slug>`` prints one JSON line.

The export is warmed up on a few rows (imports, templates, connections), then the process's peak
RSS is reset (``/proc/self/clear_refs``) and the whole export is streamed through Django's test
client (full middleware) and discarded chunk by chunk, as a server would write it to a socket.
Growth = peak RSS during the export − RSS just before it.
"""

import json
import os
import resource
import sys
import time
from datetime import timedelta
from pathlib import Path


def _status_kib(field: str) -> int | None:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return None


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (Linux >= 4.0)
    except OSError:
        return False
    return True


def main(slug: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()
    from django.utils import timezone

    from accounts.models import Tenant
    from bench import seeding

    tenant = Tenant.objects.get(slug=slug)
    client = seeding.portal_client(_owner(tenant))
    url = f"/t/{slug}/audit/export.csv"
    since = (timezone.now() - timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M")
    _consume(client.get(url, {"since": since}))  # warm-up: a few recent rows
    reset = _reset_peak()
    rss_before = _status_kib("VmRSS")
    maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    response = client.get(url)
    rows, size = _consume(response)
    seconds = time.perf_counter() - started
    peak = _status_kib("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "status": response.status_code,
                "rows": rows,
                "bytes": size,
                "seconds": seconds,
                "rss_before_mib": rss_before / 1024,
                "peak_rss_mib": peak / 1024,
                "growth_mib": (peak - rss_before) / 1024,
                "peak_method": "VmHWM after clear_refs" if reset else "ru_maxrss",
                "maxrss_before_mib": maxrss_before / 1024,
            }
        )
    )


def _owner(tenant):
    from accounts.models import Membership

    return Membership.objects.filter(tenant=tenant, role="owner").select_related("user")[0].user


def _consume(response) -> tuple[int, int]:
    rows = size = 0
    for chunk in response.streaming_content:
        size += len(chunk)
        rows += chunk.count(b"\n")
    response.close()
    return rows - 1, size  # minus the header line


if __name__ == "__main__":
    main(sys.argv[1])
