"""Django REST framework: accept Keyward JWTs (and, if configured, opaque Keyward keys) and
require Keyward scopes.

Settings (``KEYWARD_CLIENT`` in Django settings): ``ISSUER`` (Keyward's URL), ``AUDIENCE``
(this service, as named when exchanging), optional ``JWKS_URL``, ``INTROSPECTION_URL``,
``INTROSPECTION_KEY`` (a Keyward service key with ``tokens:introspect``: opaque keys are then
accepted too), ``LEEWAY`` (30 s), ``JWKS_CACHE_SECONDS`` (300), ``JWKS_MIN_REFRESH_SECONDS``
(30), ``INTROSPECTION_CACHE_SECONDS`` (30).
"""

from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission

from keyward_client import introspection as _introspect
from keyward_client.verify import InvalidToken, JWKSCache, KeywardVerifier

INVALID = "Invalid or expired token."
MISSING_SCOPE = "This token lacks the scope %s."
NO_REQUIRED_SCOPES = "%s uses HasKeywardScope but declares no required_scopes."


@dataclass(frozen=True)
class KeywardPrincipal:
    """``request.user``: who the token acts for, in which tenant, with which scopes."""

    sub: str
    tenant: str
    scopes: frozenset[str]
    claims: dict = field(repr=False, compare=False)
    is_authenticated = True
    is_anonymous = False
    is_staff = False

    @property
    def pk(self) -> str:
        return self.sub


_verifier: KeywardVerifier | None = None


def _config() -> dict:
    config = getattr(settings, "KEYWARD_CLIENT", None) or {}
    if not config.get("ISSUER") or not config.get("AUDIENCE"):
        raise ImproperlyConfigured("KEYWARD_CLIENT needs ISSUER and AUDIENCE.")
    return config


def verifier() -> KeywardVerifier:
    """The process's verifier (its JWKS cache and remembered tokens), made from the settings."""
    global _verifier
    if _verifier is None:
        config = _config()
        issuer = config["ISSUER"].rstrip("/")
        _verifier = KeywardVerifier(
            issuer=issuer,
            audience=config["AUDIENCE"],
            leeway=config.get("LEEWAY", 30),
            jwks=JWKSCache(
                config.get("JWKS_URL") or f"{issuer}/.well-known/jwks.json",
                cache_seconds=config.get("JWKS_CACHE_SECONDS", 300),
                min_refresh_seconds=config.get("JWKS_MIN_REFRESH_SECONDS", 30),
            ),
        )
    return _verifier


def _settings_changed(*, setting, **kwargs) -> None:
    global _verifier
    if setting == "KEYWARD_CLIENT":
        _verifier = None
        _introspect.forget()


setting_changed.connect(_settings_changed)


class KeywardJWTAuthentication(BaseAuthentication):
    """``Authorization: Bearer <Keyward JWT>``, verified offline; an opaque Keyward key is
    introspected when ``INTROSPECTION_KEY`` is set. Returns (KeywardPrincipal, claims)."""

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if header[:7].lower() != "bearer ":
            return None
        token = header[7:].strip()
        if not token or " " in token:
            raise exceptions.AuthenticationFailed(INVALID)
        if token.count(".") == 2:
            try:
                claims = verifier().verify(token)
            except InvalidToken:
                raise exceptions.AuthenticationFailed(INVALID) from None
        else:
            claims = self._introspected(token)
        principal = KeywardPrincipal(
            sub=str(claims.get("sub", "")),
            tenant=str(claims.get("tenant", "")),
            scopes=frozenset(str(claims.get("scope", "")).split()),
            claims=claims,
        )
        return principal, claims

    @staticmethod
    def _introspected(token: str) -> dict:
        config = _config()
        key = config.get("INTROSPECTION_KEY")
        if not key:
            raise exceptions.AuthenticationFailed(INVALID)
        url = config.get("INTROSPECTION_URL") or f"{config['ISSUER'].rstrip('/')}/oauth/introspect"
        answer = _introspect.introspect(
            token,
            url=url,
            service_key=key,
            cache_seconds=config.get("INTROSPECTION_CACHE_SECONDS", 30),
        )
        if answer.get("active") is not True:
            raise exceptions.AuthenticationFailed(INVALID)
        return answer

    def authenticate_header(self, request) -> str:
        return 'Bearer error="invalid_token"'


class HasKeywardScope(BasePermission):
    """Grant a request whose token holds every scope in the view's ``required_scopes`` (a list,
    or a dict of HTTP method to list)."""

    def has_permission(self, request, view) -> bool:
        declared = getattr(view, "required_scopes", None)
        if declared is None:
            raise ImproperlyConfigured(NO_REQUIRED_SCOPES % type(view).__name__)
        if isinstance(declared, dict):
            declared = declared.get(
                request.method, declared.get("GET" if request.method == "HEAD" else "", [])
            )
        principal = request.user
        if not isinstance(principal, KeywardPrincipal):
            return False
        missing = [s for s in declared if s not in principal.scopes]
        if missing:
            raise exceptions.PermissionDenied(MISSING_SCOPE % ", ".join(missing))
        return True
