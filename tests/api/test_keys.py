"""API v1 key endpoints (api/keys.py): whoami, list, detail, revoke."""

import json

import pytest
from django.db import connection

from accounts.models import Membership
from api.keys import WhoamiOutputSerializer
from audit.models import AuditEvent
from keys import services
from keys.models import ApiKey
from tests import factories
from tests.api.world import ALL_SCOPES, bearer

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]


def test_whoami_describes_the_key_and_its_principal(api_client, world):
    response = api_client.get("/api/v1/whoami/", **bearer(world.service_token))
    assert response.json() == {
        "principal": {
            "kind": "service_id",
            "id": world.service_id.pk,
            "label": "service:deploy-bot",
        },
        "tenant": "acme",
        "role": "admin",
        "key": {
            "id": world.service_key.pk,
            "name": world.service_key.name,
            "hint": world.service_key.hint,
            "scopes": ALL_SCOPES,
            "effective_scopes": ALL_SCOPES,
            "expires_at": world.service_key.expires_at.isoformat().replace("+00:00", "Z"),
        },
    }


@pytest.mark.parametrize("caller", ["user", "service"])
@pytest.mark.parametrize("expiring", [True, False])
def test_whoami_answers_exactly_what_its_documented_serializer_gives(
    api_client, world, caller, expiring
):
    key = world.user_key if caller == "user" else world.service_key
    token = world.user_token if caller == "user" else world.service_token
    if not expiring:
        ApiKey.objects.filter(pk=key.pk).update(expires_at=None)
    Membership.objects.filter(pk=world.admin.pk).update(role="member")  # scopes over the ceiling
    response = api_client.get("/api/v1/whoami/", **bearer(token))
    authenticated = response.wsgi_request.context.authenticated[1]  # with its principal
    assert response.json() == json.loads(json.dumps(WhoamiOutputSerializer(authenticated).data))


def test_key_output_never_contains_the_digest_or_the_token(api_client, world):
    response = api_client.get("/api/v1/keys/", **bearer(world.user_token))
    body = response.content.decode()
    assert set(response.json()[0]) == {
        "id",
        "name",
        "kind",
        "owner",
        "scopes",
        "hint",
        "status",
        "created_at",
        "expires_at",
        "revoked_at",
        "last_used_at",
        "last_used_ip",
        "allowed_ips",
    }
    for key in ApiKey.objects.all():
        assert bytes(key.digest).hex() not in body
    assert world.user_token not in body


def test_member_lists_only_own_keys_and_admin_sees_the_tenants(api_client, world):
    member = factories.add_member(world.tenant, "member")
    mine, token = factories.make_api_key(member, name="mine", scopes=["keys:read"])
    listed = api_client.get("/api/v1/keys/", **bearer(token)).json()
    assert [k["id"] for k in listed] == [mine.pk]
    assert (
        api_client.get(f"/api/v1/keys/{world.target_key.pk}/", **bearer(token)).status_code == 404
    )
    everyone = api_client.get("/api/v1/keys/", **bearer(world.user_token)).json()
    assert {k["id"] for k in everyone} == set(
        ApiKey.objects.for_tenant(world.tenant).values_list("pk", flat=True)
    )


def test_revoke_through_the_api_revokes_and_records_the_key_as_actor(api_client, world):
    url = f"/api/v1/keys/{world.target_key.pk}/revoke/"
    response = api_client.post(url, {"reason": "leaked"}, format="json", **bearer(world.user_token))
    assert response.status_code == 200
    assert response.json()["status"] == "revoked"
    world.target_key.refresh_from_db()
    assert world.target_key.revoked_at is not None
    assert world.target_key.revoked_reason == "leaked"
    event = AuditEvent.objects.get(action="key.revoked")
    assert (event.actor_kind, event.actor_id) == ("key", str(world.user_key.pk))
    again = api_client.post(url, {}, format="json", **bearer(world.user_token))
    assert again.status_code == 400
    assert again.json()["code"] == "invalid"
    assert again.json()["detail"] == services.ALREADY_REVOKED


@pytest.mark.parametrize("path", ["/api/v1/keys/", "/api/v1/members/", "/api/v1/service-ids/"])
def test_lists_cost_the_same_queries_whatever_their_length(
    api_client, world, path, django_assert_num_queries
):
    for i in range(5):
        factories.add_member(world.tenant, "member")
        factories.make_service_id(world.tenant, f"bot-{i}")
        factories.make_api_key(world.admin, name=f"extra {i}")
    api_client.get(path, **bearer(world.user_token))  # last_used_at written once a minute
    # The list and the request event (with, on PostgreSQL, the check that the key found a moment
    # ago is unchanged); SQLite looks the key up on every request.
    with django_assert_num_queries(2 if connection.vendor == "postgresql" else 3):
        response = api_client.get(path, **bearer(world.user_token))
    assert response.status_code == 200 and len(response.json()) > 5


# --- Own keys, for every kind of principal -------------------------------------------------

KEY_OWNERS = {
    "member's personal token": lambda t: factories.add_member(t, "member"),
    "auditor's personal token": lambda t: factories.add_member(t, "auditor"),
    "member-role service ID's key": lambda t: factories.make_service_id(t, "bot-m", role="member"),
    "auditor-role service ID's key": lambda t: factories.make_service_id(
        t, "bot-a", role="auditor"
    ),
}


@pytest.mark.parametrize("kind", list(KEY_OWNERS))
def test_a_key_without_manage_rights_revokes_itself_and_a_sibling_not_anothers(
    api_client, tenant, kind
):
    owner = KEY_OWNERS[kind](tenant)
    caller, token = factories.make_api_key(owner, name="caller", scopes=["keys:revoke"])
    sibling, _ = factories.make_api_key(owner, name="sibling", scopes=["keys:read"])
    other_owner = factories.add_member(tenant, "member")
    other, _ = factories.make_api_key(other_owner, name="not mine")

    def revoke(key):
        return api_client.post(f"/api/v1/keys/{key.pk}/revoke/", {}, format="json", **bearer(token))

    assert revoke(other).status_code == 404  # another principal's key is not even visible
    assert revoke(sibling).status_code == 200
    assert revoke(caller).status_code == 200
    sibling.refresh_from_db()
    caller.refresh_from_db()
    assert sibling.revoked_at is not None and caller.revoked_at is not None
    other.refresh_from_db()
    assert other.revoked_at is None
