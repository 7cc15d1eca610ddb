"""Keyless CI: an owner trusts a CI's OIDC ID tokens for a service ID; the token endpoint
exchanges them for JWTs. ID tokens are signed here (RS256); the issuer's discovery document
and JWKS are stubbed."""

import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.exceptions import PermissionDenied, ValidationError
from jwt.algorithms import RSAAlgorithm

from accounts.models import Membership
from accounts.principals import Principal
from audit.models import AuditEvent
from federation import trusts
from federation.models import WorkloadTrust
from tests import factories
from tests.federation.conftest import GRANT, post_form

pytestmark = pytest.mark.django_db

CI = "https://ci.example"
AUD = "keyward"
SUBJECT = "repo:acme/app:ref:refs/heads/main"
ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"


class FakeIssuer:
    """A CI's OIDC issuer: an RSA key, its discovery document and JWKS, ID tokens."""

    def __init__(self):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "ci-1"
        self.fetched: list[str] = []

    def fetch(self, url: str) -> dict:
        self.fetched.append(url)
        if url == f"{CI}/.well-known/openid-configuration":
            return {"issuer": CI, "jwks_uri": f"{CI}/jwks"}
        if url == f"{CI}/jwks":
            jwk = RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
            return {"keys": [{**jwk, "kid": self.kid, "alg": "RS256", "use": "sig"}]}
        raise OSError(f"unexpected fetch {url}")

    def id_token(self, *, headers=None, key=None, algorithm="RS256", **claims) -> str:
        now = int(time.time())
        body = {
            "iss": CI,
            "aud": AUD,
            "sub": SUBJECT,
            "iat": now,
            "nbf": now,
            "exp": now + 300,
            "jti": uuid.uuid4().hex,
            **claims,
        }
        return jwt.encode(
            body,
            key or self.key,
            algorithm=algorithm,
            headers={"kid": self.kid, **(headers or {})},
        )


@pytest.fixture
def ci(monkeypatch):
    issuer = FakeIssuer()
    monkeypatch.setattr(trusts, "_fetch_json", issuer.fetch)
    return issuer


@pytest.fixture
def deployer(tenant):
    return factories.make_service_id(tenant, name="deployer", role="admin")


def _owner(tenant) -> Principal:
    return Principal.of_membership(
        Membership.objects.select_related("tenant", "user").get(tenant=tenant, role="owner")
    )


@pytest.fixture
def trust(tenant, deployer):
    return trusts.trust_add(
        actor=_owner(tenant),
        service_id=deployer,
        issuer=CI,
        audience=AUD,
        subject_pattern="repo:acme/app:ref:refs/heads/*",
        scopes=["keys:read", "service_ids:read"],
    )


def exchange_id_token(client, id_token, **form):
    body = {"grant_type": GRANT, "subject_token": id_token, "subject_token_type": ID_TOKEN}
    return post_form(client, "/oauth/token", {**body, **form})


def test_an_owner_adds_a_trust_and_it_is_audited(tenant, trust, deployer):
    assert trust.service_id == deployer and trust.scopes == ["keys:read", "service_ids:read"]
    event = AuditEvent.objects.get(action="trust.added")
    assert event.target_id == str(trust.pk) and event.metadata["issuer"] == CI
    assert event.metadata["subject_pattern"] == "repo:acme/app:ref:refs/heads/*"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"issuer": "http://ci.example"}, "issuer"),
        ({"issuer": "https://ci.example?x=1"}, "issuer"),
        ({"subject_pattern": "*"}, "subject_pattern"),
        ({"subject_pattern": "repo:\tx"}, "subject_pattern"),
        ({"scopes": ["nope:nope"]}, "scopes"),
    ],
)
def test_bad_trusts_are_refused_and_leave_nothing(tenant, deployer, changes, field):
    form = {
        "issuer": CI,
        "audience": AUD,
        "subject_pattern": SUBJECT,
        "scopes": ["keys:read"],
        **changes,
    }
    with pytest.raises(ValidationError) as refused:
        trusts.trust_add(actor=_owner(tenant), service_id=deployer, **form)
    assert field in refused.value.message_dict
    assert not WorkloadTrust.objects.exists()
    assert not AuditEvent.objects.filter(action="trust.added").exists()


def test_only_owners_add_trusts(tenant, deployer, admin_member):
    with pytest.raises(PermissionDenied):
        trusts.trust_add(
            actor=Principal.of_membership(admin_member),
            service_id=deployer,
            issuer=CI,
            audience=AUD,
            subject_pattern=SUBJECT,
            scopes=["keys:read"],
        )
    assert not WorkloadTrust.objects.exists()


def test_the_portal_page_adds_a_trust_behind_a_second_factor(client, tenant, owner, deployer):
    url = f"/t/{tenant.slug}/service-ids/{deployer.pk}/trusts/"
    form = {
        "issuer": CI,
        "audience": AUD,
        "subject_pattern": SUBJECT,
        "scopes": ["keys:read"],
    }
    factories.verify_session(client, owner, sudo=False)
    response = client.post(url, form)
    assert response.status_code == 302 and "sudo" in response["Location"]
    assert not WorkloadTrust.objects.exists()
    factories.verify_session(client, owner)
    assert client.get(url).status_code == 200
    response = client.post(url, form)
    assert response.status_code == 302, response.content[:400]
    trust = WorkloadTrust.objects.get()
    page = client.get(url).content.decode()
    assert SUBJECT in page
    remove = f"{url}{trust.pk}/remove/"
    assert client.post(remove).status_code == 302
    trust.refresh_from_db()
    assert trust.removed_at is not None
    assert AuditEvent.objects.filter(action="trust.removed").count() == 1


def test_the_portal_page_is_tenant_scoped_and_owner_only(client, tenant, other_tenant, deployer):
    admin = factories.add_member(tenant, "admin")
    factories.verify_session(client, admin.user)
    url = f"/t/{tenant.slug}/service-ids/{deployer.pk}/trusts/"
    assert client.get(url).status_code == 200
    assert client.post(url, {"issuer": CI}).status_code == 403
    other = factories.make_service_id(other_tenant, name="theirs")
    assert client.get(f"/t/{tenant.slug}/service-ids/{other.pk}/trusts/").status_code == 404


def test_a_trusted_id_token_is_exchanged_for_a_jwt_for_the_service_id(
    client, tenant, ci, trust, deployer, introspector
):
    response = exchange_id_token(client, ci.id_token())
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["scope"] == "keys:read service_ids:read" and body["expires_in"] == 900
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["sub"] == f"service_id:{deployer.pk}" and claims["key_id"] is None
    assert claims["client_id"] == f"trust:{trust.pk}" and claims["tenant"] == tenant.slug
    event = AuditEvent.objects.get(action="token.exchanged")
    assert event.metadata["trust_id"] == trust.pk and event.metadata["subject"] == SUBJECT
    assert event.metadata["jti"] == claims["jti"]
    # Keyward's own API takes it, audited as the service ID, with the jti.
    token = body["access_token"]
    listed = client.get("/api/v1/keys/", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert listed.status_code == 200, listed.content
    request = AuditEvent.objects.get(action="api.request", metadata__jti=claims["jti"])
    assert request.actor_kind == "service_id" and request.actor_id == str(deployer.pk)
    introspected = post_form(
        client,
        "/oauth/introspect",
        {"token": token},
        HTTP_AUTHORIZATION=f"Bearer {introspector[1]}",
    ).json()
    assert introspected["active"] is True and introspected["client_id"] == f"trust:{trust.pk}"
    # Removed: no new exchange, and the JWT introspects inactive.
    trusts.trust_remove(actor=_owner(tenant), trust=trust)
    assert exchange_id_token(client, ci.id_token()).status_code == 401
    again = post_form(
        client,
        "/oauth/introspect",
        {"token": token},
        HTTP_AUTHORIZATION=f"Bearer {introspector[1]}",
    )
    assert again.json() == {"active": False}


def test_discovery_and_jwks_are_cached(client, ci, trust):
    for _ in range(3):
        assert exchange_id_token(client, ci.id_token()).status_code == 200
    assert ci.fetched == [f"{CI}/.well-known/openid-configuration", f"{CI}/jwks"]


def _none_token(ci) -> str:
    return jwt.encode(
        {
            "iss": CI,
            "aud": AUD,
            "sub": SUBJECT,
            "iat": int(time.time()),
            "exp": int(time.time()) + 60,
        },
        None,
        algorithm="none",
        headers={"kid": ci.kid},
    )


def _hs256_token(ci) -> str:
    body = {
        "iss": CI,
        "aud": AUD,
        "sub": SUBJECT,
        "iat": int(time.time()),
        "exp": int(time.time()) + 60,
    }
    return jwt.encode(
        body, "a-shared-secret-at-least-32-bytes-long", algorithm="HS256", headers={"kid": ci.kid}
    )


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda ci: ci.id_token(iss="https://evil.example"), "untrusted_issuer"),
        (lambda ci: ci.id_token(aud="someone-else"), "wrong_audience"),
        (
            lambda ci: ci.id_token(sub="repo:acme/app:ref:refs/heads-evil/main"),
            "subject_not_trusted",
        ),
        (lambda ci: ci.id_token(sub="repo:evil/app:ref:refs/heads/main"), "subject_not_trusted"),
        (lambda ci: ci.id_token(exp=int(time.time()) - 120, iat=int(time.time()) - 500), "expired"),
        (_none_token, "unexpected_alg"),
        (_hs256_token, "unexpected_alg"),
        (lambda ci: ci.id_token(headers={"kid": "rotated-away"}), "unknown_kid"),
        (
            lambda ci: ci.id_token(
                key=rsa.generate_private_key(public_exponent=65537, key_size=2048)
            ),
            "bad_signature_or_claims",
        ),
        (lambda ci: "not.a.jwt", "malformed_id_token"),
    ],
)
def test_untrusted_id_tokens_are_refused_with_401_and_the_reason_audited(
    client, ci, trust, make, reason
):
    response = exchange_id_token(client, make(ci))
    assert response.status_code == 401 and response.json()["error"] == "invalid_grant"
    event = AuditEvent.objects.get(action="token.exchange_refused")
    assert event.metadata["reason"] == reason and event.outcome == "denied"
    assert not AuditEvent.objects.filter(action="token.exchanged").exists()


def test_a_replayed_id_token_is_refused(client, ci, trust):
    id_token = ci.id_token()
    assert exchange_id_token(client, id_token).status_code == 200
    response = exchange_id_token(client, id_token)
    assert response.status_code == 401
    event = AuditEvent.objects.get(action="token.exchange_refused")
    assert event.metadata["reason"] == "replayed"


def test_an_id_token_scope_can_only_narrow(client, ci, trust):
    narrow = exchange_id_token(client, ci.id_token(), scope="keys:read")
    assert narrow.status_code == 200 and narrow.json()["scope"] == "keys:read"
    wide = exchange_id_token(client, ci.id_token(), scope="audit:read")
    assert wide.status_code == 400 and wide.json()["error"] == "invalid_scope"


@pytest.mark.parametrize(
    ("pattern", "subject", "matches"),
    [
        ("repo:acme/app:ref:refs/heads/main", "repo:acme/app:ref:refs/heads/main", True),
        ("repo:acme/app:*", "repo:acme/app:pull_request", True),
        ("repo:acme/app:ref:refs/heads/main", "repo:acme/app:ref:refs/heads/mainX", False),
        ("repo:acme/a?p:*", "repo:acme/app:x", False),
        ("repo:acme/[a]pp:*", "repo:acme/app:x", False),
    ],
)
def test_subject_patterns_have_only_the_star_wildcard(pattern, subject, matches):
    assert trusts.subject_matches(pattern, subject) is matches
