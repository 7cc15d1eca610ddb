"""The API's one exception handler: every error is JSON ``{"code", "detail"[, "errors"]}``."""

import logging

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, RequestDataTooBig
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import set_rollback

from common.middleware import CACHE_UNAVAILABLE, PAYLOAD_TOO_LARGE
from common.ratelimit import CacheUnavailable
from keys.authentication import REALM

logger = logging.getLogger("django.request")

NOT_AUTHENTICATED = "Send a key in the Authorization header: `Bearer <key>`."
NOT_FOUND = "Not found."
PERMISSION_DENIED = "You do not have permission to perform this action."
INVALID_INPUT = "Invalid input: see errors."
SERVER_ERROR = "Server error."
API_NOT_FOUND = "No such API endpoint."
KEYS_CANNOT_CREATE_KEYS = (
    "Keys cannot create keys: issue keys in the portal, behind a second factor."
)

# What each error status means, for the OpenAPI description of every operation.
ERRORS = {
    400: "invalid / invalid_request: the input or the request is unacceptable.",
    401: "not_authenticated / invalid_token: no key, or a key that cannot be used.",
    403: "insufficient_scope (see WWW-Authenticate) or permission_denied.",
    404: "not_found: no such object in this key's tenant.",
    413: "payload_too_large: the body is larger than the endpoint accepts.",
    415: "unsupported_media_type: send the body as application/json.",
    429: "throttled: see Retry-After.",
}

# DRF's own codes, renamed to the API's stable ones.
_CODES = {
    "authentication_failed": "invalid_token",
    "parse_error": "invalid_request",
    "error": "invalid",
}


class KeysCannotCreateKeys(exceptions.PermissionDenied):
    """403: a key may never mint another key, whatever its scopes."""

    default_detail = KEYS_CANNOT_CREATE_KEYS
    default_code = "keys_cannot_create_keys"


def _error(code: str, detail: str, status: int, headers=None, errors=None) -> Response:
    data = {"code": code, "detail": str(detail)}
    if errors is not None:
        data["errors"] = errors
    return Response(data, status=status, headers=headers)


def _django_errors(error: DjangoValidationError) -> dict:
    if hasattr(error, "error_dict"):
        return {
            (api_settings.NON_FIELD_ERRORS_KEY if field == NON_FIELD_ERRORS else field): messages
            for field, messages in error.message_dict.items()
        }
    return {api_settings.NON_FIELD_ERRORS_KEY: error.messages}


def _invalid(errors) -> Response:
    if not isinstance(errors, dict):
        errors = {api_settings.NON_FIELD_ERRORS_KEY: errors}
    general = errors.get(api_settings.NON_FIELD_ERRORS_KEY)
    detail = general[0] if general and len(errors) == 1 else INVALID_INPUT
    return _error("invalid", detail, 400, errors=errors)


def api_exception_handler(exc, context):
    """Turn any exception raised in an API view into a JSON error response.

    Django's ValidationError → 400 ``invalid``, PermissionDenied → 403 ``permission_denied``,
    Http404 → 404 ``not_found``; DRF exceptions keep their status with a stable code.
    """
    set_rollback()
    if isinstance(exc, CacheUnavailable):
        headers = {"Retry-After": str(exc.retry_after)}
        return _error("cache_unavailable", CACHE_UNAVAILABLE, 503, headers)
    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return _error("payload_too_large", PAYLOAD_TOO_LARGE % {"limit": limit}, 413)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(NOT_FOUND if not exc.args else str(exc))
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or PERMISSION_DENIED)
    elif isinstance(exc, DjangoValidationError):
        return _invalid(_django_errors(exc))
    if isinstance(exc, exceptions.ValidationError):
        return _invalid(exc.detail)
    if not isinstance(exc, exceptions.APIException):
        if settings.DEBUG:
            return None  # DRF re-raises: the developer sees the traceback
        view = context.get("view")
        logger.error("Unhandled exception in %s", type(view).__name__, exc_info=exc)
        return _error("server_error", SERVER_ERROR, 500)
    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = f"{exc.wait:.0f}"
    if isinstance(exc, exceptions.NotAuthenticated):
        # RFC 6750 §3.1: no credentials at all get the bare challenge, with no error code.
        headers["WWW-Authenticate"] = REALM
        return _error("not_authenticated", NOT_AUTHENTICATED, exc.status_code, headers)
    if not isinstance(exc.detail, str):
        return _error("invalid", INVALID_INPUT, exc.status_code, headers, errors=exc.detail)
    code = getattr(exc.detail, "code", None) or exc.default_code
    return _error(_CODES.get(code, code), exc.detail, exc.status_code, headers)


@csrf_exempt  # no cookie authenticates on /api/; CSRF's HTML 403 would hide the JSON 404
def api_not_found(request, *args, **kwargs):
    """Answer any unknown /api/ path with the API's JSON 404, never the portal's HTML page."""
    return JsonResponse({"code": "not_found", "detail": API_NOT_FOUND}, status=404)
