"""RFC 7662 introspection (service keys with tokens:introspect) and RFC 7009 revocation."""

import jwt
import pytest

from audit.models import AuditEvent
from audit.services import Actor
from federation.models import RevokedToken
from keys.services import key_revoke
from tests import factories
from tests.federation.conftest import jwt_for, post_form

pytestmark = pytest.mark.django_db


def introspect(client, introspector, token):
    return post_form(
        client,
        "/oauth/introspect",
        {"token": token},
        HTTP_AUTHORIZATION=f"Bearer {introspector[1]}",
    )


def test_a_jwt_is_described(client, tenant, owner_key, introspector):
    key, plaintext = owner_key
    token = jwt_for(client, plaintext, scope="keys:read")
    response = introspect(client, introspector, token)
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    body = response.json()
    claims = jwt.decode(token, options={"verify_signature": False})
    assert body["active"] is True and body["scope"] == "keys:read"
    assert body["exp"] == claims["exp"] and body["sub"] == f"user:{key.user_id}"
    assert body["tenant"] == tenant.slug and body["client_id"] == f"key:{key.pk}"
    assert body["token_type"] == "Bearer"


def test_a_key_is_described(client, tenant, owner_key, introspector):
    key, plaintext = owner_key
    body = introspect(client, introspector, plaintext).json()
    assert body["active"] is True and body["scope"] == "audit:read keys:read"
    assert body["exp"] == int(key.expires_at.timestamp()) and body["key_id"] == key.pk


@pytest.mark.parametrize(
    "token", ["", "nonsense", "kwp_" + "A" * 38, "eyJhbGciOiJub25lIn0.e30.", "a.b.c"]
)
def test_anything_else_is_inactive(client, introspector, token):
    response = introspect(client, introspector, token)
    if token == "":
        assert response.status_code == 400
    else:
        assert response.json() == {"active": False}


def test_another_tenant_s_tokens_are_inactive(client, other_tenant, introspector):
    other_owner = other_tenant.memberships.get(role="owner").user
    _, plaintext = factories.make_api_key(other_owner, other_tenant)
    assert introspect(client, introspector, plaintext).json() == {"active": False}
    token = jwt_for(client, plaintext)
    assert introspect(client, introspector, token).json() == {"active": False}


def test_after_its_key_is_revoked_a_jwt_and_the_key_are_inactive(client, owner_key, introspector):
    key, plaintext = owner_key
    token = jwt_for(client, plaintext)
    key_revoke(actor=Actor.cli("test"), key=key, reason="test")
    assert introspect(client, introspector, token).json() == {"active": False}
    assert introspect(client, introspector, plaintext).json() == {"active": False}
    assert post_form(client, "/oauth/token", {}).status_code == 400


def test_only_a_service_key_with_the_scope_may_introspect(client, tenant, owner, owner_key):
    _, personal = factories.make_api_key(owner, tenant, scopes=["tokens:introspect"])
    token = jwt_for(client, owner_key[1])
    assert introspect(client, (None, personal), token).status_code == 403
    service_id = factories.make_service_id(tenant, name="no-scope", role="admin")
    unscoped = factories.make_api_key(service_id, scopes=["keys:read"])
    response = introspect(client, unscoped, token)
    assert response.status_code == 403 and response.json()["code"] == "insufficient_scope"
    no_key = post_form(client, "/oauth/introspect", {"token": token})
    assert no_key.status_code == 401


def test_introspection_is_audited_as_an_api_request(client, owner_key, introspector):
    token = jwt_for(client, owner_key[1])
    introspect(client, introspector, token)
    event = AuditEvent.objects.get(action="api.request")
    assert event.actor_id == str(introspector[0].pk) and event.metadata["status"] == 200
    assert token not in str(event.metadata)


def test_a_revoked_jwt_is_inactive_and_revoking_is_audited_once(client, owner_key, introspector):
    key, plaintext = owner_key
    token = jwt_for(client, plaintext)
    jti = jwt.decode(token, options={"verify_signature": False})["jti"]
    for _ in range(2):
        response = post_form(client, "/oauth/revoke", {"token": token})
        assert response.status_code == 200
    assert introspect(client, introspector, token).json() == {"active": False}
    event = AuditEvent.objects.get(action="token.revoked")
    assert event.metadata["jti"] == jti and event.metadata["key_id"] == key.pk
    assert RevokedToken.objects.get().jti == jti
    # Other tokens of the same key are untouched.
    assert introspect(client, introspector, jwt_for(client, plaintext)).json()["active"] is True


@pytest.mark.parametrize("token", ["", "garbage", "kwp_" + "A" * 38, "eyJ.e30.x"])
def test_revocation_always_answers_200_and_changes_nothing_for_anything_else(client, db, token):
    response = post_form(client, "/oauth/revoke", {"token": token})
    assert response.status_code == 200
    assert not RevokedToken.objects.exists()
    assert not AuditEvent.objects.filter(action="token.revoked").exists()


def test_a_key_sent_to_revoke_stays_usable(client, owner_key, introspector):
    _, plaintext = owner_key
    post_form(client, "/oauth/revoke", {"token": plaintext})
    assert introspect(client, introspector, plaintext).json()["active"] is True
