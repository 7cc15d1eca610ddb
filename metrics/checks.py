"""System checks for the metrics settings, registered in ``MetricsConfig.ready()``."""

import ipaddress
from typing import Any

from django.conf import settings as django_settings
from django.core.checks import CheckMessage, Error

from metrics.conf import DEFAULTS

MIN_TOKEN_LENGTH = 32


def check_metrics_settings(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """Reject networks that do not parse and a token too short to resist guessing."""
    errors: list[CheckMessage] = []
    networks = getattr(
        django_settings, "KEYWARD_METRICS_ALLOWED_NETWORKS", DEFAULTS["METRICS_ALLOWED_NETWORKS"]
    )
    for network in networks if isinstance(networks, list | tuple) else [networks]:
        try:
            ipaddress.ip_network(network, strict=False)
        except (TypeError, ValueError):
            errors.append(
                Error(
                    f"KEYWARD_METRICS_ALLOWED_NETWORKS: {network!r} is not an address or network.",
                    hint="List CIDRs, e.g. 10.0.0.0/8,127.0.0.1/32.",
                    id="keyward.E040",
                )
            )
    token = getattr(django_settings, "KEYWARD_METRICS_TOKEN", "") or ""
    if not isinstance(token, str) or (token and len(token) < MIN_TOKEN_LENGTH):
        errors.append(
            Error(
                f"KEYWARD_METRICS_TOKEN must be at least {MIN_TOKEN_LENGTH} characters.",
                hint="Generate one: python -c 'import secrets; print(secrets.token_urlsafe(32))'.",
                id="keyward.E041",
            )
        )
    return errors
