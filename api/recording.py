"""The audit trace of every request that reaches a view taking Keyward keys: one event per
request made with a key, and per-minute summaries of the rest (``api/middleware.py`` calls it).

- A request authenticated by a key, or refused with the key known (revoked, expired, out of
  scope, from a network it does not allow, …): one ``api.request`` / ``api.denied`` event, on any
  DRF view, whatever answered it (the view, a 404 of an unknown ``format``, a 406, a 405, a
  parser's 400, an exception's 500).
- A key over its rate (429): counted into one ``api.throttled`` event per key and minute.
- A refusal without a usable key (none, malformed, unknown, or from an address refused for its
  failures): counted into one ``api.refused`` event per address and minute, and logged (one line
  per kind and address a minute).
"""

import logging
import time

from audit import conf as audit_conf
from audit import summaries
from audit.actions import Outcome
from audit.services import record_request
from common import metrics
from common.request import Decision, RequestContext, context_of
from keys.lookup import key_unchanged

logger = logging.getLogger("keyward.api")

DENIED_STATUSES = frozenset({401, 403, 429})
LOG_INTERVAL = 60  # seconds between two log lines about unrecorded refusals of one kind and address
MAX_LOG_MARKS = 100_000
NO_DECISION = Decision()
NO_CREDENTIALS = "no credentials"


def _principal_label(key) -> str:
    owner = key.user if key.user_id else key.service_id
    return owner.label if owner is not None else ""


_logged: dict[tuple, list] = {}  # (ip, reason, status) -> [when last logged, skipped since]


def _log_allowance(ident: tuple) -> int | None:
    """Return None to skip a log line about ``ident``; else the number skipped since the last
    one. One line per ``ident`` and minute (per process), so a flood cannot flood the logs."""
    now = time.monotonic()
    seen = _logged.get(ident)
    if seen is not None and now - seen[0] < LOG_INTERVAL:
        seen[1] += 1
        return None
    if len(_logged) > MAX_LOG_MARKS:
        _logged.clear()
    _logged[ident] = [now, 0]
    return seen[1] if seen is not None else 0


def forget_log_marks() -> None:
    """Forget which refusals this process logged (tests)."""
    _logged.clear()


def log_refusal(request, context: RequestContext, status: int, reason: str) -> None:
    """Log a refusal that has no event of its own: the first of its kind from its address each
    minute, with the number of those not logged since the last line (per process)."""
    skipped = _log_allowance((context.ip, reason, status))
    if skipped is None:
        return
    logger.warning(
        "api: %s %s -> %s (%s) ip=%s request_id=%s; %d more like it not logged in the last minute",
        request.method,
        request.path[:300],
        status,
        reason,
        context.ip,
        context.request_id,
        skipped,
    )


def _count(action: str, request, context: RequestContext, status: int, reason: str, key) -> None:
    """Count one request into its subject's per-minute event (audit/summaries.py)."""
    summaries.count(
        action,
        ip=context.ip,
        key=key,
        reason=reason,
        status=status,
        path=request.path,
        user_agent=context.user_agent,
        blocked_for=context.decision.blocked_for if context.decision else None,
    )


def count_refusal(request, context: RequestContext, status: int, reason: str, key=None) -> None:
    """Count a refusal into its address's ``api.refused`` event of this minute, and log it."""
    _count("api.refused", request, context, status, reason, key)
    metrics.api_refused(reason, status)
    log_refusal(request, context, status, reason)


def record_api_request(request, response) -> None:
    """Leave the audit trace of a request that reached a view taking keys (see the module).

    Raises ``audit.services.AuditUnavailable`` when the event of a request made with a key
    cannot be committed (KEYWARD_AUDIT_FAIL_CLOSED), and ``ConditionFailed`` when the key, taken
    from the process's memory, changed since it was found: the caller must not serve the
    response.
    """
    context = context_of(request)
    decision = context.decision or NO_DECISION
    status = response.status_code
    denied = status in DENIED_STATUSES
    authenticated = context.authenticated
    key = authenticated[1] if isinstance(authenticated, tuple) else decision.key
    if decision.recorded and not decision.record:
        metrics.api_refused(decision.reason or "recorded", status)
        return  # its own event says what happened (a key sent in a URL)
    if key is None or not decision.record:
        if decision.reason or denied:
            count_refusal(request, context, status, decision.reason or NO_CREDENTIALS, key)
        return
    if status == 429:
        _count("api.throttled", request, context, status, decision.reason or "throttled", key)
        metrics.api_throttled(decision.reason or "throttled")
        return
    metadata = {
        "method": request.method,
        "path": request.path[:300],
        "status": status,
        "duration_ms": round((time.perf_counter() - context.started) * 1000, 1),
        "principal": _principal_label(key),
    }
    reason = decision.reason
    if reason is None and status >= 400:
        reason = _error_code(response)
    if reason:
        metadata["reason"] = reason
    if decision.scopes and not denied:
        # Granted by HasScope: rolled up into the key's used scopes.
        metadata["scopes"] = list(decision.scopes)
    if decision.blocked_for is not None:
        metadata["ip_throttled_for"] = decision.blocked_for  # this failure engaged the throttle
    # A Keyward JWT (federation): its jti and the key it was minted from.
    metadata.update(getattr(key, "audit_metadata", None) or {})
    if denied:
        action, outcome = "api.denied", Outcome.DENIED
    else:
        action = "api.request"
        outcome = Outcome.SUCCESS if status < 400 else Outcome.FAILURE
    record_request(
        action,
        actor=key,
        tenant=key.tenant,
        target=key,
        outcome=outcome,
        context=context,
        metadata=metadata,
        # A key from the process's memory: written, and so served, only if still as found.
        condition=key_unchanged(key) if context.remembered else None,
        # A Keyward JWT's request (safe methods: a change commits with its event) goes through
        # the batched writer unless KEYWARD_AUDIT_JWT_EVENTS says "committed" (SECURITY.md).
        batched=getattr(key, "via_jwt", False)
        and audit_conf.settings.AUDIT_JWT_EVENTS == "batched",
    )
    metrics.api_request(outcome, status)


def _error_code(response) -> str | None:
    data = getattr(response, "data", None)
    if isinstance(data, dict) and isinstance(data.get("code"), str):
        return data["code"][:64]
    if status_reason := getattr(response, "reason_phrase", None):
        return status_reason.lower().replace(" ", "_")[:64]
    return None
