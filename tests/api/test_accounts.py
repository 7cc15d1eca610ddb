"""API v1 service ID and member endpoints (api/accounts.py)."""

import pytest

from accounts import services as account_services
from accounts.models import ServiceID
from audit.models import AuditEvent
from tests.api.world import (
    bearer,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]


def test_service_key_creates_and_changes_service_ids_recorded_as_the_key(api_client, world):
    created = api_client.post(
        "/api/v1/service-ids/",
        {"name": "backup-bot", "role": "member", "description": "nightly"},
        format="json",
        **bearer(world.service_token),
    )
    assert created.status_code == 201
    service_id = ServiceID.objects.get(name="backup-bot")
    assert service_id.created_by is None
    event = AuditEvent.objects.get(action="service_id.created", target_id=str(service_id.pk))
    assert (event.actor_kind, event.actor_id) == ("key", str(world.service_key.pk))
    changed = api_client.patch(
        f"/api/v1/service-ids/{service_id.pk}/",
        {"is_active": False},
        format="json",
        **bearer(world.service_token),
    )
    assert changed.json()["is_active"] is False
    assert AuditEvent.objects.filter(action="service_id.disabled").exists()


def test_service_id_input_is_validated_with_field_errors(api_client, world):
    response = api_client.post(
        "/api/v1/service-ids/",
        {"name": "not a slug", "role": "emperor"},
        format="json",
        **bearer(world.user_token),
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert set(body["errors"]) == {"name", "role"}
    assert not ServiceID.objects.filter(name="not a slug").exists()


def test_duplicate_service_id_name_is_400_and_admin_cannot_grant_owner(api_client, world):
    duplicate = api_client.post(
        "/api/v1/service-ids/",
        {"name": "deploy-bot", "role": "member"},
        format="json",
        **bearer(world.user_token),
    )
    assert duplicate.status_code == 400
    assert duplicate.json()["code"] == "invalid"
    owner_role = api_client.post(
        "/api/v1/service-ids/",
        {"name": "boss-bot", "role": "owner"},
        format="json",
        **bearer(world.user_token),
    )
    assert owner_role.status_code == 403
    assert owner_role.json() == {
        "code": "permission_denied",
        "detail": account_services.NOT_ALLOWED_ROLE % {"role": "owner"},
    }


def test_members_list_shows_roles(api_client, world):
    response = api_client.get("/api/v1/members/", **bearer(world.user_token))
    roles = {m["email"]: m["role"] for m in response.json()}
    assert roles[world.admin.user.email] == "admin"
    assert roles["owner@acme.example"] == "owner"


def test_a_service_id_name_differing_only_in_case_is_400_not_500(api_client, world):
    response = api_client.post(
        "/api/v1/service-ids/",
        {"name": "Deploy-Bot", "role": "member"},
        format="json",
        **bearer(world.user_token),
    )
    assert response.status_code == 400
    assert response.json()["errors"] == {
        "name": [account_services.SERVICE_ID_NAME_TAKEN % {"name": "Deploy-Bot"}]
    }
    assert not ServiceID.objects.filter(name="Deploy-Bot").exists()


def test_a_key_creates_service_ids_only_with_the_lowest_role(api_client, world):
    for role in ("admin", "auditor"):
        response = api_client.post(
            "/api/v1/service-ids/",
            {"name": f"{role}-bot", "role": role},
            format="json",
            **bearer(world.service_token),
        )
        assert response.status_code == 403
        assert response.json() == {
            "code": "permission_denied",
            "detail": account_services.KEY_GRANTS_ONLY_LOWEST_ROLE % {"role": "member"},
        }
    assert not ServiceID.objects.filter(name__in=["admin-bot", "auditor-bot"]).exists()
    assert not AuditEvent.objects.filter(action="service_id.created", actor_kind="key").exists()


def test_a_key_lowers_a_service_id_role_but_never_raises_it(api_client, world):
    url = f"/api/v1/service-ids/{world.service_id.pk}/"
    lowered = api_client.patch(url, {"role": "member"}, format="json", **bearer(world.user_token))
    assert lowered.status_code == 200 and lowered.json()["role"] == "member"
    raised = api_client.patch(url, {"role": "admin"}, format="json", **bearer(world.user_token))
    assert raised.status_code == 403
    assert raised.json()["detail"] == account_services.KEY_CANNOT_RAISE_ROLE
    assert ServiceID.objects.get(pk=world.service_id.pk).role == "member"
