"""Per-key request rate: a fixed-window counter on the default cache (Redis in production),
reserved by each process in small leases; and the per-address limit on failed authentications."""

import logging
import math
import threading
import time

from rest_framework.throttling import BaseThrottle

from common import ratelimit
from common.request import decide
from keys import conf
from keys.lookup import forget_marks
from keys.models import ApiKey

logger = logging.getLogger("keyward.api")

THROTTLE_REASON = "key_rate_limited"
FAILED_AUTH_SCOPE = "api-auth"
LEASE_SHARE = 100  # a process reserves 1/100 of a key's limit at a time…
MAX_LEASE = 100  # …and never more than this many requests


def tenant_rate(tenant) -> tuple[int, int]:
    """Return (requests, seconds) of ``tenant``'s ``key_rate``, else the installation default."""
    rate = tenant.key_rate or conf.settings.KEY_RATE
    try:
        return ratelimit.parse_rate(rate)
    except ValueError:
        logger.error("tenant %s has a malformed key_rate %r: using the default", tenant.pk, rate)
        return ratelimit.parse_rate(conf.settings.KEY_RATE)


def rate_at_most(rate: tuple[int, int], ceiling: tuple[int, int]) -> bool:
    """Return whether ``rate`` allows no more requests per second than ``ceiling``."""
    return rate[0] * ceiling[1] <= ceiling[0] * rate[1]


def rate_of(key: ApiKey) -> tuple[int, int]:
    """Return (requests, seconds) for ``key``: its own ``rate`` if set and no higher than its
    tenant's, else its tenant's ``key_rate``, else the default."""
    ceiling = tenant_rate(key.tenant)
    if key.rate:
        try:
            own = ratelimit.parse_rate(key.rate)
        except ValueError:
            logger.error("key %s has a malformed rate %r: using the tenant's", key.pk, key.rate)
            return ceiling
        # SECURITY: a tenant lowering its rate lowers every key's, whatever the key says.
        if rate_at_most(own, ceiling):
            return own
    return ceiling


def lease_size(limit: int) -> int:
    """Return how many requests of a key's window a process reserves at a time."""
    return min(MAX_LEASE, max(1, limit // LEASE_SHARE))


class _Leases:
    """The requests this process has reserved, per key, in the key's current window.

    A key's counter lives in the shared cache (Redis), one per window. A process reserves
    requests from it ``lease_size(limit)`` at a time (one INCRBY) and spends them locally, so a
    busy key costs one round trip per lease, not per request. The counter only grows by what was
    granted, and a grant never takes it past the limit: a key never gets more than its limit.
    It can get fewer: up to ``lease - 1`` requests per process stay unspent when the window
    ends (1% of the limit per process, at most 99). With a limit under 200 a window, the lease
    is 1, which is exact counting.
    """

    MAX_ENTRIES = 100_000

    def __init__(self) -> None:
        self.held: dict[int, list[int]] = {}  # key id -> [window, requests left, -1 exhausted]
        self._lock = threading.Lock()  # threaded workers: never spend one request twice

    def reset(self) -> None:
        with self._lock:
            self.held.clear()

    def take(self, key_id: int, limit: int, period: int, window: int) -> bool:
        with self._lock:
            held = self.held.get(key_id)
            if held is not None and held[0] == window:
                if held[1] > 0:
                    held[1] -= 1
                    return True
                if held[1] < 0:  # every request of this window is granted, here or elsewhere
                    return False
        lease = lease_size(limit)  # the round trip, outside the lock
        total = ratelimit.incr_window(f"rl:key:{key_id}:{window}", period + 1, lease)
        granted = min(lease, limit - (total - lease))
        with self._lock:
            if len(self.held) > self.MAX_ENTRIES:
                self.held.clear()
            held = self.held.get(key_id)
            current = held is not None and held[0] == window and held[1] > 0
            if granted <= 0:
                if not current:
                    self.held[key_id] = [window, -1]
                return False
            if current:  # another thread reserved meanwhile: keep both leases
                held[1] += granted - 1
            else:
                self.held[key_id] = [window, granted - 1]
            return True


_leases = _Leases()


class _FailureBlock:
    """Addresses refused for their failed authentications, as this process knows them.

    Failures are counted in the shared cache (Redis), so every process sees the same count; the
    process that sees an address go over the limit blocks it here until the window ends. Another
    process blocks it at its first failure from that address after that: an attacker gains at
    most one extra guess per worker and window, and a valid request pays no round trip for it.
    """

    MAX_ENTRIES = 100_000

    def __init__(self) -> None:
        self.blocked: dict[str, float] = {}

    def count(self, ip: str | None) -> int | None:
        """Count a failure from ``ip``; return the seconds it is now refused for, if it is."""
        hits, limit, left = ratelimit.count(
            FAILED_AUTH_SCOPE, ip or "unknown", conf.settings.FAILED_AUTH_RATE
        )
        if hits < limit:
            return None
        # The limit is used up: refuse this address until the window ends.
        if len(self.blocked) > self.MAX_ENTRIES:
            self.blocked.clear()
        self.blocked[ip or "unknown"] = time.monotonic() + left
        return left

    def blocked_for(self, ip: str | None) -> int | None:
        """Return the seconds ``ip`` is still refused for after too many failures, if it is."""
        until = self.blocked.get(ip or "unknown")
        if until is None:
            return None
        wait = until - time.monotonic()
        if wait <= 0:
            self.blocked.pop(ip or "unknown", None)
            return None
        return math.ceil(wait)


failures = _FailureBlock()


def reset_process_state() -> None:
    """Forget this process's reserved requests, blocked addresses and last-use marks (tests
    clear the shared cache too)."""
    _leases.reset()
    failures.blocked.clear()
    forget_marks()


class KeyRateThrottle(BaseThrottle):
    """Limit each key to its rate; requests without a key are not counted here."""

    timer = time.time

    def __init__(self):
        self._wait: float | None = None

    def allow_request(self, request, view) -> bool:
        key = request.auth
        # A JWT minted from a key (federation) counts against that key's rate.
        if not isinstance(key, ApiKey) and not getattr(key, "throttled_as_key", False):
            return True
        limit, period = rate_of(key)
        now = self.timer()
        window = int(now // period)
        if _leases.take(key.pk, limit, period, window):
            return True
        self._wait = max(1, math.ceil((window + 1) * period - now))
        decide(request, reason=THROTTLE_REASON, key=key)
        return False

    def wait(self) -> float | None:
        return self._wait
