"""Which JWTs are revoked before they expire, as Keyward's own API reads it with no query.

Redis holds one sorted set: ``j:<jti>`` for a token revoked by ``jti`` (RFC 7009) and
``k:<key id>`` for a key revoked since its JWTs were minted, each scored with the time after
which no token it names can be valid (the token's ``exp``; for a key, now plus the longest
token lifetime). Each process keeps a copy, read again at most every
KEYWARD_JWT_REVOCATION_REFRESH seconds (default 5): that is the bound within which a JWT
revoked through another process is refused. A revocation made in this process is in its copy at
once. If the copy cannot be refreshed for KEYWARD_JWT_REVOCATION_MAX_STALE seconds (Redis
unreachable), every JWT is refused until it can (fail-closed).

The database (``RevokedToken``, ``ApiKey.revoked_at``) stays the source of truth: introspection
reads it, so it answers ``active: false`` at once.

Without Redis (a development cache) the set lives in the Django cache instead: good for one
process only.
"""

import logging
import threading
import time

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache

from federation import conf

logger = logging.getLogger("keyward.federation")

SET_NAME = "federation:revoked"
PRUNE_INTERVAL = 60.0  # seconds between two removals of expired members (per process)


def _backend():
    return caches["default"]


def _redis():
    backend = _backend()
    if not isinstance(backend, RedisCache):
        return None, None
    name = backend.make_key(SET_NAME)
    return backend._cache.get_client(name, write=True), name


def _read_all(now: float) -> frozenset[str]:
    client, name = _redis()
    if client is None:
        entries = _backend().get(SET_NAME) or {}
        return frozenset(m for m, until in entries.items() if until > now)
    if now - _copy.pruned_at > PRUNE_INTERVAL:
        client.zremrangebyscore(name, "-inf", now)
        _copy.pruned_at = now
    return frozenset(m.decode() for m in client.zrangebyscore(name, now, "+inf"))


def _add(member: str, until: float) -> None:
    client, name = _redis()
    if client is None:
        backend = _backend()
        entries = backend.get(SET_NAME) or {}
        entries[member] = max(until, entries.get(member, 0))
        backend.set(SET_NAME, entries, None)
        return
    client.zadd(name, {member: until}, gt=True)


class _Copy:
    """This process's copy of the revoked set, with when it was last read."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.forget()

    def forget(self) -> None:
        self.members: frozenset[str] = frozenset()
        self.local: set[str] = set()  # revoked in this process since the last read
        self.read_at = float("-inf")  # time.monotonic() of the last attempt
        self.ok_at = float("-inf")  # time.monotonic() of the last successful read
        self.pruned_at = float("-inf")


_copy = _Copy()


def forget() -> None:
    """Drop this process's copy (tests)."""
    _copy.forget()


def refresh(*, force: bool = False) -> bool:
    """Re-read the set if the copy is older than the refresh interval; return whether the copy
    is fresh enough to be trusted (read within KEYWARD_JWT_REVOCATION_MAX_STALE seconds)."""
    mono = time.monotonic()
    if force or mono - _copy.read_at >= conf.settings.JWT_REVOCATION_REFRESH:
        with _copy.lock:
            if force or mono - _copy.read_at >= conf.settings.JWT_REVOCATION_REFRESH:
                _copy.read_at = mono
                try:
                    members = _read_all(time.time())
                except Exception:  # noqa: BLE001 - any cache failure: keep the copy, go stale
                    logger.warning("federation: cannot read the revoked JWTs", exc_info=True)
                else:
                    _copy.members, _copy.local, _copy.ok_at = members, set(), mono
    return mono - _copy.ok_at <= conf.settings.JWT_REVOCATION_MAX_STALE


def is_revoked(jti: str, key_id) -> bool | None:
    """Return whether the token ``jti`` (minted from key ``key_id``) is revoked; None when this
    process cannot tell (its copy is too old): the caller refuses the token."""
    if not refresh():
        return None
    names = (f"j:{jti}", f"k:{key_id}") if key_id is not None else (f"j:{jti}",)
    return any(n in _copy.members or n in _copy.local for n in names)


def revoke_jti(jti: str, until: float) -> None:
    """Add a token to the set until ``until`` (its exp, a UNIX time); in this process at once."""
    _add(f"j:{jti}", until)
    _copy.local.add(f"j:{jti}")


def revoke_key(key_id: int) -> None:
    """Refuse every JWT minted from key ``key_id`` from now on (until the longest lifetime)."""
    until = time.time() + conf.settings.JWT_MAX_LIFETIME_MINUTES * 60 + 60
    _add(f"k:{key_id}", until)
    _copy.local.add(f"k:{key_id}")
