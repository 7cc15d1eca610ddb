"""One request context: who is calling from where, built once per request.

Services and ``audit.record`` take it as ``context=``, never the HttpRequest; authentication adds
what it decided with ``decide()``, which replaces the frozen context with a new one.
"""

import ipaddress
import re
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from common import conf

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")


@dataclass(frozen=True, slots=True)
class Decision:
    """What authentication, a permission or a throttle decided about a request's credential.

    ``reason`` says why it was refused (recorded in the audit event, never sent to the client);
    ``record`` asks for an ``api.denied`` event, ``recorded`` says an event about this request was
    already written; ``blocked_for`` says this failure got its address refused for that many
    seconds; ``scopes`` are those a permission granted.
    """

    key: Any = None
    reason: str | None = None
    record: bool = True
    recorded: bool = False
    blocked_for: int | None = None
    scopes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Client IP, user agent, request id and what authentication decided, for one request."""

    ip: str | None = None
    user_agent: str = ""
    request_id: str = ""
    started: float = 0.0  # time.perf_counter() when the request came in
    # The parsed Authorization header, shared by the middleware and the authentication class;
    # it may hold a token: never logged, never printed.
    credential: Any = field(default=None, repr=False)
    decision: Decision | None = None
    # Set where a view that takes Keyward keys is reached with credentials: the request leaves
    # an audit event (api/middleware.py). ``authenticated`` holds the authentication's outcome,
    # reached once per request: (owner, key), None, or the exception it raised.
    keyed: bool = False
    authenticated: Any = field(default=None, repr=False)
    # ``audited``: the key audit middleware writes this request's event before it answers, and
    # can write it under a condition; ``remembered``: the key came from the process's memory of
    # keys found lately, and its event must be written only if the key is still as it was.
    audited: bool = False
    remembered: bool = False

    @classmethod
    def of(cls, request) -> "RequestContext":
        """Build the context of ``request`` (its X-Request-ID if valid, else a new one)."""
        return cls(
            ip=client_ip(request),
            user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
            request_id=parse_request_id(request.headers.get(REQUEST_ID_HEADER)) or uuid.uuid4().hex,
            started=time.perf_counter(),
        )


def _http_request(request):
    return getattr(request, "_request", request)  # DRF's Request wraps the HttpRequest


def context_of(request) -> RequestContext:
    """Return the context of ``request`` (an HttpRequest or DRF Request), building it if the
    middleware did not run (a request made by hand in a test or a shell)."""
    raw = _http_request(request)
    context = getattr(raw, "context", None)
    if context is None:
        context = raw.context = RequestContext.of(raw)
    return context


def update_context(request, **changes) -> RequestContext:
    """Replace the context of ``request`` with one that has ``changes``; return it."""
    raw = _http_request(request)
    context = raw.context = replace(context_of(raw), **changes)
    return context


def decide(request, **changes) -> RequestContext:
    """Record what was decided about the request's credential (see ``Decision``)."""
    decision = context_of(request).decision or Decision()
    return update_context(request, decision=replace(decision, **changes))


def _trusted_proxies() -> list:
    return [ipaddress.ip_network(n, strict=False) for n in conf.settings.TRUSTED_PROXIES]


def client_ip(request) -> str | None:
    """Return the client's IP: REMOTE_ADDR, or the X-Forwarded-For hop before trusted proxies."""
    remote = request.META.get("REMOTE_ADDR") or None
    proxies = _trusted_proxies() if conf.settings.TRUSTED_PROXIES else []
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


def parse_request_id(value: str | None) -> str | None:
    """Return ``value`` if it is an acceptable request id (1-64 safe characters), else None."""
    if value and _REQUEST_ID.fullmatch(value):
        return value
    return None


class RequestContextMiddleware:
    """Build the request's context once; return its request id as X-Request-ID."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.context = RequestContext.of(request)
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request.context.request_id
        return response
