"""Keyward's JWTs: the claims, minting and verifying (PyJWT with ``cryptography``, ES256).

Claims: ``iss``, ``sub`` (``user:<id>`` or ``service_id:<id>``), ``aud`` (Keyward's issuer URL
unless the exchange asked for another audience), ``exp`` (at most the tenant's
``max_token_lifetime_minutes``, never past the key's own expiry), ``iat``, ``nbf``, ``jti``
(128 random bits), ``tenant`` (slug), ``tenant_id``, ``scope`` (space-separated), ``role`` (the
owner's role when minted), ``key_id`` (null for a token minted from a CI ID token), ``client_id``
(``key:<id>`` or ``trust:<id>``); where set, ``kw_ips`` / ``kw_tenant_ips`` (the networks the
key and its tenant allow) and ``kw_rate`` (the tenant's per-key rate).
"""

import secrets
import time
from dataclasses import dataclass

import jwt

from federation import signing

JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"
REQUIRED_CLAIMS = ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "tenant_id", "scope"]
_DECODER = jwt.PyJWT()


def looks_like_jwt(raw: str) -> bool:
    """Return whether ``raw`` has the shape of a compact JWS (no Keyward key has a dot)."""
    return raw.startswith("eyJ") and raw.count(".") == 2


@dataclass(frozen=True, slots=True)
class Claims:
    """A verified Keyward JWT."""

    jti: str
    sub: str
    tenant: str
    tenant_id: int
    scopes: tuple[str, ...]
    role: str
    key_id: int | None
    client_id: str
    exp: int
    iat: int
    aud: str
    allowed_ips: tuple[str, ...] = ()
    tenant_allowed_ips: tuple[str, ...] = ()
    key_rate: str = ""

    @classmethod
    def of(cls, payload: dict) -> "Claims":
        aud = payload["aud"]
        return cls(
            jti=str(payload["jti"]),
            sub=str(payload["sub"]),
            tenant=str(payload.get("tenant", "")),
            tenant_id=int(payload["tenant_id"]),
            scopes=tuple(str(payload["scope"]).split()),
            role=str(payload.get("role", "")),
            key_id=int(payload["key_id"]) if payload.get("key_id") is not None else None,
            client_id=str(payload.get("client_id", "")),
            exp=int(payload["exp"]),
            iat=int(payload["iat"]),
            aud=aud if isinstance(aud, str) else " ".join(aud),
            allowed_ips=tuple(payload.get("kw_ips") or ()),
            tenant_allowed_ips=tuple(payload.get("kw_tenant_ips") or ()),
            key_rate=str(payload.get("kw_rate") or ""),
        )


def mint(
    *,
    issuer: str,
    audience: str,
    subject: str,
    tenant,
    scopes: list[str],
    role: str,
    key_id: int | None,
    client_id: str,
    lifetime: int,
    allowed_ips: list[str] | None = None,
    now: float | None = None,
) -> tuple[str, dict]:
    """Return (the signed JWT, its claims), valid from now for ``lifetime`` seconds."""
    now = int(now if now is not None else time.time())
    claims = {
        "iss": issuer,
        "sub": subject,
        "aud": audience,
        "exp": now + lifetime,
        "iat": now,
        "nbf": now,
        "jti": secrets.token_urlsafe(16),
        "tenant": tenant.slug,
        "tenant_id": tenant.pk,
        "scope": " ".join(scopes),
        "role": role,
        "key_id": key_id,
        "client_id": client_id,
    }
    # Private claims Keyward's own API enforces without a query, only where set: the networks
    # the key and its tenant allow, and the tenant's per-key rate.
    if allowed_ips:
        claims["kw_ips"] = list(allowed_ips)
    if tenant.allowed_ips:
        claims["kw_tenant_ips"] = list(tenant.allowed_ips)
    if tenant.key_rate:
        claims["kw_rate"] = tenant.key_rate
    signer = signing.current_signer()
    token = jwt.encode(
        claims,
        signer.private_key,
        algorithm=signing.ALGORITHM,
        headers={"kid": signer.kid, "typ": "JWT"},
    )
    return token, claims


class InvalidJWT(Exception):
    """A JWT Keyward did not sign, or no longer accepts; ``reason`` is for the audit log."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def verify(raw: str, *, issuer: str, audience: str | None) -> Claims:
    """Return the claims of a JWT Keyward signed, unexpired, for ``audience`` (None: any);
    raise InvalidJWT. No query unless its ``kid`` is unknown to this process."""
    try:
        header = jwt.get_unverified_header(raw)
    except jwt.PyJWTError as error:
        raise InvalidJWT("malformed_jwt") from error
    # SECURITY: only our algorithm: never "none", never a MAC keyed with a public key.
    if header.get("alg") != signing.ALGORITHM:
        raise InvalidJWT("unexpected_alg")
    kid = header.get("kid")
    key = signing.verifier(kid) if isinstance(kid, str) else None
    if key is None:
        raise InvalidJWT("unknown_kid")
    try:
        payload = _DECODER.decode(
            raw,
            key,
            algorithms=[signing.ALGORITHM],
            issuer=issuer,
            audience=audience,
            options={"require": REQUIRED_CLAIMS, "verify_aud": audience is not None},
        )
        return Claims.of(payload)
    except jwt.ExpiredSignatureError as error:
        raise InvalidJWT("expired") from error
    except jwt.InvalidAudienceError as error:
        raise InvalidJWT("wrong_audience") from error
    except jwt.InvalidIssuerError as error:
        raise InvalidJWT("wrong_issuer") from error
    except jwt.InvalidSignatureError as error:
        raise InvalidJWT("bad_signature") from error
    except (jwt.PyJWTError, KeyError, TypeError, ValueError) as error:
        raise InvalidJWT("invalid_claims") from error
