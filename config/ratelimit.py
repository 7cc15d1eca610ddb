"""A fixed-window counter on the configured cache (Redis in production), for per-IP limits."""

import time

from django.core.cache import cache

_PERIODS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """Return (requests, seconds) for a rate such as ``"30/min"``; raise ValueError if malformed."""
    count, _, period = rate.partition("/")
    if not count.isdigit() or period not in _PERIODS or int(count) < 1:
        raise ValueError(f"Malformed rate {rate!r}: use e.g. 30/min, 5/s, 1000/hour.")
    return int(count), _PERIODS[period]


def count(scope: str, ident: str, rate: str, now: float | None = None) -> tuple[int, int, int]:
    """Count one hit; return (hits in this window, the limit, seconds until the window resets)."""
    limit, period = parse_rate(rate)
    now = time.time() if now is None else now
    window = int(now // period)
    key = f"rl:{scope}:{ident}:{window}"
    if cache.add(key, 1, timeout=period + 1):
        hits = 1
    else:
        try:
            hits = cache.incr(key)
        except ValueError:  # expired between add() and incr()
            cache.add(key, 1, timeout=period + 1)
            hits = 1
    return hits, limit, max(1, int((window + 1) * period - now) + 1)


def hit(scope: str, ident: str, rate: str, now: float | None = None) -> int | None:
    """Count one hit; return None if allowed, else the seconds until the window resets."""
    hits, limit, left = count(scope, ident, rate, now)
    return left if hits > limit else None
