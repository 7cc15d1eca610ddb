"""Verify Keyward JWTs offline: ES256 signatures against the issuer's JWKS, then the claims.

The JWKS is fetched once and kept ``cache_seconds``; a token naming an unknown ``kid`` makes it
fetch again, at most once per ``min_refresh_seconds`` (a flood of made-up kids costs one fetch
per interval, not one per request). A token verified once is remembered (bounded), so using the
same token again costs a dictionary lookup and the time checks, not a signature.
"""

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

import jwt
from jwt.algorithms import ECAlgorithm

from keyward_client import _http

REQUIRED = ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "scope"]
MAX_REMEMBERED = 10_000


class InvalidToken(Exception):
    """The token is not a valid Keyward JWT for this service; ``reason`` says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class JWKSCache:
    """The issuer's public keys by ``kid``, fetched lazily, refreshed on an unknown ``kid``."""

    def __init__(
        self,
        url: str,
        *,
        cache_seconds: float = 300,
        min_refresh_seconds: float = 30,
        fetch: Callable[[str], dict] = _http.get_json,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.url = url
        self.cache_seconds = cache_seconds
        self.min_refresh_seconds = min_refresh_seconds
        self._fetch = fetch
        self._clock = clock
        self._keys: dict[str, object] = {}
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()
        self.fetches = 0

    def key(self, kid: str):
        """Return the public key named ``kid``, or None."""
        now = self._clock()
        found = self._keys.get(kid)
        if found is not None and now - self._fetched_at < self.cache_seconds:
            return found
        with self._lock:
            if now - self._fetched_at >= self.min_refresh_seconds or not self._keys:
                self._refresh(now)
        return self._keys.get(kid)

    def _refresh(self, now: float) -> None:
        self._fetched_at = now  # a failed fetch also waits min_refresh_seconds
        self.fetches += 1
        try:
            document = self._fetch(self.url)
        except (OSError, ValueError):
            return  # keep the keys we have
        keys = {}
        for jwk in document.get("keys", []):
            if not isinstance(jwk, dict) or jwk.get("kty") != "EC" or "kid" not in jwk:
                continue
            try:
                keys[str(jwk["kid"])] = ECAlgorithm.from_jwk(jwk)
            except (jwt.InvalidKeyError, ValueError, KeyError, TypeError):
                continue
        self._keys = keys


class KeywardVerifier:
    """Verify JWTs Keyward (``issuer``) minted for ``audience``."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        jwks: JWKSCache | None = None,
        leeway: float = 30,
        clock: Callable[[], float] = time.time,
    ):
        self.issuer = issuer.rstrip("/")
        self.audience = audience
        self.jwks = jwks or JWKSCache(f"{self.issuer}/.well-known/jwks.json")
        self.leeway = leeway
        self._clock = clock
        self._decoder = jwt.PyJWT()
        self._verified: OrderedDict[str, dict] = OrderedDict()

    def verify(self, token: str) -> dict:
        """Return the token's claims; raise InvalidToken."""
        claims = self._verified.get(token)
        if claims is None:
            claims = self._verify_signature(token)
            if len(self._verified) >= MAX_REMEMBERED:
                self._verified.popitem(last=False)
            self._verified[token] = claims
        now = self._clock()
        if now >= claims["exp"] + self.leeway:
            self._verified.pop(token, None)
            raise InvalidToken("expired")
        if now + self.leeway < claims["nbf"]:
            raise InvalidToken("not_yet_valid")
        return claims

    def _verify_signature(self, token: str) -> dict:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise InvalidToken("malformed") from error
        # Only ES256: never "none", never a MAC keyed with the public key.
        if header.get("alg") != "ES256":
            raise InvalidToken("unexpected_alg")
        kid = header.get("kid")
        key = self.jwks.key(kid) if isinstance(kid, str) else None
        if key is None:
            raise InvalidToken("unknown_kid")
        try:
            return self._decoder.decode(
                token,
                key,
                algorithms=["ES256"],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": REQUIRED, "verify_exp": False, "verify_nbf": False},
            )
        except jwt.InvalidAudienceError as error:
            raise InvalidToken("wrong_audience") from error
        except jwt.InvalidIssuerError as error:
            raise InvalidToken("wrong_issuer") from error
        except jwt.PyJWTError as error:
            raise InvalidToken("invalid") from error
