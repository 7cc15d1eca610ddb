"""The metrics app's settings, read lazily with their defaults in one place."""

from typing import Any

from common.conf import AppSettings

DEFAULTS: dict[str, Any] = {
    # Client addresses (CIDRs) that may scrape /metrics without a token: loopback only.
    "METRICS_ALLOWED_NETWORKS": ("127.0.0.1/32", "::1/128"),
    # A bearer token that lets any address scrape /metrics (from the environment); "" for none.
    "METRICS_TOKEN": "",
}

settings = AppSettings(DEFAULTS)
