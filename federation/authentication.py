"""Keyward's own API accepts the JWTs it signed: ``Authorization: Bearer <jwt>``, with no SQL
query (the signature against the process's verifiers, the claims, the process's copy of the
revoked jtis and keys: ``federation.revocation``).

The request's audit event (``api.request`` / ``api.denied``, written by
``api.middleware.KeyAuditMiddleware`` before the response leaves) names the key the token was
minted from, and carries the token's ``jti`` and ``key_id`` in its metadata.

Bounds of a JWT already issued, against its key's state: a revoked key's JWTs are refused
within KEYWARD_JWT_REVOCATION_REFRESH seconds (5); a demoted owner, a removed member, a disabled
service ID or a narrowed key keep what the JWT says until it expires (at most the tenant's
``max_token_lifetime_minutes``, 15 at most). Introspection answers from the database at once.
"""

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NoReturn

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication

from accounts.models import ServiceID, Tenant, User
from accounts.principals import Principal
from common.request import context_of, decide, update_context
from federation import conf, revocation
from federation import tokens as jwts
from keys.authentication import INVALID_TOKEN, INVALID_TOKEN_CHALLENGE
from keys.networks import ip_allowed
from keys.throttling import failures

REVOKED = "revoked"
REVOCATION_UNKNOWN = "revocation_list_stale"
IP_NOT_ALLOWED = "ip_not_allowed_by_key"


def issuer_of(request) -> str:
    """Return Keyward's issuer URL: KEYWARD_JWT_ISSUER, else the origin the request came to."""
    configured = conf.settings.JWT_ISSUER
    if configured:
        return configured.rstrip("/")
    raw = getattr(request, "_request", request)
    return f"{raw.scheme}://{raw.get_host()}"


@dataclass(eq=False, slots=True)
class JWTCredential:
    """``request.auth`` of a request made with a Keyward JWT: what the API's views, scope
    permission, throttle and audit event read from a key, from the token's claims alone."""

    claims: jwts.Claims
    tenant: Tenant
    principal: Principal = field(init=False)
    owner: object = field(init=False)

    rate = ""  # the tenant's rate (kw_rate) applies
    via_jwt = True  # its request events may be batched (KEYWARD_AUDIT_JWT_EVENTS)

    def __post_init__(self) -> None:
        kind, _, owner_id = self.claims.sub.partition(":")
        user = service_id = None
        if kind == "user":
            user = User(pk=int(owner_id), is_active=True)
        else:
            service_id = ServiceID(pk=int(owner_id), tenant=self.tenant, role=self.claims.role)
        self.owner = user or service_id
        self.principal = Principal(
            tenant=self.tenant, role=self.claims.role, user=user, service_id=service_id, key=self
        )

    # What the views and the audit event read from a key. A token minted for a CI's ID token
    # (keyless, no key) stands for its service ID.
    @property
    def pk(self):
        if self.claims.key_id is None:
            return self.service_id_id
        return self.claims.key_id

    @property
    def audit_kind(self) -> str:
        return "key" if self.claims.key_id is not None else "service_id"

    @property
    def throttled_as_key(self) -> bool:
        """keys.throttling counts a key's JWTs against that key's rate."""
        return self.claims.key_id is not None

    id = pk

    @property
    def tenant_id(self) -> int:
        return self.tenant.pk

    @property
    def user(self):
        return self.principal.user

    @property
    def service_id(self):
        return self.principal.service_id

    @property
    def user_id(self):
        return self.user.pk if self.user is not None else None

    @property
    def service_id_id(self):
        return self.service_id.pk if self.service_id is not None else None

    @property
    def scopes(self) -> list[str]:
        return list(self.claims.scopes)

    @property
    def name(self) -> str:
        return f"jwt {self.claims.jti}"

    @property
    def hint(self) -> str:
        return ""

    @property
    def label(self) -> str:
        if self.claims.key_id is None:
            return f"{self.claims.sub} ({self.claims.client_id}, jwt)"
        return f"key {self.claims.key_id} (jwt)"

    @property
    def expires_at(self) -> datetime:
        return datetime.fromtimestamp(self.claims.exp, tz=UTC)

    @property
    def audit_metadata(self) -> dict:
        """What a request's event adds about the token (never the token)."""
        return {
            "jti": self.claims.jti,
            "key_id": self.claims.key_id,
            "principal": self.claims.sub,
            "via": "jwt",
        }


MAX_VERIFIED = 10_000
# (token, issuer) -> its credential: the signature is checked once per process and token, as a
# JWT cannot change, and the credential built once. The credential and the stand-ins for its
# tenant and owner are shared by the requests made with that token in this process: nothing
# saves or changes them.
_verified_tokens: dict[tuple[str, str], JWTCredential] = {}


def _credential(raw: str, issuer: str) -> JWTCredential:
    """Return the credential of a JWT for Keyward, its expiry checked on every use."""
    credential = _verified_tokens.get((raw, issuer))
    if credential is None:
        claims = jwts.verify(raw, issuer=issuer, audience=issuer)
        tenant = Tenant(pk=claims.tenant_id, slug=claims.tenant, key_rate=claims.key_rate)
        credential = JWTCredential(claims, tenant)
        if len(_verified_tokens) >= MAX_VERIFIED:
            _verified_tokens.clear()
        _verified_tokens[(raw, issuer)] = credential
    elif credential.claims.exp <= time.time():
        _verified_tokens.pop((raw, issuer), None)
        raise jwts.InvalidJWT("expired")
    return credential


def forget_verified() -> None:
    """Forget the tokens this process verified (tests)."""
    _verified_tokens.clear()


class KeywardJWTAuthentication(BaseAuthentication):
    """Authenticate ``Authorization: Bearer <jwt>`` with a JWT Keyward signed for itself (its
    ``aud`` is Keyward's issuer URL). Anything that is not a JWT is left to
    ``BearerKeyAuthentication``. Every refusal is the same generic 401; the reason goes to the
    audit log."""

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if header[:7].lower() != "bearer ":
            return None
        raw = header[7:].strip()
        if not jwts.looks_like_jwt(raw) or " " in raw:
            return None
        context = context_of(request)
        issuer = issuer_of(request)
        try:
            credential = _credential(raw, issuer)
        except jwts.InvalidJWT as invalid:
            self._fail(request, context.ip, invalid.reason, guess=invalid.reason != "expired")
        claims = credential.claims
        revoked = revocation.is_revoked(claims.jti, claims.key_id)
        if revoked is None:
            self._fail(request, context.ip, REVOCATION_UNKNOWN, guess=False)
        if revoked:
            self._fail(request, context.ip, REVOKED, guess=False)
        if not (
            ip_allowed(context.ip, list(claims.allowed_ips))
            and ip_allowed(context.ip, list(claims.tenant_allowed_ips))
        ):
            self._fail(request, context.ip, IP_NOT_ALLOWED, guess=False)
        outcome = credential.owner, credential
        update_context(request, keyed=True, authenticated=outcome)
        return outcome

    def authenticate_header(self, request) -> str:
        return INVALID_TOKEN_CHALLENGE

    def _fail(self, request, ip, reason: str, *, guess: bool) -> NoReturn:
        update_context(request, keyed=True)
        blocked = failures.blocked_for(ip)
        if blocked is not None:
            decide(request, reason="failed_auth_throttled", record=False)
            raise exceptions.Throttled(wait=blocked)
        # SECURITY: a JWT that does not verify may be a forgery: counted against its address,
        # like a guessed key. Expired, revoked or out-of-network tokens are not guesses.
        now_blocked = failures.count(ip) if guess else None
        decide(request, reason=f"jwt_{reason}", record=False, blocked_for=now_blocked)
        raise exceptions.AuthenticationFailed(INVALID_TOKEN, code="invalid_token")
