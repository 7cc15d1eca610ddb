"""The client's own tests: no database, no network. Run alone (``pytest clients/python/tests``)
they configure a minimal Django; inside Keyward's suite they use its settings."""

import os
import time

import django
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from jwt.algorithms import ECAlgorithm

if not os.environ.get("DJANGO_SETTINGS_MODULE") and not settings.configured:
    settings.configure(
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "rest_framework"],
        REST_FRAMEWORK={"UNAUTHENTICATED_USER": None},
    )
    django.setup()

ISSUER = "https://keyward.example"
AUDIENCE = "https://reports.example"


class Issuer:
    """A Keyward stand-in: an ES256 key, its JWKS, tokens signed with it."""

    def __init__(self, kid: str = "k1"):
        self.keys = {}
        self.fetches = 0
        self.add_key(kid)

    def add_key(self, kid: str) -> None:
        self.keys[kid] = ec.generate_private_key(ec.SECP256R1())
        self.kid = kid

    def jwks(self, url: str) -> dict:
        self.fetches += 1
        keys = []
        for kid, private in self.keys.items():
            jwk = ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
            keys.append({**jwk, "kid": kid, "alg": "ES256", "use": "sig"})
        return {"keys": keys}

    def token(self, *, kid: str | None = None, headers=None, **claims) -> str:
        now = int(time.time())
        body = {
            "iss": ISSUER,
            "sub": "service_id:7",
            "aud": AUDIENCE,
            "exp": now + 600,
            "iat": now,
            "nbf": now,
            "jti": f"jti-{now}-{len(claims)}-{id(claims)}",
            "tenant": "acme",
            "scope": "reports:read",
            **claims,
        }
        kid = kid or self.kid
        return jwt.encode(
            body, self.keys[kid], algorithm="ES256", headers={"kid": kid, **(headers or {})}
        )


@pytest.fixture
def issuer() -> Issuer:
    return Issuer()
