"""A key exchanged lately is kept in the process (PostgreSQL, fail-closed audit), as the API
keeps it: its next exchange costs one statement, the INSERT of ``token.exchanged``, made only if
the key is still as it was found. A key revoked, narrowed or demoted since is looked up afresh,
so no JWT leaves with what the key no longer grants."""

import jwt
import pytest

from accounts.models import Membership
from audit.models import AuditEvent
from audit.services import Actor
from keys.models import ApiKey
from keys.services import key_revoke
from tests import factories
from tests.federation.conftest import exchange, jwt_for

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("postgresql")]


def _scope(token: str) -> str:
    return jwt.decode(token, options={"verify_signature": False})["scope"]


@pytest.fixture
def admin_key(tenant):
    membership = factories.add_member(tenant, "admin")
    key, token = factories.make_api_key(membership, scopes=["keys:read", "members:read"])
    return membership, key, token


def test_an_exchange_of_a_kept_key_is_one_statement(client, admin_key, django_assert_num_queries):
    _, _, token = admin_key
    jwt_for(client, token)  # found, kept; its last use marked
    with django_assert_num_queries(1) as queries:
        jwt_for(client, token)
    assert "INSERT INTO" in queries.captured_queries[0]["sql"]
    assert AuditEvent.objects.filter(action="token.exchanged").count() == 2


def test_a_kept_key_revoked_elsewhere_gets_no_jwt(client, tenant, admin_key):
    _, key, token = admin_key
    jwt_for(client, token)
    # Revoked by another process: this one still keeps the key as it found it.
    key_revoke(actor=Actor.cli("test"), key=ApiKey.objects.get(pk=key.pk), reason="gone")
    response = exchange(client, token)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    assert b"access_token" not in response.content
    refused = AuditEvent.objects.get(action="token.exchange_refused")
    assert refused.metadata["reason"] == "revoked" and refused.target_id == str(key.pk)
    assert AuditEvent.objects.filter(action="token.exchanged").count() == 1  # the first only


def test_a_kept_key_narrowed_elsewhere_gets_a_jwt_with_its_new_scopes(client, admin_key):
    _, key, token = admin_key
    assert _scope(jwt_for(client, token)) == "keys:read members:read"
    ApiKey.objects.filter(pk=key.pk).update(scopes=["keys:read"])
    assert _scope(jwt_for(client, token)) == "keys:read"
    scopes = AuditEvent.objects.filter(action="token.exchanged").order_by("id")
    assert [e.metadata["scope"] for e in scopes] == ["keys:read members:read", "keys:read"]


def test_an_owner_demoted_elsewhere_gets_what_the_new_role_allows(client, tenant):
    membership = factories.add_member(tenant, "admin")
    _, token = factories.make_api_key(membership, scopes=["keys:read", "service_ids:write"])
    assert _scope(jwt_for(client, token)) == "keys:read service_ids:write"
    Membership.objects.filter(pk=membership.pk).update(role="auditor")  # no service_ids:write
    narrowed = exchange(client, token, scope="service_ids:write")
    assert narrowed.status_code == 400 and narrowed.json()["error"] == "invalid_scope"
    assert _scope(jwt_for(client, token)) == "keys:read"


def test_an_owner_removed_elsewhere_gets_no_jwt(client, admin_key):
    membership, _, token = admin_key
    jwt_for(client, token)
    Membership.objects.filter(pk=membership.pk).delete()
    response = exchange(client, token)
    assert response.status_code == 400 and b"access_token" not in response.content
    refused = AuditEvent.objects.get(action="token.exchange_refused")
    # Removing a member revokes their keys with it; either way, no JWT.
    assert refused.metadata["reason"] in {"revoked", "owner_not_member"}
