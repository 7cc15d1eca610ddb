"""Middleware every part of Keyward needs before a view runs."""

from django.conf import settings
from django.http import HttpResponse
from django.utils.cache import patch_cache_control

from common.ratelimit import CacheUnavailable

PAYLOAD_TOO_LARGE = "The request body is larger than %(limit)d bytes."
CACHE_UNAVAILABLE = "Keyward cannot check its rate limits right now: try again shortly."


class BodySizeMiddleware:
    """Answer 413 to a portal request that declares a body over DATA_UPLOAD_MAX_MEMORY_SIZE.

    Django would raise RequestDataTooBig where a view reads the form: a 400 that does not say
    why. The API is left to its views, which answer the same 413 as JSON, audited like any
    request made with a key (api/errors.py).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        length = request.META.get("CONTENT_LENGTH") or "0"
        if (
            limit is not None
            and not request.path.startswith("/api/")
            and (not length.isdigit() or int(length) > limit)
        ):
            detail = PAYLOAD_TOO_LARGE % {"limit": limit}
            return HttpResponse(detail, status=413, content_type="text/plain; charset=utf-8")
        return self.get_response(request)


class PrivatePagesMiddleware:
    """Keep every page that depends on who is logged in out of shared and browser caches.

    A page that read the session (the portal's tenant pages with keys, members or audit data,
    the account pages, the admin) gets ``Cache-Control: no-store, private``, unless its view
    already said how it may be cached. Outside SessionMiddleware, so it sees what the view did.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        session = getattr(request, "session", None)
        if session is not None and session.accessed and not response.has_header("Cache-Control"):
            patch_cache_control(response, no_store=True, private=True)
        return response


class CacheUnavailableMiddleware:
    """Answer 503 with Retry-After when a view needed the shared cache and it is down under
    KEYWARD_CACHE_FAILURE=closed (the API answers the same as JSON: api/errors.py)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, CacheUnavailable):
            return None
        response = HttpResponse(CACHE_UNAVAILABLE, status=503, content_type="text/plain")
        response["Retry-After"] = str(exception.retry_after)
        return response
