"""DRF authentication with ``Authorization: Bearer <key>`` (RFC 6750), shaped like DRF's
``TokenAuthentication``.

A valid request costs one query (the key, its owner, its tenant and the owner's current role);
``last_used_at`` is written at most once a minute per key. A malformed token costs none.
"""

import math
import time
from datetime import datetime
from typing import NoReturn

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

import audit
from accounts.principals import Principal
from audit.actions import Outcome
from audit.services import Actor
from common import ratelimit
from common.request import client_ip
from keys import tokens
from keys.lookup import key_by_digest
from keys.models import ApiKey
from keys.networks import ip_allowed

INVALID_TOKEN = "Invalid or expired token."
MALFORMED_HEADER = "Malformed Authorization header: send exactly one key, as `Bearer <key>`."
TOKEN_IN_QUERY = (
    "Keys are never accepted in a URL: send the key in the Authorization header "
    "(`Bearer <key>`). Treat this key as exposed: revoke it and issue a new one."
)
AUTH_THROTTLED = "Too many failed authentication attempts from your address."

REALM = 'Bearer realm="api"'
INVALID_TOKEN_CHALLENGE = 'Bearer realm="api", error="invalid_token"'
# RFC 6750's query parameter; any other parameter is refused only if its value is a token, so
# filters such as ``?key=<id>`` on the audit API keep working.
QUERY_TOKEN_PARAMS = frozenset({"access_token"})
LAST_USED_INTERVAL = 60  # seconds between two writes of last_used_at for one key
LOG_INTERVAL = 60  # seconds between two log lines about unrecorded refusals of one kind and address
FAILED_AUTH_SCOPE = "api-auth"


class Reason:
    """Why a key was refused: recorded in the audit event, never sent to the client."""

    MALFORMED = "malformed_token"
    UNKNOWN = "unknown_key"
    REVOKED = "revoked"
    EXPIRED = "expired"
    ROTATED = "rotated_grace_ended"
    TENANT_INACTIVE = "tenant_inactive"
    OWNER_INACTIVE = "owner_inactive"
    OWNER_NOT_MEMBER = "owner_not_member"
    SERVICE_ID_DISABLED = "service_id_disabled"
    IP_NOT_ALLOWED_BY_KEY = "ip_not_allowed_by_key"
    IP_NOT_ALLOWED_BY_TENANT = "ip_not_allowed_by_tenant"
    TOKEN_IN_QUERY = "token_in_query"
    FAILED_AUTH_THROTTLED = "failed_auth_throttled"


class _ProcessState:
    """What this process remembers to keep shared-cache round trips off the valid-key path.

    Failures are counted in the shared cache (Redis), so every process sees the same count; the
    process that sees an address go over the limit blocks it here until the window ends. Another
    process blocks it at its first failure from that address after that: an attacker gains at
    most one extra guess per worker and window, and a valid request pays no round trip for it.
    """

    MAX_ENTRIES = 100_000

    def __init__(self) -> None:
        self.blocked: dict[str, float] = {}
        self.touched: dict[int, float] = {}
        self.logged: dict[tuple, list] = {}

    def reset(self) -> None:
        self.blocked.clear()
        self.touched.clear()
        self.logged.clear()

    def log_allowance(self, ident: tuple) -> int | None:
        """Return None to skip a log line about ``ident``; else the number skipped since the
        last one. One line per ``ident`` and minute, so a flood cannot flood the logs."""
        now = time.monotonic()
        seen = self.logged.get(ident)
        if seen is not None and now - seen[0] < LOG_INTERVAL:
            seen[1] += 1
            return None
        if len(self.logged) > self.MAX_ENTRIES:
            self.logged.clear()
        self.logged[ident] = [now, 0]
        return seen[1] if seen is not None else 0

    def block(self, ip: str | None, wait: int) -> None:
        if len(self.blocked) > self.MAX_ENTRIES:
            self.blocked.clear()
        self.blocked[ip or "unknown"] = time.monotonic() + wait

    def blocked_for(self, ip: str | None) -> int | None:
        until = self.blocked.get(ip or "unknown")
        if until is None:
            return None
        wait = until - time.monotonic()
        if wait <= 0:
            del self.blocked[ip or "unknown"]
            return None
        return math.ceil(wait)

    def touched_recently(self, key_id: int) -> bool:
        now = time.monotonic()
        last = self.touched.get(key_id)
        if last is not None and now - last < LAST_USED_INTERVAL:
            return True
        if len(self.touched) > self.MAX_ENTRIES:
            self.touched.clear()
        self.touched[key_id] = now
        return False


_local = _ProcessState()
log_allowance = _local.log_allowance


def reset_process_state() -> None:
    """Forget this process's blocked addresses, last-use marks, log marks and reserved
    requests (tests clear the cache too)."""
    from keys.throttling import reset_leases

    _local.reset()
    reset_leases()


class InvalidRequest(exceptions.APIException):
    """400 ``invalid_request`` (RFC 6750 §3.1): the request itself is unacceptable."""

    status_code = 400
    default_detail = "Invalid request."
    default_code = "invalid_request"


def _now() -> datetime:
    return timezone.now()


def _query_token(request) -> tuple[str, str] | None:
    """Return (param, value) of the first query parameter that carries a key, or None."""
    if not request.META.get("QUERY_STRING"):
        return None
    for name, values in request.query_params.lists():
        for value in values:
            if value and (name.lower() in QUERY_TOKEN_PARAMS or tokens.parse(value)):
                return name, value
    return None


def split_bearer(header: bytes) -> tuple[bool, str | None]:
    """Return whether ``header`` (an Authorization value) is a Bearer credential, and its token:
    None unless the header is exactly ``Bearer <one ASCII word>``."""
    parts = header.split()
    if not parts or parts[0].lower() != b"bearer":
        return False, None
    if len(parts) != 2:
        return True, None
    try:
        return True, parts[1].decode("ascii")
    except UnicodeDecodeError:
        return True, None


def refusal_without_lookup(header: bytes) -> str | None:
    """Return the 401 detail for a Bearer credential refused before any lookup (malformed
    header or token), else None: another scheme, or a token that needs its lookup."""
    bearer, raw = split_bearer(header)
    if not bearer:
        return None
    if raw is None:
        return MALFORMED_HEADER
    return INVALID_TOKEN if tokens.parse(raw) is None else None


def blocked_for(ip: str | None) -> int | None:
    """Return the seconds ``ip`` is still refused for after too many failures, if it is."""
    return _local.blocked_for(ip)


def _deny(
    request,
    reason: str,
    key=None,
    *,
    record: bool,
    recorded: bool = False,
    blocked_for: int | None = None,
) -> None:
    """Attach the precise reason to the request, for its audit event (``record``) or log line.

    ``recorded`` says an event about this request was already written; ``blocked_for`` says this
    failure used up its address's allowance, which is now refused for that many seconds.
    """
    request._keyward_denial = {
        "reason": reason,
        "key": key,
        "record": record,
        "recorded": recorded,
    }
    if blocked_for is not None:
        request._keyward_denial["blocked_for"] = blocked_for


class BearerKeyAuthentication(BaseAuthentication):
    """Authenticate ``Authorization: Bearer <key>``; refuse keys in the query string.

    Returns ``(owner, api_key)``: the owner is the User or the ServiceID, and ``api_key.principal``
    carries the tenant and the owner's current role. Every refusal is a generic 401; the reason
    goes to the audit log.
    """

    def authenticate(self, request):
        bearer, raw = split_bearer(get_authorization_header(request))
        exposed = _query_token(request)
        if not bearer and exposed is None:
            return None  # another scheme, or no credentials: not ours to refuse
        ip = client_ip(request)
        # SECURITY: a throttled address gets its 429 before any database work.
        wait = _local.blocked_for(ip)
        if wait is not None:
            _deny(request, Reason.FAILED_AUTH_THROTTLED, record=False)
            raise exceptions.Throttled(wait=wait, detail=AUTH_THROTTLED)
        if exposed is not None:
            self._refuse_exposed(request, ip, *exposed)
        if raw is None:
            self._fail(request, ip, Reason.MALFORMED, detail=MALFORMED_HEADER)
        return self.authenticate_credentials(raw, request)

    def authenticate_credentials(self, raw: str, request=None):
        """Return ``(owner, api_key)`` for a valid key, else raise AuthenticationFailed (401).

        Parse and checksum first (no query), then one query, then the checks in Python.
        """
        ip = client_ip(request) if request is not None else None
        parsed = tokens.parse(raw)
        if parsed is None:
            self._fail(request, ip, Reason.MALFORMED)
        # SECURITY: an equality lookup on the SHA-256 digest (unique index); high-entropy tokens
        # need no slow hash, and no comparison ever touches the plaintext.
        found = key_by_digest(tokens.digest(parsed.token))
        if found is None:
            self._fail(request, ip, Reason.UNKNOWN)
        key, key.owner_role = found
        owner, role, reason = self._check(key, ip, _now())
        if reason is not None:
            self._fail(request, ip, reason, key)
        key.principal = Principal(
            tenant=key.tenant,
            role=role,
            user=key.user,
            service_id=key.service_id,
            key=key,
        )
        self._touch(key, ip)
        return owner, key

    def authenticate_header(self, request) -> str:
        return INVALID_TOKEN_CHALLENGE

    @staticmethod
    def _check(key: ApiKey, ip: str | None, now: datetime):
        """Return (owner, role, None), or (None, None, reason) for a key that may not be used."""
        if key.revoked_at is not None:
            return None, None, Reason.REVOKED
        if key.is_expired(now):  # a rotated key's grace period ends at its expires_at
            return None, None, Reason.ROTATED if key.rotated_at else Reason.EXPIRED
        if not key.tenant.is_active:
            return None, None, Reason.TENANT_INACTIVE
        if key.user_id is not None:
            owner, role = key.user, key.owner_role
            if not owner.is_active:
                return None, None, Reason.OWNER_INACTIVE
            if role is None:  # removed from the tenant since the key was issued
                return None, None, Reason.OWNER_NOT_MEMBER
        else:
            owner, role = key.service_id, key.service_id.role
            if not owner.is_active or owner.tenant_id != key.tenant_id:
                return None, None, Reason.SERVICE_ID_DISABLED
        if not ip_allowed(ip, key.allowed_ips or []):
            return None, None, Reason.IP_NOT_ALLOWED_BY_KEY
        if not ip_allowed(ip, key.tenant.allowed_ips or []):
            return None, None, Reason.IP_NOT_ALLOWED_BY_TENANT
        return owner, role, None

    @staticmethod
    def _touch(key: ApiKey, ip: str | None) -> None:
        """Record the last use at most once a minute per key: a shared cache op at most once a
        minute per key and process, and one UPDATE at most once a minute per key."""
        if _local.touched_recently(key.pk):
            return
        if cache.add(f"kw:lu:{key.pk}", 1, LAST_USED_INTERVAL):
            now = _now()
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now, last_used_ip=ip)
            key.last_used_at, key.last_used_ip = now, ip

    @staticmethod
    def _count_failure(ip: str | None) -> int | None:
        """Count a failure from ``ip``; return the seconds it is now refused for, if it is."""
        hits, limit, left = ratelimit.count(
            FAILED_AUTH_SCOPE, ip or "unknown", settings.KEYWARD_FAILED_AUTH_RATE
        )
        if hits >= limit:  # the limit is used up: refuse this address until the window ends
            _local.block(ip, left)
            return left
        return None

    def _fail(
        self, request, ip, reason: str, key: ApiKey | None = None, *, detail=INVALID_TOKEN
    ) -> NoReturn:
        # SECURITY: a malformed token is no guess at any key (nothing was looked up), so it is
        # not counted against its address: the count protects the key table, and counting it
        # would cost a shared-cache round trip per forged request. A well-formed unknown key
        # is counted, and an attacker can make any guess well-formed.
        blocked = None if reason == Reason.MALFORMED else self._count_failure(ip)
        if request is not None:
            # A malformed token is refused with no database work at all, so it is logged, not
            # recorded; a well-formed one already cost a query and becomes an audit event. The
            # failure that gets its address throttled is recorded: one event per address,
            # window and process says the throttle engaged (its 429s write nothing).
            record = reason != Reason.MALFORMED
            _deny(request, reason, key, record=record, blocked_for=blocked)
        raise exceptions.AuthenticationFailed(detail, code="invalid_token")

    def _refuse_exposed(self, request, ip, param: str, value: str) -> NoReturn:
        """Refuse a key sent in the URL (400) and record it as exposed; never log the token."""
        blocked = self._count_failure(ip)
        parsed = tokens.parse(value)
        key = None
        if parsed is not None:
            key = (
                ApiKey.objects.select_related("tenant")
                .filter(digest=tokens.digest(parsed.token))
                .first()
            )
            audit.record(
                "key.exposed",
                actor=Actor.anonymous(),
                tenant=key.tenant if key else None,
                target=key,
                outcome=Outcome.DENIED,
                request=request,
                metadata={
                    "param": param[:64],
                    "method": request.method,
                    "path": request.path[:300],
                    "matched": key is not None,
                    "hint": parsed.hint,
                },
            )
            if key is not None:  # in access logs now: the tenant's leak policy applies
                from keys.leaks import key_exposure_handle

                key_exposure_handle(key=key, request=request)
        _deny(
            request,
            Reason.TOKEN_IN_QUERY,
            key,
            record=blocked is not None,
            recorded=parsed is not None,
            blocked_for=blocked,
        )
        raise InvalidRequest(TOKEN_IN_QUERY)
