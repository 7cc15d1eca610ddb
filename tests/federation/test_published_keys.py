"""The published keys: JWKS, RFC 8414 metadata, rotation, private keys sealed at rest."""

import json
from datetime import timedelta

import jwt
import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts import crypto
from audit.models import AuditEvent
from federation import signing
from federation.models import SigningKey
from tests.federation.conftest import ISSUER, jwt_for

pytestmark = pytest.mark.django_db


def test_the_metadata_names_every_endpoint(client, db):
    body = client.get("/.well-known/oauth-authorization-server").json()
    assert body["issuer"] == ISSUER
    assert body["token_endpoint"] == f"{ISSUER}/oauth/token"
    assert body["jwks_uri"] == f"{ISSUER}/.well-known/jwks.json"
    assert body["introspection_endpoint"] == f"{ISSUER}/oauth/introspect"
    assert body["revocation_endpoint"] == f"{ISSUER}/oauth/revoke"
    assert body["grant_types_supported"] == ["urn:ietf:params:oauth:grant-type:token-exchange"]
    assert "tokens:introspect" in body["scopes_supported"]


def test_the_issuer_can_be_set(client, db, settings):
    settings.KEYWARD_JWT_ISSUER = "https://keyward.example/"
    body = client.get("/.well-known/oauth-authorization-server").json()
    assert body["issuer"] == "https://keyward.example"
    assert body["jwks_uri"] == "https://keyward.example/.well-known/jwks.json"


def test_rotation_keeps_the_previous_key_published_for_the_longest_lifetime(client, owner_key):
    old_token = jwt_for(client, owner_key[1])
    old_kid = jwt.get_unverified_header(old_token)["kid"]
    call_command("jwt_rotate_key")
    event = AuditEvent.objects.filter(action="signing_key.rotated").latest("id")
    assert event.actor_kind == "cli" and event.metadata["retired"] == [old_kid]
    new_token = jwt_for(client, owner_key[1])
    new_kid = jwt.get_unverified_header(new_token)["kid"]
    assert new_kid != old_kid
    kids = [k["kid"] for k in client.get("/.well-known/jwks.json").json()["keys"]]
    assert kids == [new_kid, old_kid]
    # Both tokens still authenticate on Keyward's own API.
    for token in (old_token, new_token):
        response = client.get("/api/v1/whoami/", HTTP_AUTHORIZATION=f"Bearer {token}")
        assert response.status_code == 200
    later = timezone.now() + timedelta(seconds=signing.publish_seconds() + 1)
    assert [k["kid"] for k in signing.jwks(later)["keys"]] == [new_kid]


def test_only_public_halves_are_published(client, owner_key):
    jwt_for(client, owner_key[1])
    (jwk,) = client.get("/.well-known/jwks.json").json()["keys"]
    assert set(jwk) == {"kty", "crv", "x", "y", "kid", "use", "alg"}
    assert jwk["alg"] == "ES256" and jwk["kid"] == signing.thumbprint(jwk)


def test_private_keys_are_sealed_and_bound_to_their_kid(db):
    first = signing.signing_key_rotate(actor=signing.audit_actor_system())
    second = signing.signing_key_rotate(actor=signing.audit_actor_system())
    assert "PRIVATE" not in first.sealed_private_key
    assert first.sealed_private_key.startswith("v1.")
    with pytest.raises(crypto.UnsealError):
        crypto.unseal(
            first.sealed_private_key, context=f"federation.signing_key:{second.kid}".encode()
        )
    assert SigningKey.objects.filter(retired_at=None).get() == second


def test_the_openapi_schema_documents_the_oauth_endpoints(client, db):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    schema = json.loads(response.content)
    for path in (
        "/oauth/token",
        "/oauth/introspect",
        "/oauth/revoke",
        "/.well-known/jwks.json",
        "/.well-known/oauth-authorization-server",
    ):
        assert path in schema["paths"], path
    assert schema["components"]["securitySchemes"]["bearerJWT"]["bearerFormat"] == "JWT"
    introspect = schema["paths"]["/oauth/introspect"]["post"]
    assert introspect["x-required-scopes"] == ["tokens:introspect"]
    assert (
        "application/x-www-form-urlencoded"
        in (schema["paths"]["/oauth/token"]["post"]["requestBody"]["content"])
    )
