"""Every request that reaches a view taking Keyward keys leaves its audit trace before its
response leaves (api/recording.py), whatever kind of DRF view it is; a malformed Bearer
credential is refused before DRF does any work for it."""

import logging

from django.db import transaction
from django.http import JsonResponse
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.views import APIView

from api.recording import count_refusal, record_api_request
from audit import conf as audit_conf
from audit import summaries
from audit.services import AuditUnavailable, ConditionFailed
from common import metrics
from common.request import context_of, update_context
from federation.authentication import KeywardJWTAuthentication
from federation.tokens import looks_like_jwt
from keys.authentication import INVALID_TOKEN_CHALLENGE, BearerKeyAuthentication, read_credential
from keys.lookup import Reason, forget_token
from keys.throttling import failures

logger = logging.getLogger("keyward.api")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
AUDIT_UNAVAILABLE = (
    "Keyward could not record this request in its audit log, so it did not serve it: "
    "try again shortly."
)
AUDIT_RETRY_AFTER = 5  # seconds
KEY_CHANGED = "The key changed while this request ran, so nothing was served: try again."


def _json(body: dict, status: int) -> JsonResponse:
    return JsonResponse(body, status=status, json_dumps_params={"separators": (",", ":")})


def audit_unavailable() -> JsonResponse:
    """The answer to a request made with a key whose event could not be committed."""
    response = _json({"code": "audit_unavailable", "detail": AUDIT_UNAVAILABLE}, 503)
    response["Retry-After"] = str(AUDIT_RETRY_AFTER)
    return response


def _sends_bearer(request) -> bool:
    return request.META.get("HTTP_AUTHORIZATION", "")[:7].lower() == "bearer "


def _sends_jwt(request) -> bool:
    return looks_like_jwt(request.META.get("HTTP_AUTHORIZATION", "")[7:].strip())


class KeyAuditMiddleware:
    """Record every request that reaches a view taking keys (BearerKeyAuthentication in its
    ``authentication_classes``: an APIView, a ViewSet, an ``@api_view``), and refuse a malformed
    Bearer header or token to such a view with the 401 the view would give, without the view.

    Fail-closed (KEYWARD_AUDIT_FAIL_CLOSED, the default): a response to a request made with a
    key leaves only once its event is committed, else the client gets ``503 audit_unavailable``
    and no data. A request with a Bearer credential that may change state (not GET, HEAD,
    OPTIONS or TRACE) runs in one transaction with its event: both commit, or neither; a 5xx
    rolls its changes back.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self._key_views: dict = {}

    def __call__(self, request):
        response = self._respond(request)
        if summaries.due() and isinstance(context_of(request).authenticated, tuple):
            # The counts of a minute that has passed, written by a request that was served
            # with a key (it pays an INSERT already): a refused or malformed one costs no query.
            summaries.flush()
        return response

    def _respond(self, request):
        bearer = _sends_bearer(request)
        fail_closed = audit_conf.settings.AUDIT_FAIL_CLOSED
        if request.method in SAFE_METHODS or not bearer or not fail_closed:
            if bearer and fail_closed:
                # Its event is written under the condition that a key from the process's
                # memory is still as found; a request that may change state (below) looks its
                # key up in its own transaction instead, and may change that key itself.
                update_context(request, audited=True)
            response = self.get_response(request)
            return self._recorded(request, response)
        try:
            with transaction.atomic():
                response = self.get_response(request)
                if response.status_code >= 500:
                    transaction.set_rollback(True)
                else:
                    response = self._recorded(request, response, in_transaction=True)
        except AuditUnavailable:
            return self._unavailable(request)
        except ConditionFailed:
            return self._key_changed(request)
        if response.status_code >= 500:
            response = self._recorded(request, response)
        return response

    def _recorded(self, request, response, *, in_transaction: bool = False):
        context = context_of(request)
        if not context.keyed:
            return response
        if context.authenticated is None and context.decision is None:
            self._authenticate(request)  # DRF answered before authenticating (406, 404, …)
        try:
            record_api_request(request, response)
        except AuditUnavailable:
            if in_transaction:
                raise  # __call__ rolls the request's changes back
            return self._unavailable(request)
        except ConditionFailed:
            if in_transaction:
                raise
            return self._key_changed(request)
        if response.status_code < 500:
            # Every 4xx is in the audit log: skip django.request's own line per 4xx response,
            # which a flood of bad requests would turn into a flood.
            response._has_been_logged = True
        return response

    @staticmethod
    def _authenticate(request) -> None:
        """Find out which key a request answered before authentication was made with."""
        authentication = (
            KeywardJWTAuthentication() if _sends_jwt(request) else BearerKeyAuthentication()
        )
        try:
            authentication.authenticate(Request(request))
        except exceptions.APIException:
            pass  # decided: the context says why

    def _key_changed(self, request):
        """Answer a request whose key changed while it ran (it came from the process's memory
        of keys and was revoked, narrowed, moved, … since): nothing of the view's answer is
        served. The key is looked up afresh: refused now, a 401 as ever; else a 503 to retry."""
        context = context_of(request)
        forget_token(context.credential.token.token)
        update_context(request, decision=None, authenticated=None, remembered=False, audited=False)
        try:
            BearerKeyAuthentication().authenticate(Request(request))
        except exceptions.AuthenticationFailed as refused:
            response = _json({"code": "invalid_token", "detail": str(refused.detail)}, 401)
            response["WWW-Authenticate"] = INVALID_TOKEN_CHALLENGE
        except exceptions.APIException as refused:
            response = _json({"code": refused.default_code, "detail": str(refused.detail)}, 429)
        else:
            response = _json({"code": "key_changed", "detail": KEY_CHANGED}, 503)
            response["Retry-After"] = "1"
        return self._recorded(request, response)

    @staticmethod
    def _unavailable(request):
        context = context_of(request)
        logger.error(
            "api: %s %s not served: its audit event could not be committed (request_id=%s)",
            request.method,
            request.path[:300],
            context.request_id,
            exc_info=True,
        )
        metrics.api_request("audit_unavailable", 503)
        return audit_unavailable()

    def process_view(self, request, view_func, view_args, view_kwargs):
        if not self._takes_keys(view_func):
            return None
        update_context(request, keyed=True)
        if not request.META.get("HTTP_AUTHORIZATION") or request.META.get("QUERY_STRING"):
            return None
        context = read_credential(request)
        detail = context.credential.refusal
        if detail is None or _sends_jwt(request) or failures.blocked_for(context.ip) is not None:
            return None  # a JWT is no malformed key: KeywardJWTAuthentication decides
        # A malformed token is no guess at any key: refused without a lookup or a count.
        update_context(request, keyed=False)  # counted here, once
        count_refusal(request, context, 401, Reason.MALFORMED)
        response = _json({"code": "invalid_token", "detail": detail}, 401)
        response["WWW-Authenticate"] = INVALID_TOKEN_CHALLENGE
        response._has_been_logged = True  # counted and logged above, not once per response
        return response

    def _takes_keys(self, view_func) -> bool:
        takes = self._key_views.get(view_func)
        if takes is None:
            # APIView.as_view() sets view_class, ViewSet.as_view() only cls.
            cls = getattr(view_func, "view_class", None) or getattr(view_func, "cls", None)
            takes = self._key_views[view_func] = (
                isinstance(cls, type)
                and issubclass(cls, APIView)
                and any(
                    issubclass(auth, BearerKeyAuthentication) for auth in cls.authentication_classes
                )
            )
        return takes
