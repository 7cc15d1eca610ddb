"""DRF authentication with ``Authorization: Bearer <key>`` (RFC 6750), shaped like DRF's
``TokenAuthentication``: read the header, look the key up, check it.

A valid request costs one query (the key, its owner, its tenant and the owner's current role);
a malformed token costs none. What was decided goes into the request context, for its audit event,
which ``api.middleware.KeyAuditMiddleware`` writes for any DRF view that uses this class.
"""

import time
from dataclasses import dataclass, field
from typing import NoReturn

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from accounts.principals import Principal
from common import metrics
from common.request import RequestContext, context_of, decide, update_context
from keys import leaks, tokens
from keys.lookup import (
    Reason,
    forget_key,
    key_by_digest,
    known_key,
    known_refusal,
    mark_used,
    refusal_reason,
    remember_key,
    remember_refusal,
)
from keys.services.change import key_complete_rotation
from keys.services.issue import _now
from keys.throttling import failures

INVALID_TOKEN = "Invalid or expired token."
MALFORMED_HEADER = "Malformed Authorization header: send exactly one key, as `Bearer <key>`."
PENDING_APPROVAL = "This key is waiting for a second person's approval: it works once approved."
AUTH_THROTTLED = "Too many failed authentication attempts from your address."
REALM = 'Bearer realm="api"'
INVALID_TOKEN_CHALLENGE = 'Bearer realm="api", error="invalid_token"'


@dataclass(frozen=True, slots=True)
class Credential:
    """An Authorization header, read once per request: is it Bearer, and its token."""

    is_bearer: bool = False
    token: tokens.ParsedToken | None = field(default=None, repr=False)
    refusal: str | None = None  # the 401 detail of a header refused before any lookup


def read_credential(request) -> RequestContext:
    """Return the request's context with its Bearer credential, parsed once per request (the
    middleware and this class share it)."""
    context = context_of(request)
    if context.credential is not None:
        return context
    parts = get_authorization_header(request).split()
    if not parts or parts[0].lower() != b"bearer":
        credential = Credential()
    elif len(parts) != 2 or not parts[1].isascii():
        credential = Credential(is_bearer=True, refusal=MALFORMED_HEADER)
    else:
        token = tokens.parse(parts[1].decode("ascii"))
        credential = Credential(True, token, None if token else INVALID_TOKEN)
    return update_context(request, credential=credential)


class BearerKeyAuthentication(BaseAuthentication):
    """Authenticate ``Authorization: Bearer <key>``; refuse keys in the query string.

    Returns ``(owner, api_key)``: the owner is the User or the ServiceID, and ``api_key.principal``
    carries the tenant and the owner's current role. Every refusal is a generic 401; the reason
    goes to the audit log.
    """

    def authenticate(self, request):
        started = time.perf_counter()
        try:
            outcome = self._authenticate(request)
        except exceptions.APIException:
            metrics.authentication_observed("refused", time.perf_counter() - started)
            raise
        if outcome is not None:
            metrics.authentication_observed("accepted", time.perf_counter() - started)
        return outcome

    def _authenticate(self, request):
        context = read_credential(request)
        credential = context.credential
        exposed = leaks.query_token(request)
        if not credential.is_bearer and exposed is None:
            return None  # another scheme, or no credentials: not ours to refuse
        # SECURITY: an address refused for its failures still has a valid key served: the limit
        # bounds what failures cost (events, log lines, lookups of digests known to fail),
        # never a key that authenticates.
        blocked = failures.blocked_for(context.ip)
        if exposed is not None:
            self._refuse_exposed(request, context, blocked, *exposed)
        if credential.token is None:
            self._fail(request, context.ip, Reason.MALFORMED, blocked, detail=credential.refusal)
        return self._authenticate_token(credential.token, request, context.ip, blocked)

    def authenticate_credentials(self, raw: str, request):
        """Return ``(owner, api_key)`` for a valid key, else raise AuthenticationFailed (401)."""
        parsed = tokens.parse(raw)
        ip = context_of(request).ip
        blocked = failures.blocked_for(ip)
        if parsed is None:
            self._fail(request, ip, Reason.MALFORMED, blocked)
        return self._authenticate_token(parsed, request, ip, blocked)

    def _authenticate_token(self, parsed: tokens.ParsedToken, request, ip, blocked):
        # SECURITY: an equality lookup on the SHA-256 digest (unique index); high-entropy tokens
        # need no slow hash, and no comparison ever touches the plaintext.
        digest = tokens.digest(parsed.token)
        known = known_refusal(digest)  # no such key, or revoked / expired: no query again
        if known is not None:
            self._fail(request, ip, known[0], blocked, known[1])
        # A key found lately costs no query where its event is written under the condition that
        # it is still as it was found (KeyAuditMiddleware, fail-closed): see keys/lookup.py.
        audited = context_of(request).audited
        found = known_key(digest) if audited else None
        remembered = found is not None
        if found is not None and refusal_reason(found[0], found[1], ip, _now()) is not None:
            forget_key(digest)  # refused now (expired, another address): look it up afresh
            found, remembered = None, False
        if found is None:
            found = key_by_digest(digest)
        if found is None:
            self._fail(request, ip, remember_refusal(digest, Reason.UNKNOWN), blocked)
        key, role = found
        reason = refusal_reason(key, role, ip, _now())
        if reason is not None:
            self._fail(request, ip, remember_refusal(digest, reason, key), blocked, key)
        if key.completes_rotation_on_use:
            # The successor's first authenticated request retires its predecessor, once.
            key_complete_rotation(key=key, context=context_of(request))
        if audited and not remembered and key.state_fingerprint:
            remember_key(digest, key, role)
        key.principal = Principal(
            tenant=key.tenant, role=role, user=key.user, service_id=key.service_id, key=key
        )
        mark_used(key, ip)
        outcome = key.owner, key
        # For its audit event (api/middleware.py).
        update_context(request, keyed=True, authenticated=outcome, remembered=remembered)
        return outcome

    def authenticate_header(self, request) -> str:
        return INVALID_TOKEN_CHALLENGE

    def _fail(self, request, ip, reason: str, blocked, key=None, *, detail=None) -> NoReturn:
        update_context(request, keyed=True)
        if blocked is not None:
            # The address is refused already (one event said so): 429, and nothing more.
            decide(request, reason=Reason.FAILED_AUTH_THROTTLED, key=key, record=False)
            raise exceptions.Throttled(wait=blocked, detail=AUTH_THROTTLED)
        # SECURITY: a malformed token is no guess at any key (nothing was looked up), so it is
        # not counted against its address, and only logged: a flood of them costs no query and
        # no shared-cache round trip. A well-formed one (any guess can be) is counted and
        # recorded; the failure that gets its address refused says so (``blocked_for``).
        malformed = reason == Reason.MALFORMED
        now_blocked = None if malformed else failures.count(ip)
        decide(request, reason=reason, key=key, record=not malformed, blocked_for=now_blocked)
        if reason == Reason.PENDING_APPROVAL:
            # The holder of a pending key was shown it: saying why it does not work yet is no
            # oracle for anyone else.
            raise exceptions.AuthenticationFailed(PENDING_APPROVAL, code="pending_approval")
        raise exceptions.AuthenticationFailed(detail or INVALID_TOKEN, code="invalid_token")

    def _refuse_exposed(self, request, context, blocked, param: str, value: str) -> NoReturn:
        """Refuse a key sent in the URL (400) and apply the leak policy; never log the token.
        From an address refused for its failures: 429, with no lookup and no event."""
        update_context(request, keyed=True)
        if blocked is not None:
            decide(request, reason=Reason.FAILED_AUTH_THROTTLED, record=False)
            raise exceptions.Throttled(wait=blocked, detail=AUTH_THROTTLED)
        now_blocked = failures.count(context.ip)
        key, recorded, action = leaks.key_exposed(
            param, value, method=request.method, path=request.path, context=context
        )
        decide(
            request,
            reason=Reason.TOKEN_IN_QUERY,
            key=key,
            record=now_blocked is not None,
            recorded=recorded,
            blocked_for=now_blocked,
        )
        raise leaks.TokenInQuery(leaks.token_in_query_detail(key, action))
