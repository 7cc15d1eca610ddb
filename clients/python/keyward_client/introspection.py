"""Ask Keyward about a token (RFC 7662) with a service key holding ``tokens:introspect``; the
answer is kept a short while (never past the token's ``exp``), keyed by the token's SHA-256."""

import hashlib
import threading
import time

from keyward_client import _http

INACTIVE = {"active": False}
MAX_ENTRIES = 10_000

_cache: dict[bytes, tuple[float, dict]] = {}
_lock = threading.Lock()


def introspect(
    token: str,
    *,
    url: str,
    service_key: str,
    cache_seconds: float = 30,
    post=_http.post_form,
    clock=time.time,
) -> dict:
    """Return Keyward's answer about ``token`` (``{"active": false}`` when it cannot be
    reached: fail closed)."""
    digest = hashlib.sha256(token.encode()).digest()
    now = clock()
    cached = _cache.get(digest)
    if cached is not None and cached[0] > now:
        return cached[1]
    try:
        answer = post(url, {"token": token}, bearer=service_key)
    except (OSError, ValueError):
        return INACTIVE
    if answer.get("active") is not True:
        answer = INACTIVE
    until = now + cache_seconds
    if isinstance(answer.get("exp"), int):
        until = min(until, answer["exp"])
    with _lock:
        if len(_cache) >= MAX_ENTRIES:
            _cache.clear()
        _cache[digest] = (until, answer)
    return answer


def forget() -> None:
    """Drop every cached answer (tests, or after a known revocation)."""
    _cache.clear()
