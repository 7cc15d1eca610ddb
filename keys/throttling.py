"""Per-key request rate: a fixed-window counter on the default cache (Redis in production)."""

import logging
import math
import time

from django.conf import settings
from rest_framework.throttling import BaseThrottle

from config import ratelimit
from keys.models import ApiKey

logger = logging.getLogger("keyward.api")

THROTTLE_REASON = "key_rate_limited"


def rate_of(key: ApiKey) -> tuple[int, int]:
    """Return (requests, seconds) for ``key``: its tenant's ``key_rate``, else the default."""
    rate = key.tenant.key_rate or settings.KEYWARD_KEY_RATE
    try:
        return ratelimit.parse_rate(rate)
    except ValueError:
        logger.error(
            "tenant %s has a malformed key_rate %r: using the default", key.tenant_id, rate
        )
        return ratelimit.parse_rate(settings.KEYWARD_KEY_RATE)


class KeyRateThrottle(BaseThrottle):
    """Limit each key to its rate; requests without a key are not counted here."""

    timer = time.time

    def __init__(self):
        self._wait: float | None = None

    def allow_request(self, request, view) -> bool:
        key = request.auth
        if not isinstance(key, ApiKey):
            return True
        limit, period = rate_of(key)
        now = self.timer()
        window = int(now // period)
        if ratelimit.incr_window(f"rl:key:{key.pk}:{window}", period + 1) <= limit:
            return True
        self._wait = max(1, math.ceil((window + 1) * period - now))
        request._keyward_denial = {"reason": THROTTLE_REASON, "key": key, "record": True}
        return False

    def wait(self) -> float | None:
        return self._wait
