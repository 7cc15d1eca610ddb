"""A fixed-window counter on the configured cache (Redis in production), for per-IP limits."""

import time

from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache

_PERIODS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """Return (requests, seconds) for a rate such as ``"30/min"``; raise ValueError if malformed."""
    count, _, period = rate.partition("/")
    if not count.isdigit() or period not in _PERIODS or int(count) < 1:
        raise ValueError(f"Malformed rate {rate!r}: use e.g. 30/min, 5/s, 1000/hour.")
    return int(count), _PERIODS[period]


# INCRBY, and give a new counter its expiry: one command, one round trip. Integers are stored
# raw, so cache.get() reads the same value.
_INCR_WINDOW = (
    "local n = redis.call('INCRBY', KEYS[1], ARGV[2]) "
    "if n == tonumber(ARGV[2]) then redis.call('EXPIRE', KEYS[1], ARGV[1]) end "
    "return n"
)
_scripts: dict[int, object] = {}


def _redis_script(backend, full_key: str):
    # Django builds a new client object (and redis-py its callback table) on every cache call;
    # on the API's hot path that cost more than the round trip. Keep one per cache backend
    # (Django's cache backends are per thread; redis-py's pool survives forks).
    script = _scripts.get(id(backend))
    if script is None:
        client = backend._cache.get_client(full_key, write=True)
        script = _scripts[id(backend)] = client.register_script(_INCR_WINDOW)
    return script


def incr_window(cache_key: str, timeout: int, amount: int = 1) -> int:
    """Add ``amount`` to a window counter and return it: one round trip on Redis."""
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        full_key = backend.make_and_validate_key(cache_key)
        return int(_redis_script(backend, full_key)(keys=[full_key], args=[timeout, amount]))
    try:
        return cache.incr(cache_key, amount)
    except ValueError:  # first hit of the window (or the counter just expired)
        if cache.add(cache_key, amount, timeout):
            return amount
        return cache.incr(cache_key, amount)


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
