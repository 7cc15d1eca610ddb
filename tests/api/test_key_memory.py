"""A key found lately is kept in the process (PostgreSQL, fail-closed audit): its next requests
cost no lookup, and each one's event is written only if the key is still as it was found, in
the same statement. So a key revoked, narrowed, demoted or disabled is served nothing once that
change has committed, even by a request that was already running (keys/lookup.py)."""

from unittest import mock

import pytest

from accounts.models import Membership
from api import keys as api_keys
from audit.models import AuditEvent
from audit.services import Actor
from keys import services
from keys.models import ApiKey
from tests import factories

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("postgresql")]

WHOAMI = "/api/v1/whoami/"


@pytest.fixture
def member_key(tenant):
    membership = factories.add_member(tenant, "admin")
    key, token = factories.make_api_key(membership, scopes=["keys:read", "members:read"])
    return membership, key, {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def _denied(key):
    return AuditEvent.objects.filter(action="api.denied", target_id=str(key.pk))


def test_a_kept_key_revoked_elsewhere_is_refused_at_once(client, member_key):
    _, key, headers = member_key
    assert client.get(WHOAMI, **headers).status_code == 200  # found, and kept
    # Revoked by another process: this one's memory still holds the key.
    services.key_revoke(actor=Actor.cli("test"), key=ApiKey.objects.get(pk=key.pk), reason="x")
    response = client.get(WHOAMI, **headers)
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"
    assert _denied(key).get().metadata["reason"] == "revoked"


def test_a_key_revoked_while_its_request_runs_is_served_nothing(client, member_key):
    _, key, headers = member_key
    assert client.get(WHOAMI, **headers).status_code == 200
    real = api_keys.whoami_data

    def revoke_then_answer(authenticated):
        services.key_revoke(actor=Actor.cli("test"), key=ApiKey.objects.get(pk=key.pk), reason="x")
        return real(authenticated)

    with mock.patch("api.keys.whoami_data", side_effect=revoke_then_answer):
        response = client.get(WHOAMI, **headers)
    assert response.status_code == 401
    assert key.name not in response.content.decode()  # nothing of the view's answer
    assert (
        not AuditEvent.objects.filter(action="api.request", metadata__status=200)
        .exclude(id__lt=_denied(key).get().id)
        .exists()
    )


def test_a_key_narrowed_elsewhere_is_answered_with_its_new_scopes(client, member_key):
    _, key, headers = member_key
    assert client.get("/api/v1/members/", **headers).status_code == 200
    ApiKey.objects.filter(pk=key.pk).update(scopes=["keys:read"])
    changed = client.get("/api/v1/members/", **headers)
    assert changed.status_code == 503 and changed.json()["code"] == "key_changed"
    assert changed["Retry-After"] == "1"
    assert "members" not in changed.content.decode().replace("key_changed", "")
    assert client.get("/api/v1/members/", **headers).status_code == 403  # looked up afresh


def test_an_owner_demoted_elsewhere_is_answered_with_the_new_role(client, member_key):
    membership, _, headers = member_key
    assert client.get(WHOAMI, **headers).json()["role"] == "admin"
    Membership.objects.filter(pk=membership.pk).update(role="auditor")
    assert client.get(WHOAMI, **headers).status_code == 503
    assert client.get(WHOAMI, **headers).json()["role"] == "auditor"


def test_an_owner_deactivated_elsewhere_is_refused(client, member_key):
    membership, key, headers = member_key
    assert client.get(WHOAMI, **headers).status_code == 200
    type(membership.user).objects.filter(pk=membership.user_id).update(is_active=False)
    assert client.get(WHOAMI, **headers).status_code == 401
    assert _denied(key).get().metadata["reason"] == "owner_inactive"


def test_an_unchanged_kept_key_costs_one_statement(client, member_key, django_assert_num_queries):
    _, _, headers = member_key
    client.get(WHOAMI, **headers)
    for _ in range(3):
        with django_assert_num_queries(1):
            assert client.get(WHOAMI, **headers).status_code == 200
