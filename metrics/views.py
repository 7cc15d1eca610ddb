"""``/metrics``: the Prometheus exposition, for scrapers on the allowed networks or holding the
token (KEYWARD_METRICS_ALLOWED_NETWORKS, KEYWARD_METRICS_TOKEN); anyone else gets 403.

Under gunicorn with PROMETHEUS_MULTIPROC_DIR set, the figures are those of every worker,
summed from the directory; otherwise this process's. Either way with what is read at scrape
time (metrics/collectors.py).
"""

import hmac
import os

from django.http import HttpResponse, HttpResponseNotAllowed
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from common.request import context_of
from keys.networks import ip_allowed
from metrics import conf
from metrics.collectors import ScrapeTimeCollector

FORBIDDEN = "Metrics are served only to the configured networks or with the metrics token.\n"


def _from_allowed_network(ip: str | None) -> bool:
    configured = conf.settings.METRICS_ALLOWED_NETWORKS
    if isinstance(configured, str):
        configured = [configured]
    # An empty list allows every address to ip_allowed; here it allows none.
    return bool(configured) and ip_allowed(ip, list(configured))


def _holds_token(request) -> bool:
    expected = conf.settings.METRICS_TOKEN
    scheme, _, sent = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if not expected or scheme.lower() != "bearer":
        return False
    # SECURITY: a constant-time comparison; the token is never logged or echoed.
    return hmac.compare_digest(sent.strip().encode(), expected.encode())


class _Process:
    """This process's own metrics, for a registry of one scrape."""

    def collect(self):
        return REGISTRY.collect()


def registry() -> CollectorRegistry:
    """Return the registry one scrape reads: every worker's metrics (multiprocess mode) or this
    process's, and the scrape-time figures."""
    scrape = CollectorRegistry(auto_describe=False)
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        MultiProcessCollector(scrape, path=directory)
    else:
        scrape.register(_Process())
    scrape.register(ScrapeTimeCollector())
    return scrape


def metrics_view(request):
    """Serve the metrics to an allowed network or the token's holder; 403 to anyone else."""
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    if not (_from_allowed_network(context_of(request).ip) or _holds_token(request)):
        return HttpResponse(FORBIDDEN, status=403, content_type="text/plain; charset=utf-8")
    response = HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response
