"""Bounded events for floods: refusals without a usable key, and a key's 429s, counted per
subject and minute and recorded as one event each (``api.refused``, ``api.throttled``).

Counting costs no query: each worker process keeps the counts of the current minute in memory
and writes one event per subject and minute once that minute has passed, after its next request
served with a key, or when it exits. So a flood of 10,000 refusals from one address is one event
per worker process and minute, with the count, the reasons and the statuses; a worker killed hard
(SIGKILL) loses its counts of the last minute (they are refusals: nothing was served).
"""

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.db import DatabaseError

from audit.actions import Outcome
from common.request import RequestContext

logger = logging.getLogger("keyward.audit.summaries")

MAX_SUBJECTS = 10_000  # subjects counted per minute; beyond, one "others" subject takes the rest
MAX_PATHS = 5  # paths named per summary, the most frequent first


@dataclass
class _Count:
    action: str
    ip: str | None
    key: object = None  # the ApiKey, for api.throttled and refusals of a known key
    count: int = 0
    reasons: Counter = field(default_factory=Counter)
    statuses: Counter = field(default_factory=Counter)
    paths: Counter = field(default_factory=Counter)
    user_agent: str = ""
    blocked_for: int | None = None  # seconds the address got refused for, when one did


_lock = threading.Lock()
_pending: dict[tuple, _Count] = {}
_due_at = float("inf")  # when the oldest pending minute has passed


def count(
    action: str,
    *,
    ip: str | None,
    reason: str,
    status: int,
    path: str,
    key=None,
    user_agent: str = "",
    blocked_for: int | None = None,
) -> None:
    """Count one refusal (``api.refused``) or one 429 of a key (``api.throttled``);
    ``blocked_for`` says this refusal got its address refused for that many seconds."""
    global _due_at
    minute = int(time.time() // 60)
    subject = (action, ip, key.pk if key is not None else None, minute)
    with _lock:
        entry = _pending.get(subject)
        if entry is None:
            if len(_pending) >= MAX_SUBJECTS:
                subject = (action, None, None, minute)
                entry = _pending.get(subject)
            if entry is None:
                entry = _pending[subject] = _Count(action, subject[1], key, user_agent=user_agent)
            _due_at = min(_due_at, (minute + 1) * 60)
        entry.count += 1
        entry.reasons[reason] += 1
        entry.statuses[str(status)] += 1
        entry.paths[path[:200]] += 1
        if blocked_for is not None:
            entry.blocked_for = blocked_for


def due() -> bool:
    """Return True when a counted minute has passed and its events wait to be written."""
    return time.time() >= _due_at


def flush(*, everything: bool = False) -> int:
    """Write the events of the minutes that have passed (``everything``: of the current one
    too); return how many. Events that cannot be written are logged, with their counts."""
    global _due_at
    current = int(time.time() // 60)
    with _lock:
        ready = [s for s in _pending if everything or s[3] < current]
        taken = [(s, _pending.pop(s)) for s in ready]
        _due_at = min(((s[3] + 1) * 60 for s in _pending), default=float("inf"))
    written = 0
    for subject, entry in taken:
        try:
            _record(entry, subject[3])
            written += 1
        except DatabaseError:
            logger.exception(
                "could not record %s for %s: %d requests", entry.action, entry.ip, entry.count
            )
    return written


def _record(entry: _Count, minute: int) -> None:
    from audit.services import Actor, record

    key = entry.key
    metadata = {
        "count": entry.count,
        "minute": datetime.fromtimestamp(minute * 60, UTC).isoformat(),
        "reasons": dict(entry.reasons),
        "statuses": dict(entry.statuses),
        "paths": dict(entry.paths.most_common(MAX_PATHS)),
    }
    if entry.blocked_for is not None:
        metadata["ip_throttled_for"] = entry.blocked_for
    if entry.ip is None and entry.key is None:
        metadata["others"] = True  # more subjects than MAX_SUBJECTS in that minute
    # Literal names: tests/audit/test_completeness.py reads the actions the code records.
    action = "api.throttled" if entry.action == "api.throttled" else "api.refused"
    record(
        action,
        actor=key if key is not None else Actor.anonymous(),
        tenant=key.tenant if key is not None else None,
        target=key,
        outcome=Outcome.DENIED,
        context=RequestContext(ip=entry.ip, user_agent=entry.user_agent),
        metadata=metadata,
    )


def forget() -> None:
    """Drop every count (tests)."""
    global _due_at
    with _lock:
        _pending.clear()
        _due_at = float("inf")
