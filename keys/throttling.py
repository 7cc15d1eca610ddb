"""Per-key request rate: a fixed-window counter on the default cache (Redis in production)."""

import logging
import math
import time

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.throttling import BaseThrottle

from config import ratelimit
from keys.models import ApiKey

logger = logging.getLogger("keyward.api")

THROTTLE_REASON = "key_rate_limited"


def _count(cache_key: str, timeout: int) -> int:
    """Add one to a window counter and return it: one cache round trip in the steady state."""
    cache = caches["default"]
    if isinstance(cache, RedisCache):
        # Django's RedisCache.incr() costs EXISTS + INCR; one pipelined INCR + EXPIRE is a single
        # round trip and creates the counter when missing. Integers are stored raw, so
        # cache.get() reads the same value.
        full_key = cache.make_and_validate_key(cache_key)
        client = cache._cache.get_client(full_key, write=True)
        pipe = client.pipeline()
        pipe.incr(full_key)
        pipe.expire(full_key, timeout)
        count, _ = pipe.execute()
        return int(count)
    try:
        return cache.incr(cache_key)
    except ValueError:  # first hit of the window (or the counter just expired)
        if cache.add(cache_key, 1, timeout):
            return 1
        return cache.incr(cache_key)


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
        if _count(f"rl:key:{key.pk}:{window}", period + 1) <= limit:
            return True
        self._wait = max(1, math.ceil((window + 1) * period - now))
        request._keyward_denial = {"reason": THROTTLE_REASON, "key": key, "record": True}
        return False

    def wait(self) -> float | None:
        return self._wait
