"""Facts about a request that several apps need: client IP, user agent, request id."""

import ipaddress
import re
import uuid

from django.conf import settings

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")


def _trusted_proxies() -> list:
    return [ipaddress.ip_network(n, strict=False) for n in settings.KEYWARD_TRUSTED_PROXIES]


def client_ip(request) -> str | None:
    """Return the client's IP: REMOTE_ADDR, or the X-Forwarded-For hop before trusted proxies."""
    remote = request.META.get("REMOTE_ADDR") or None
    proxies = _trusted_proxies() if settings.KEYWARD_TRUSTED_PROXIES else []
    if not proxies or remote is None:
        return remote
    # SECURITY: walk X-Forwarded-For from the right, skipping only hops we trust; the first
    # untrusted hop is the client. A client can forge the left part, never the right.
    hops = [remote]
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    hops = [h.strip() for h in forwarded.split(",") if h.strip()] + hops
    for hop in reversed(hops):
        try:
            address = ipaddress.ip_address(hop)
        except ValueError:
            return remote
        if not any(address in net for net in proxies):
            return str(address)
    return hops[0]


def user_agent_of(request) -> str:
    return request.META.get("HTTP_USER_AGENT", "")[:300]


def parse_request_id(value: str | None) -> str | None:
    """Return ``value`` if it is an acceptable request id (1-64 safe characters), else None."""
    if value and _REQUEST_ID.fullmatch(value):
        return value
    return None


def request_id_of(request) -> str:
    return getattr(request, "request_id", "")


class RequestIdMiddleware:
    """Accept a valid incoming X-Request-ID or make one; return it on the response."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.request_id = (
            parse_request_id(request.headers.get(REQUEST_ID_HEADER)) or uuid.uuid4().hex
        )
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request.request_id
        return response
