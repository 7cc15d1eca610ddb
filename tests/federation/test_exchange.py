"""RFC 8693 token exchange at POST /oauth/token: a Keyward key for a short-lived ES256 JWT."""

from datetime import timedelta

import jwt
import pytest
from django.utils import timezone

from accounts.models import Membership
from audit.models import AuditEvent
from audit.services import Actor
from federation import services
from keys.models import ApiKey
from keys.services import key_revoke
from tests import factories
from tests.federation.conftest import ISSUER, exchange, jwt_for

pytestmark = pytest.mark.django_db


def _claims(client, token: str, audience=ISSUER) -> dict:
    jwks = client.get("/.well-known/jwks.json").json()
    kid = jwt.get_unverified_header(token)["kid"]
    (jwk,) = [k for k in jwks["keys"] if k["kid"] == kid]
    key = jwt.PyJWK(jwk).key
    return jwt.decode(token, key, algorithms=["ES256"], audience=audience, issuer=ISSUER)


def test_a_key_is_exchanged_for_a_jwt_with_the_documented_claims(client, tenant, owner_key):
    key, plaintext = owner_key
    response = exchange(client, plaintext)
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["issued_token_type"] == "urn:ietf:params:oauth:token-type:jwt"
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 15 * 60
    assert jwt.get_unverified_header(body["access_token"])["alg"] == "ES256"
    claims = _claims(client, body["access_token"])
    assert claims["sub"] == f"user:{key.user_id}"
    assert claims["aud"] == ISSUER
    assert claims["tenant"] == tenant.slug and claims["tenant_id"] == tenant.pk
    assert claims["key_id"] == key.pk and claims["client_id"] == f"key:{key.pk}"
    assert claims["scope"] == "audit:read keys:read" == body["scope"]
    assert claims["exp"] - claims["iat"] == 900 and claims["nbf"] == claims["iat"]
    assert len(claims["jti"]) >= 20


def test_every_exchange_is_audited_with_its_key_and_jti_never_the_token(client, owner_key):
    key, plaintext = owner_key
    token = jwt_for(client, plaintext)
    claims = jwt.decode(token, options={"verify_signature": False})
    event = AuditEvent.objects.get(action="token.exchanged")
    assert event.target_id == str(key.pk) and event.actor_kind == "key"
    assert event.metadata["jti"] == claims["jti"] and event.metadata["key_id"] == key.pk
    assert plaintext not in str(event.metadata) and token not in str(event.metadata)


def test_the_lifetime_follows_the_tenant_policy_and_the_key_expiry(client, tenant, owner):
    tenant.max_token_lifetime_minutes = 5
    tenant.save(update_fields=["max_token_lifetime_minutes"])
    _, plaintext = factories.make_api_key(owner, tenant)
    assert exchange(client, plaintext).json()["expires_in"] == 300
    key, plaintext = factories.make_api_key(owner, tenant)
    ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() + timedelta(seconds=100))
    assert 95 <= exchange(client, plaintext).json()["expires_in"] <= 100


def test_scope_can_only_narrow(client, owner_key):
    _, plaintext = owner_key
    narrow = exchange(client, plaintext, scope="keys:read")
    assert narrow.status_code == 200 and narrow.json()["scope"] == "keys:read"
    wider = exchange(client, plaintext, scope="keys:read members:read")
    assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"
    refused = AuditEvent.objects.get(action="token.exchange_refused")
    assert refused.metadata["reason"] == "scope_too_wide" and refused.outcome == "denied"


def test_the_scope_is_what_the_owner_s_current_role_still_allows(client, tenant, admin_member):
    _, plaintext = factories.make_api_key(admin_member, scopes=["keys:read", "service_ids:write"])
    Membership.objects.filter(pk=admin_member.pk).update(role="member")
    assert exchange(client, plaintext).json()["scope"] == "keys:read"


def test_a_jwt_cannot_be_exchanged_for_another(client, owner_key):
    _, plaintext = owner_key
    token = jwt_for(client, plaintext)
    response = exchange(client, token)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    event = AuditEvent.objects.get(action="token.exchange_refused")
    assert event.metadata["reason"] == "jwt_not_exchangeable"


@pytest.mark.parametrize(
    "requested", ["urn:ietf:params:oauth:token-type:refresh_token", "kw_key", "api_key"]
)
def test_a_key_is_never_exchanged_for_anything_but_a_jwt(client, owner_key, requested):
    _, plaintext = owner_key
    response = exchange(client, plaintext, requested_token_type=requested)
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


def test_a_revoked_key_is_refused_and_the_refusal_audited(client, tenant, owner_key):
    key, plaintext = owner_key
    key_revoke(actor=Actor.cli("test"), key=key, reason="test")
    response = exchange(client, plaintext)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    event = AuditEvent.objects.get(action="token.exchange_refused")
    assert event.metadata["reason"] == "revoked" and event.target_id == str(key.pk)
    assert event.tenant_id == tenant.pk


@pytest.mark.parametrize(
    "subject",
    ["kwp_" + "A" * 38, "not a key", "eyJhbGciOiJub25lIn0.e30.", "x" * 300],
)
def test_unknown_or_malformed_subjects_are_refused_and_audited(client, db, subject):
    response = exchange(client, subject)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    assert AuditEvent.objects.filter(action="token.exchange_refused").count() == 1
    assert subject not in str(AuditEvent.objects.values_list("metadata", flat=True)[0])


def test_failed_exchanges_are_limited_per_address(client, db, settings):
    settings.KEYWARD_FAILED_AUTH_RATE = "3/min"
    statuses = [exchange(client, "kwp_" + "B" * 38).status_code for _ in range(5)]
    assert statuses[:3] == [400, 400, 400] and statuses[-1] == 429
    assert AuditEvent.objects.filter(action="token.exchange_refused").count() == 3


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"grant_type": "client_credentials"}, "unsupported_grant_type"),
        ({"subject_token_type": "urn:x"}, "invalid_request"),
        ({"subject_token": ""}, "invalid_request"),
        ({"audience": "two words"}, "invalid_target"),
    ],
)
def test_bad_requests_get_rfc_6749_errors(client, owner_key, form, error):
    _, plaintext = owner_key
    response = exchange(client, plaintext, **form)
    assert response.status_code == 400 and response.json()["error"] == error


def test_an_audience_is_named_in_the_token(client, owner_key):
    _, plaintext = owner_key
    token = jwt_for(client, plaintext, audience="https://billing.example")
    assert _claims(client, token, audience="https://billing.example")["aud"] == (
        "https://billing.example"
    )


def test_a_json_body_is_accepted_too(client, owner_key):
    _, plaintext = owner_key
    body = {
        "grant_type": services.GRANT_TYPE,
        "subject_token": plaintext,
        "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
    }
    assert client.post("/oauth/token", body, content_type="application/json").status_code == 200


def test_no_token_leaves_when_its_exchange_cannot_be_audited(client, owner_key, monkeypatch):
    from django.db import DatabaseError

    from audit import writer

    def broken(event, condition=None):
        raise DatabaseError("the audit table is unreachable")

    monkeypatch.setattr(writer, "write_now", broken)
    _, plaintext = owner_key
    response = exchange(client, plaintext)
    assert response.status_code == 503 and b"access_token" not in response.content
    assert response.json()["code"] == "audit_unavailable"


@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/revoke", "/oauth/introspect"])
@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b'{"subject_token": ["a", "b"], "grant_type": {"x": 1}}', "application/json"),
        (b"subject_token=%FF%FE&grant_type=%00", "application/x-www-form-urlencoded"),
        (b"token=" + b"A" * 20000, "application/x-www-form-urlencoded"),
        (b"plain text", "text/plain"),
        (b"\xff\xfe", "application/x-www-form-urlencoded"),
        (b"[" * 100_000 + b"]" * 100_000, "application/json"),
    ],
)
def test_bad_bodies_get_a_4xx_json_answer_never_a_500(client, db, path, body, content_type):
    response = client.post(path, body, content_type=content_type)
    assert 400 <= response.status_code < 500 or (
        path == "/oauth/revoke" and response.status_code == 200
    ), (response.status_code, response.content[:200])
    assert response["Content-Type"].startswith("application/json")


@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/revoke", "/oauth/introspect"])
def test_get_on_the_oauth_endpoints_is_405(client, db, path):
    assert client.get(path).status_code in (401, 405)
