"""Fixed-window counters on the shared cache (Redis in production), for rate limits; and what
happens when that cache cannot be reached (KEYWARD_CACHE_FAILURE)."""

import logging
import threading
import time
from collections.abc import Callable

from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError

from common import conf

logger = logging.getLogger("keyward.cache")

# What a cache that is down, refuses connections or never answers raises (redis-py wraps socket
# errors, but a connection pool can still let an OSError through).
CACHE_ERRORS = (RedisError, OSError)
DEGRADED = "shared cache unreachable: rate limits are per process until it answers again"
LOG_INTERVAL = 60  # seconds between two log lines about a degraded cache, per process


class CacheUnavailable(Exception):
    """The shared cache cannot be reached and KEYWARD_CACHE_FAILURE is "closed": answer 503."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("The shared cache is unavailable.")
        self.retry_after = retry_after


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


class _Fallback:
    """This process's stand-in for a shared cache that failed: when it failed, and counters of
    its own (each process then limits on its own: N workers allow up to N times a limit)."""

    MAX_ENTRIES = 100_000

    def __init__(self) -> None:
        self.down_until = 0.0
        self.logged_at = -LOG_INTERVAL
        self.counters: dict[str, tuple[float, int]] = {}  # key -> (expires at, value)
        self.lock = threading.Lock()

    def add(self, key: str, amount: int, timeout: int) -> int:
        """Add ``amount`` to a counter that lives ``timeout`` seconds; return its value."""
        now = time.monotonic()
        with self.lock:
            if len(self.counters) > self.MAX_ENTRIES:
                self.counters.clear()
            expires, value = self.counters.get(key, (0.0, 0))
            if expires <= now:
                expires, value = now + timeout, 0
            self.counters[key] = (expires, value + amount)
            return value + amount

    def reset(self) -> None:
        with self.lock:
            self.down_until, self.logged_at = 0.0, -LOG_INTERVAL
            self.counters.clear()


_fallback = _Fallback()
reset_fallback = _fallback.reset


def shared(operation: Callable, fallback: Callable):
    """Return ``operation()`` on the shared cache; if the cache fails, apply
    KEYWARD_CACHE_FAILURE: ``fallback()`` (open) or raise CacheUnavailable (closed). A process
    that saw the cache fail stops asking it for KEYWARD_CACHE_RETRY_SECONDS."""
    if time.monotonic() >= _fallback.down_until:
        try:
            return operation()
        except CACHE_ERRORS:
            _fallback.down_until = time.monotonic() + conf.settings.CACHE_RETRY_SECONDS
    if conf.settings.CACHE_FAILURE == "closed":
        raise CacheUnavailable(conf.settings.CACHE_RETRY_SECONDS)
    now = time.monotonic()
    if now - _fallback.logged_at >= LOG_INTERVAL:
        _fallback.logged_at = now
        logger.error(DEGRADED)
    return fallback()


def add(cache_key: str, timeout: int) -> bool:
    """Set ``cache_key`` for ``timeout`` seconds unless it is set; return whether it was not."""
    return shared(
        lambda: cache.add(cache_key, 1, timeout),
        lambda: _fallback.add(cache_key, 1, timeout) == 1,
    )


def incr_window(cache_key: str, timeout: int, amount: int = 1) -> int:
    """Add ``amount`` to a window counter and return it: one round trip on Redis."""
    return shared(
        lambda: _incr_shared(cache_key, timeout, amount),
        lambda: _fallback.add(cache_key, amount, timeout),
    )


def _incr_shared(cache_key: str, timeout: int, amount: int) -> int:
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


def count(
    scope: str, ident: str, rate: str, now: float | None = None, *, amount: int = 1
) -> tuple[int, int, int]:
    """Count ``amount`` hits (one; none only reads the window); return (hits in this window, the
    limit, seconds until the window resets)."""
    limit, period = parse_rate(rate)
    now = time.time() if now is None else now
    window = int(now // period)
    hits = incr_window(f"rl:{scope}:{ident}:{window}", period + 1, amount)
    return hits, limit, max(1, int((window + 1) * period - now) + 1)


def hit(scope: str, ident: str, rate: str, now: float | None = None) -> int | None:
    """Count one hit; return None if allowed, else the seconds until the window resets."""
    hits, limit, left = count(scope, ident, rate, now)
    return left if hits > limit else None
