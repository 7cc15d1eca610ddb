"""A fixed-window counter on the configured cache (Redis in production), for per-IP limits."""

import time

from django.core.cache import cache
from django.core.cache.backends.redis import RedisCache

_PERIODS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """Return (requests, seconds) for a rate such as ``"30/min"``; raise ValueError if malformed."""
    count, _, period = rate.partition("/")
    if not count.isdigit() or period not in _PERIODS or int(count) < 1:
        raise ValueError(f"Malformed rate {rate!r}: use e.g. 30/min, 5/s, 1000/hour.")
    return int(count), _PERIODS[period]


def incr_window(cache_key: str, timeout: int) -> int:
    """Add one to a window counter and return it: one round trip on Redis."""
    if isinstance(cache, RedisCache):
        # Django's RedisCache.incr() costs EXISTS + INCR (and add() one more); one pipelined
        # INCR + EXPIRE is a single round trip and creates the counter when missing. Integers
        # are stored raw, so cache.get() reads the same value.
        full_key = cache.make_and_validate_key(cache_key)
        pipe = cache._cache.get_client(full_key, write=True).pipeline()
        pipe.incr(full_key)
        pipe.expire(full_key, timeout)
        hits, _ = pipe.execute()
        return int(hits)
    try:
        return cache.incr(cache_key)
    except ValueError:  # first hit of the window (or the counter just expired)
        if cache.add(cache_key, 1, timeout):
            return 1
        return cache.incr(cache_key)


def count(scope: str, ident: str, rate: str, now: float | None = None) -> tuple[int, int, int]:
    """Count one hit; return (hits in this window, the limit, seconds until the window resets)."""
    limit, period = parse_rate(rate)
    now = time.time() if now is None else now
    window = int(now // period)
    hits = incr_window(f"rl:{scope}:{ident}:{window}", period + 1)
    return hits, limit, max(1, int((window + 1) * period - now) + 1)


def hit(scope: str, ident: str, rate: str, now: float | None = None) -> int | None:
    """Count one hit; return None if allowed, else the seconds until the window resets."""
    hits, limit, left = count(scope, ident, rate, now)
    return left if hits > limit else None
