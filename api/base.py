"""The base of every API v1 view, and the one audit event each API request leaves behind."""

import logging
import time

from django.db import DatabaseError
from rest_framework import exceptions
from rest_framework.views import APIView

from api.schema import KeywardAutoSchema
from audit.actions import Outcome
from audit.services import Actor, record_request
from common.request import Decision, RequestContext, context_of
from keys.models import ApiKey

logger = logging.getLogger("keyward.api")

KEY_THROTTLED = "This key exceeded its request rate."
DENIED_STATUSES = frozenset({401, 403, 429})
LOG_INTERVAL = 60  # seconds between two log lines about unrecorded refusals of one kind and address
MAX_LOG_MARKS = 100_000
NO_DECISION = Decision()


def _principal_label(key: ApiKey) -> str:
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
    """Log a refusal that leaves no audit event: the first of its kind from its address each
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


def record_api_request(request, response) -> None:
    """Record one ``api.request`` (or ``api.denied``) event for a request made with a key.

    Handed, after the response is ready, to ``audit.services.record_request``: the per-process
    writer inserts it in a batch (one INSERT at once with KEYWARD_AUDIT_REQUEST_EVENTS="sync").
    Requests that carried no well-formed key (none, malformed, or refused by the per-address
    limit before any database work) are only logged, so that forged garbage cannot fill the
    audit table; the one failure that gets its address throttled is recorded, with
    ``ip_throttled_for`` (seconds).
    """
    context = context_of(request)
    decision = context.decision or NO_DECISION
    # Read DRF's cached result: never trigger authentication from here.
    key = vars(request).get("_auth")
    status = response.status_code
    denied = status in DENIED_STATUSES
    if not isinstance(key, ApiKey):
        key = decision.key
        if decision.reason is None or not decision.record:
            if (decision.reason or denied) and not decision.recorded:
                log_refusal(request, context, status, decision.reason or "no credentials")
            return
    metadata = {
        "method": request.method,
        "path": request.path[:300],
        "status": status,
        "duration_ms": round((time.perf_counter() - context.started) * 1000, 1),
        "principal": _principal_label(key) if key is not None else "",
    }
    reason = decision.reason
    if reason is None and status >= 400 and isinstance(response.data, dict):
        reason = response.data.get("code")
    if reason:
        metadata["reason"] = reason
    if decision.scopes and not denied:
        # Granted by HasScope: rolled up into the key's used scopes.
        metadata["scopes"] = list(decision.scopes)
    if decision.blocked_for is not None:
        metadata["ip_throttled_for"] = decision.blocked_for  # this failure engaged the throttle
    if denied:
        action, outcome = "api.denied", Outcome.DENIED
    else:
        action = "api.request"
        outcome = Outcome.SUCCESS if status < 400 else Outcome.FAILURE
    try:
        record_request(
            action,
            actor=key if key is not None else Actor.anonymous(),
            tenant=key.tenant if key is not None else None,
            target=key,
            outcome=outcome,
            context=context,
            metadata=metadata,
        )
    except DatabaseError:
        # The response is already decided (and any change committed with its own event): a
        # failed request event must not turn it into a 500. Say so loudly instead.
        logger.exception("api: could not record %s for %s %s", action, request.method, metadata)


class KeywardApiView(APIView):
    """An API v1 view: Bearer keys, ``required_scopes``, per-key throttle, one audit event.

    Subclasses declare ``required_scopes``: a list (``[]`` for any valid key) or a dict of HTTP
    method to list.
    """

    metadata_class = None  # OPTIONS answers 405: no unauthenticated introspection
    _throttle_checked = False  # DRF checks throttles again in initial(): count a request once
    schema = KeywardAutoSchema()

    @property
    def allowed_methods(self):
        # OPTIONS answers 405 (no metadata_class): the Allow header does not offer it.
        return [m for m in super().allowed_methods if m != "OPTIONS"]

    def check_permissions(self, request):
        # SECURITY: count the key's request before its scopes are checked, so that a key cannot
        # send refused requests (each one an audit event) faster than its rate.
        self.check_throttles(request)
        super().check_permissions(request)

    def check_throttles(self, request):
        if not self._throttle_checked:
            self._throttle_checked = True
            super().check_throttles(request)

    def throttled(self, request, wait):
        raise exceptions.Throttled(wait=wait, detail=KEY_THROTTLED)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        record_api_request(request, response)
        if response.status_code < 500:
            # Every 4xx is in the audit log or (sampled) in keyward.api's: skip django.request's
            # own line per 4xx response, which a flood of bad requests would turn into a flood.
            response._has_been_logged = True
        return response
