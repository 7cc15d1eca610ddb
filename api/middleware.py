"""Refuse a malformed Bearer credential to the API before DRF does any work for it."""

from django.http import JsonResponse
from rest_framework.views import APIView

from api.base import log_refusal
from keys.authentication import INVALID_TOKEN_CHALLENGE, BearerKeyAuthentication, read_credential
from keys.lookup import Reason
from keys.throttling import failures


class MalformedBearerMiddleware:
    """Answer a malformed Bearer header or token sent to a view that authenticates with
    BearerKeyAuthentication: the same 401 the view would give, without the view.

    A malformed token is refused without a lookup, so a flood of them should cost next to
    nothing. Everything else goes on to the view: no credentials, other schemes, well-formed
    tokens (they need their lookup), a key in the query string (the view refuses it and records
    the exposure), an address refused for its failures (the view answers 429), and views that
    take no key (the OpenAPI schema, signed leak reports).
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self._bearer_views: dict = {}

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if (
            not request.META.get("HTTP_AUTHORIZATION")
            or request.META.get("QUERY_STRING")
            or not self._takes_keys(view_func)
        ):
            return None
        context = read_credential(request)
        detail = context.credential.refusal
        if detail is None or failures.blocked_for(context.ip) is not None:
            return None
        response = JsonResponse(
            {"code": "invalid_token", "detail": detail},
            status=401,
            json_dumps_params={"separators": (",", ":")},
        )
        response["WWW-Authenticate"] = INVALID_TOKEN_CHALLENGE
        log_refusal(request, context, 401, Reason.MALFORMED)
        response._has_been_logged = True  # logged above, sampled: not once per response
        return response

    def _takes_keys(self, view_func) -> bool:
        takes = self._bearer_views.get(view_func)
        if takes is None:
            cls = getattr(view_func, "view_class", None)
            takes = self._bearer_views[view_func] = (
                isinstance(cls, type)
                and issubclass(cls, APIView)
                and any(
                    issubclass(auth, BearerKeyAuthentication) for auth in cls.authentication_classes
                )
            )
        return takes
