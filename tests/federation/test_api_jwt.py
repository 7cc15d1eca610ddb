"""Keyward's own API accepts its JWTs: no SQL query to authenticate, one api.request event
(with the jti and the key id) committed before the response, the same refusals as keys."""

import base64
import json
import time

import jwt
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from audit.services import Actor
from federation import revocation
from keys.services import key_revoke
from tests.federation.conftest import jwt_for, post_form

pytestmark = pytest.mark.django_db


def _bearer(token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def _queries_other_than_audit(queries) -> list[str]:
    return [q["sql"] for q in queries if "audit_auditevent" not in q["sql"]]


def test_whoami_with_a_jwt_costs_no_query_but_its_audit_event(client, tenant, owner_key):
    key, plaintext = owner_key
    token = jwt_for(client, plaintext)
    client.get("/api/v1/whoami/", **_bearer(token))  # warm: this process learns the kid
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/api/v1/whoami/", **_bearer(token))
    assert response.status_code == 200, response.content
    assert _queries_other_than_audit(queries.captured_queries) == []
    assert len(queries.captured_queries) == 1  # the event's INSERT
    body = response.json()
    assert body["tenant"] == tenant.slug and body["key"]["id"] == key.pk
    assert body["key"]["scopes"] == ["audit:read", "keys:read"]


def test_each_jwt_request_is_one_api_request_event_with_jti_and_key_id(client, owner_key):
    key, plaintext = owner_key
    token = jwt_for(client, plaintext)
    jti = jwt.decode(token, options={"verify_signature": False})["jti"]
    assert client.get("/api/v1/keys/", **_bearer(token)).status_code == 200
    event = AuditEvent.objects.get(action="api.request")
    assert event.actor_kind == "key" and event.actor_id == str(key.pk)
    assert event.tenant_id == key.tenant_id and event.target_id == str(key.pk)
    assert event.metadata["jti"] == jti and event.metadata["key_id"] == key.pk
    assert event.metadata["status"] == 200 and event.metadata["scopes"] == ["keys:read"]
    assert token not in json.dumps(event.metadata)


def test_a_jwt_only_has_the_scopes_it_was_narrowed_to(client, owner_key):
    _, plaintext = owner_key
    token = jwt_for(client, plaintext, scope="keys:read")
    response = client.get("/api/v1/audit-events/", **_bearer(token))
    assert response.status_code == 403 and response.json()["code"] == "insufficient_scope"
    assert AuditEvent.objects.filter(action="api.denied").count() == 1


def test_a_jwt_for_another_audience_is_refused(client, owner_key):
    _, plaintext = owner_key
    token = jwt_for(client, plaintext, audience="https://billing.example")
    response = client.get("/api/v1/whoami/", **_bearer(token))
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api", error="invalid_token"'


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _tampered(token: str, **changes) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims.update(changes)
    return f"{header}.{_b64(claims)}.{signature}"


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda t: _tampered(t, scope="keys:read keys:revoke"), id="more-scope"),
        pytest.param(lambda t: _tampered(t, exp=int(time.time()) + 86400), id="longer"),
        pytest.param(
            lambda t: _b64({"alg": "none", "typ": "JWT"}) + "." + t.split(".")[1] + ".",
            id="alg-none",
        ),
        pytest.param(
            lambda t: _b64({"alg": "ES256", "kid": "unknown"}) + "." + t.split(".", 1)[1],
            id="unknown-kid",
        ),
        pytest.param(
            lambda t: (
                _b64({"alg": "HS256", "kid": jwt.get_unverified_header(t)["kid"]})
                + "."
                + t.split(".", 1)[1]
            ),
            id="hs256",
        ),
        pytest.param(lambda t: t[:-4] + "AAAA", id="bad-signature"),
        pytest.param(lambda t: "eyJ" + "x" * 30 + ".e30.e30", id="garbage"),
    ],
)
def test_forged_jwts_are_refused_with_401(client, owner_key, forge):
    _, plaintext = owner_key
    token = jwt_for(client, plaintext)
    response = client.get("/api/v1/whoami/", **_bearer(forge(token)))
    assert response.status_code == 401 and response.json()["code"] == "invalid_token"
    assert not AuditEvent.objects.filter(action="api.request").exists()


def test_an_expired_jwt_is_refused(client, owner_key, monkeypatch):
    _, plaintext = owner_key
    token = jwt_for(client, plaintext)
    later = time.time() + 16 * 60
    monkeypatch.setattr(jwt.api_jwt, "datetime", _FrozenDatetime(later))
    assert client.get("/api/v1/whoami/", **_bearer(token)).status_code == 401


def test_a_jwt_used_before_still_expires(client, owner_key, monkeypatch):
    from federation import authentication

    _, plaintext = owner_key
    token = jwt_for(client, plaintext)
    assert client.get("/api/v1/whoami/", **_bearer(token)).status_code == 200
    later = time.time() + 15 * 60 + 1
    monkeypatch.setattr(authentication.time, "time", lambda: later)
    assert client.get("/api/v1/whoami/", **_bearer(token)).status_code == 401


class _FrozenDatetime:
    """What PyJWT reads as now (``datetime.now(tz=UTC)``), moved to ``at``."""

    def __init__(self, at: float):
        self.at = at

    def now(self, tz=None):
        from datetime import datetime

        return datetime.fromtimestamp(self.at, tz=tz)


def test_a_revoked_jwt_is_refused_at_once_in_this_process(
    client, owner_key, django_capture_on_commit_callbacks
):
    _, plaintext = owner_key
    token = jwt_for(client, plaintext)
    assert client.get("/api/v1/whoami/", **_bearer(token)).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        assert post_form(client, "/oauth/revoke", {"token": token}).status_code == 200
    assert client.get("/api/v1/whoami/", **_bearer(token)).status_code == 401


def test_the_jwts_of_a_revoked_key_are_refused(
    client, owner_key, django_capture_on_commit_callbacks
):
    key, plaintext = owner_key
    token = jwt_for(client, plaintext)
    with django_capture_on_commit_callbacks(execute=True):
        key_revoke(actor=Actor.cli("test"), key=key, reason="leaked")
    assert client.get("/api/v1/whoami/", **_bearer(token)).status_code == 401


def test_another_process_refuses_a_revoked_jwt_within_the_refresh_bound(
    client, owner_key, settings, django_capture_on_commit_callbacks
):
    _, plaintext = owner_key
    token = jwt_for(client, plaintext)
    assert client.get("/api/v1/whoami/", **_bearer(token)).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        post_form(client, "/oauth/revoke", {"token": token})
    revocation.forget()  # this process now knows only what Redis says, as another would
    settings.KEYWARD_JWT_REVOCATION_REFRESH = 0
    assert client.get("/api/v1/whoami/", **_bearer(token)).status_code == 401


def test_jwts_are_refused_when_the_revocation_list_cannot_be_read(client, owner_key, monkeypatch):
    _, plaintext = owner_key
    token = jwt_for(client, plaintext)

    def unreachable(now):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(revocation, "_read_all", unreachable)
    revocation.forget()
    response = client.get("/api/v1/whoami/", **_bearer(token))
    assert response.status_code == 401


def test_a_jwt_keeps_the_networks_its_key_allows(client, tenant, owner):
    from tests import factories

    _, plaintext = factories.make_api_key(owner, tenant, allowed_ips=["127.0.0.0/8"])
    token = jwt_for(client, plaintext)
    assert client.get("/api/v1/whoami/", **_bearer(token)).status_code == 200
    outside = client.get("/api/v1/whoami/", REMOTE_ADDR="203.0.113.9", **_bearer(token))
    assert outside.status_code == 401
