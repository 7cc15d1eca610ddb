"""API v1 end to end: every endpoint against every way a key can be refused."""

import json
from dataclasses import dataclass
from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from accounts import services as account_services
from accounts.models import Membership, ServiceID
from accounts.principals import Principal
from api import errors as api_errors
from api.base import forget_log_marks
from api.errors import KEYS_CANNOT_CREATE_KEYS, NOT_AUTHENTICATED, SERVER_ERROR
from audit.models import AuditEvent
from audit.services import Actor
from keys import services, tokens
from keys.authentication import INVALID_TOKEN, INVALID_TOKEN_CHALLENGE, MALFORMED_HEADER, REALM
from keys.models import ApiKey
from keys.permissions import MISSING_SCOPE
from keys.scopes import BUILTIN_SCOPES
from tests import factories

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]

ALL_SCOPES = sorted(BUILTIN_SCOPES)


@dataclass
class World:
    """Two tenants; in acme an admin with a personal key, an admin service ID with a key."""

    tenant: object
    owner_membership: Membership
    admin: Membership
    service_id: ServiceID
    user_key: ApiKey
    user_token: str
    service_key: ApiKey
    service_token: str
    target_key: ApiKey
    other_key: ApiKey
    other_service_id: ServiceID


@pytest.fixture
def world(tenant, owner, other_tenant):
    admin = factories.add_member(tenant, "admin")
    service_id = factories.make_service_id(tenant, "deploy-bot", role="admin")
    user_key, user_token = factories.make_api_key(admin, name="caller", scopes=ALL_SCOPES)
    service_key, service_token = factories.make_api_key(service_id, scopes=ALL_SCOPES)
    target_key, _ = factories.make_api_key(admin, name="target", scopes=["keys:read"])
    other_owner = other_tenant.memberships.get(role="owner")
    other_key, _ = factories.make_api_key(other_owner, name="theirs")
    return World(
        tenant=tenant,
        owner_membership=tenant.memberships.get(role="owner"),
        admin=admin,
        service_id=service_id,
        user_key=user_key,
        user_token=user_token,
        service_key=service_key,
        service_token=service_token,
        target_key=target_key,
        other_key=other_key,
        other_service_id=factories.make_service_id(other_tenant, "their-bot"),
    )


def bearer(token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: str  # {key} / {service_id}: an object of the caller's tenant
    scope: str | None  # None: any valid key
    ok: int
    body: dict | None = None

    @property
    def has_object(self) -> bool:
        return "{" in self.path

    def url(self, world: World, *, foreign: bool = False) -> str:
        key = world.other_key if foreign else world.target_key
        service_id = world.other_service_id if foreign else world.service_id
        return self.path.format(key=key.pk, service_id=service_id.pk)

    def call(self, client, world: World, token: str | None = None, *, foreign=False, **extra):
        headers = bearer(token) if token is not None else {}
        call = getattr(client, self.method.lower())
        return call(self.url(world, foreign=foreign), self.body, format="json", **headers, **extra)


ENDPOINTS = [
    Endpoint("whoami", "GET", "/api/v1/whoami/", None, 200),
    Endpoint("keys_list", "GET", "/api/v1/keys/", "keys:read", 200),
    Endpoint("keys_create", "POST", "/api/v1/keys/", None, 403, {"name": "x"}),
    Endpoint("key_detail", "GET", "/api/v1/keys/{key}/", "keys:read", 200),
    Endpoint(
        "key_revoke", "POST", "/api/v1/keys/{key}/revoke/", "keys:revoke", 200, {"reason": "x"}
    ),
    Endpoint("service_ids_list", "GET", "/api/v1/service-ids/", "service_ids:read", 200),
    Endpoint(
        "service_ids_create",
        "POST",
        "/api/v1/service-ids/",
        "service_ids:write",
        201,
        {"name": "new-bot", "role": "member"},
    ),
    Endpoint(
        "service_id_detail", "GET", "/api/v1/service-ids/{service_id}/", "service_ids:read", 200
    ),
    Endpoint(
        "service_id_update",
        "PATCH",
        "/api/v1/service-ids/{service_id}/",
        "service_ids:write",
        200,
        {"description": "deploys"},
    ),
    Endpoint("members_list", "GET", "/api/v1/members/", "members:read", 200),
]
OBJECT_ENDPOINTS = [e for e in ENDPOINTS if e.has_object]
SCOPED_ENDPOINTS = [e for e in ENDPOINTS if e.scope]


# --- Ways a key is refused: each returns the token to send (None: no header) -------------


def _no_header(world):
    return None


def _malformed(world):
    return "kwp_not-a-token"


def _unknown(world):
    return tokens.generate(tokens.Kind.PERSONAL)  # well-formed, checksum fine, never issued


def _expired(world):
    ApiKey.objects.filter(pk=world.user_key.pk).update(expires_at=timezone.now())
    return world.user_token


def _revoked(world):
    services.key_revoke(actor=Actor.cli("test"), key=world.user_key, reason="test")
    return world.user_token


def _rotated_past_grace(world):
    earlier = timezone.now() - timedelta(hours=2)
    principal = Principal.of_membership(world.admin)
    services.key_rotate(actor=principal, key=world.user_key, grace="1h", now=earlier)
    return world.user_token


def _outside_key_networks(world):
    ApiKey.objects.filter(pk=world.user_key.pk).update(allowed_ips=["10.0.0.0/8"])
    return world.user_token


def _outside_tenant_networks(world):
    type(world.tenant).objects.filter(pk=world.tenant.pk).update(allowed_ips=["10.0.0.0/8"])
    return world.user_token


def _owner_removed(world):
    account_services.membership_remove(
        actor=Principal.of_membership(world.owner_membership), target=world.admin
    )
    return world.user_token


def _owner_deactivated(world):
    world.admin.user.is_active = False
    world.admin.user.save(update_fields=["is_active"])
    return world.user_token


def _service_id_disabled(world):
    account_services.service_id_update(
        actor=Principal.of_membership(world.owner_membership),
        service_id=world.service_id,
        is_active=False,
    )
    return world.service_token


def _tenant_inactive(world):
    type(world.tenant).objects.filter(pk=world.tenant.pk).update(is_active=False)
    return world.user_token


INVALID = (401, INVALID_TOKEN_CHALLENGE, "invalid_token")
REFUSALS = {
    "no header": (_no_header, (401, REALM, "not_authenticated")),
    "malformed": (_malformed, INVALID),
    "unknown": (_unknown, INVALID),
    "expired": (_expired, INVALID),
    "revoked": (_revoked, INVALID),
    "rotated past grace": (_rotated_past_grace, INVALID),
    "outside the key's networks": (_outside_key_networks, INVALID),
    "outside the tenant's networks": (_outside_tenant_networks, INVALID),
    "owner removed from tenant": (_owner_removed, INVALID),
    "owner deactivated": (_owner_deactivated, INVALID),
    "service ID disabled": (_service_id_disabled, INVALID),
    "tenant inactive": (_tenant_inactive, INVALID),
}


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
@pytest.mark.parametrize("refusal", list(REFUSALS), ids=str)
def test_refused_key_gets_401_with_bearer_challenge_and_stable_code(
    api_client, world, endpoint, refusal
):
    make_token, (status, challenge, code) = REFUSALS[refusal]
    response = endpoint.call(api_client, world, make_token(world))
    assert response.status_code == status
    assert response["WWW-Authenticate"] == challenge
    assert response.json()["code"] == code
    assert response.json()["detail"] in (INVALID_TOKEN, NOT_AUTHENTICATED)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
@pytest.mark.parametrize("who", ["personal key", "service key"])
def test_valid_key_with_the_scope_succeeds_and_is_audited(api_client, world, endpoint, who):
    token = world.user_token if who == "personal key" else world.service_token
    response = endpoint.call(api_client, world, token)
    assert response.status_code == endpoint.ok, response.content
    event = AuditEvent.objects.filter(action__in=["api.request", "api.denied"]).latest("id")
    caller = world.user_key if who == "personal key" else world.service_key
    assert (event.target_kind, event.target_id) == ("key", str(caller.pk))
    assert event.tenant_id == world.tenant.pk
    assert event.metadata["status"] == endpoint.ok
    assert event.metadata["method"] == endpoint.method


@pytest.mark.parametrize("endpoint", SCOPED_ENDPOINTS, ids=lambda e: e.name)
def test_key_without_the_scope_gets_403_insufficient_scope(api_client, world, endpoint):
    others = [s for s in ALL_SCOPES if s != endpoint.scope]
    _, token = factories.make_api_key(world.admin, name="narrow", scopes=others)
    response = endpoint.call(api_client, world, token)
    assert response.status_code == 403
    assert response["WWW-Authenticate"] == (
        f'Bearer realm="api", error="insufficient_scope", scope="{endpoint.scope}"'
    )
    assert response.json()["code"] == "insufficient_scope"
    assert response.json()["detail"] == MISSING_SCOPE % {"scopes": endpoint.scope}


@pytest.mark.parametrize("endpoint", OBJECT_ENDPOINTS, ids=lambda e: e.name)
def test_another_tenants_object_is_404(api_client, world, endpoint):
    response = endpoint.call(api_client, world, world.user_token, foreign=True)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert "WWW-Authenticate" not in response


def test_keys_cannot_create_keys_whatever_their_scopes(api_client, world):
    before = ApiKey.objects.count()
    response = api_client.post(
        "/api/v1/keys/", {"name": "x"}, format="json", **bearer(world.user_token)
    )
    assert response.status_code == 403
    assert response.json() == {"code": "keys_cannot_create_keys", "detail": KEYS_CANNOT_CREATE_KEYS}
    assert ApiKey.objects.count() == before  # nothing issued
    event = AuditEvent.objects.get(action="api.denied")
    assert event.metadata["reason"] == "keys_cannot_create_keys"


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


# --- Request events -----------------------------------------------------------------------


def test_request_event_records_path_without_query_and_request_facts(api_client, world):
    api_client.get(
        "/api/v1/keys/?page=2&q=secret",
        HTTP_USER_AGENT="deploy/1.0",
        HTTP_X_REQUEST_ID="req-123",
        **bearer(world.user_token),
    )
    event = AuditEvent.objects.get(action="api.request")
    assert event.metadata["path"] == "/api/v1/keys/"
    assert event.metadata["principal"] == world.admin.user.email
    assert event.metadata["duration_ms"] >= 0
    assert (event.ip, event.user_agent, event.request_id) == ("127.0.0.1", "deploy/1.0", "req-123")
    assert event.outcome == "success"


def test_refused_well_formed_key_is_an_api_denied_event_with_its_reason(api_client, world):
    services.key_revoke(actor=Actor.cli("test"), key=world.user_key, reason="test")
    api_client.get("/api/v1/whoami/", **bearer(world.user_token))
    event = AuditEvent.objects.get(action="api.denied")
    assert event.outcome == "denied"
    assert event.metadata["reason"] == "revoked"
    assert event.metadata["status"] == 401
    assert (event.target_kind, event.target_id, event.tenant_id) == (
        "key",
        str(world.user_key.pk),
        world.tenant.pk,
    )


def test_unknown_key_is_an_api_denied_event_without_tenant(api_client, world):
    api_client.get("/api/v1/whoami/", **bearer(tokens.generate(tokens.Kind.SERVICE)))
    event = AuditEvent.objects.get(action="api.denied")
    assert event.metadata["reason"] == "unknown_key"
    assert event.tenant_id is None and event.target_id == ""


def test_client_error_with_a_key_is_a_failed_api_request(api_client, world):
    api_client.get("/api/v1/keys/999999/", **bearer(world.user_token))
    event = AuditEvent.objects.get(action="api.request")
    assert (event.outcome, event.metadata["status"], event.metadata["reason"]) == (
        "failure",
        404,
        "not_found",
    )


def test_no_credentials_and_malformed_tokens_write_no_event(api_client, world):
    before = AuditEvent.objects.count()
    api_client.get("/api/v1/whoami/")
    api_client.get("/api/v1/whoami/", **bearer("garbage"))
    assert AuditEvent.objects.count() == before


def test_a_flood_of_refusals_is_one_log_line_per_address_and_minute(api_client, world, caplog):
    flood = [api_client.get("/api/v1/whoami/", **bearer("garbage")) for _ in range(20)]
    other = api_client.get("/api/v1/whoami/", **bearer("garbage"), REMOTE_ADDR="192.0.2.44")
    assert {r.status_code for r in [*flood, other]} == {401}
    lines = [r.getMessage() for r in caplog.records if r.name in ("keyward.api", "django.request")]
    assert len(lines) == 2  # no django.request line per 4xx either
    assert "ip=127.0.0.1" in lines[0] and "(malformed_token)" in lines[0]
    assert "ip=192.0.2.44" in lines[1]
    forget_log_marks()  # on a clock we control: a line, then the count of those skipped
    with mock.patch("api.base.time.monotonic", return_value=10**9):
        api_client.get("/api/v1/whoami/", **bearer("garbage"))
        api_client.get("/api/v1/whoami/", **bearer("garbage"))
        api_client.get("/api/v1/whoami/", **bearer("garbage"))
    with mock.patch("api.base.time.monotonic", return_value=10**9 + 61):
        api_client.get("/api/v1/whoami/", **bearer("garbage"))
    last = [r.getMessage() for r in caplog.records if r.name == "keyward.api"][-1]
    assert "2 more like it not logged in the last minute" in last


@pytest.mark.parametrize(
    ("authorization", "detail"),
    [("Bearer kwp_not-a-token", INVALID_TOKEN), ("Bearer two words", MALFORMED_HEADER)],
)
def test_a_malformed_credential_is_answered_with_the_apis_401_and_headers(
    api_client, world, authorization, detail
):
    response = api_client.get(
        "/api/v1/whoami/", HTTP_AUTHORIZATION=authorization, HTTP_X_REQUEST_ID="req-7"
    )
    assert response.status_code == 401
    assert response.json() == {"code": "invalid_token", "detail": detail}
    assert response["WWW-Authenticate"] == INVALID_TOKEN_CHALLENGE
    assert response["Content-Type"] == "application/json"
    assert response["X-Request-ID"] == "req-7"
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_views_that_take_no_key_ignore_a_malformed_one(api_client, world):
    garbage = bearer("garbage")
    assert api_client.get("/api/schema/", **garbage).status_code == 200
    leak = api_client.post("/api/v1/leaks/", data=b"[]", content_type="application/json", **garbage)
    # Refused for its missing signature, not for the header.
    assert leak.status_code == 401 and leak.json()["code"] == "invalid_signature"


def test_a_malformed_token_beside_a_key_in_the_url_is_still_an_exposure(api_client, world):
    response = api_client.get(f"/api/v1/whoami/?access_token={world.user_token}", **bearer("x"))
    assert response.status_code == 400 and response.json()["code"] == "invalid_request"
    assert AuditEvent.objects.filter(action="key.exposed").count() == 1


def test_malformed_token_costs_zero_queries_through_the_full_request(
    api_client, world, django_assert_num_queries
):
    with django_assert_num_queries(0):
        response = api_client.get("/api/v1/whoami/", **bearer("kwp_" + "A" * 38))
    assert response.status_code == 401


def test_whoami_costs_one_select_and_one_insert_in_the_steady_state(
    api_client, world, django_assert_num_queries
):
    with django_assert_num_queries(3):  # first use in a minute also writes last_used_at
        api_client.get("/api/v1/whoami/", **bearer(world.user_token))
    with django_assert_num_queries(2) as queries:
        response = api_client.get("/api/v1/whoami/", **bearer(world.user_token))
    assert response.status_code == 200
    select, insert = (q["sql"] for q in queries.captured_queries)
    # A server-side-bound (prepared) query is logged as "QUERY = '…' - PARAMS = …".
    assert select.removeprefix("QUERY = '").startswith("SELECT") and "keys_apikey" in select
    assert insert.startswith("INSERT") and "audit_auditevent" in insert


# --- Keys in the query string --------------------------------------------------------------


@pytest.mark.parametrize("param", ["access_token", "token", "key", "api_key", "anything"])
def test_token_in_query_string_is_refused_and_recorded_as_exposed(api_client, world, param):
    response = api_client.get(f"/api/v1/whoami/?{param}={world.user_token}")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"
    event = AuditEvent.objects.get(action="key.exposed")
    assert (event.tenant_id, event.target_kind, event.target_id) == (
        world.tenant.pk,
        "key",
        str(world.user_key.pk),
    )
    assert event.metadata["param"] == param
    assert event.metadata["matched"] is True
    stored = json.dumps(list(AuditEvent.objects.values_list()), default=str)
    assert world.user_token not in stored
    assert not AuditEvent.objects.filter(action__startswith="api.").exists()  # one event


def test_token_in_query_string_is_refused_even_with_a_valid_header(api_client, world):
    response = api_client.get(
        f"/api/v1/keys/?access_token={world.service_token}", **bearer(world.user_token)
    )
    assert response.status_code == 400
    event = AuditEvent.objects.get(action="key.exposed")
    assert event.target_id == str(world.service_key.pk)


def test_unknown_well_formed_token_in_query_is_recorded_without_tenant(api_client, world):
    api_client.get(f"/api/v1/whoami/?token={tokens.generate(tokens.Kind.PERSONAL)}")
    event = AuditEvent.objects.get(action="key.exposed")
    assert event.tenant_id is None and event.metadata["matched"] is False


def test_garbage_in_a_token_parameter_is_refused_without_queries(
    api_client, world, django_assert_num_queries
):
    with django_assert_num_queries(0):
        response = api_client.get("/api/v1/whoami/?access_token=hunter2")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"


# --- Errors are JSON -----------------------------------------------------------------------


@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_unknown_api_path_is_json_404(method):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    for path in ["/api/v1/nothing/", "/api/v2/keys/", "/api/v1/keys/abc/", "/api/v1/whoami"]:
        response = getattr(client, method)(path)
        assert response.status_code == 404
        assert response.json() == {"code": "not_found", "detail": api_errors.API_NOT_FOUND}


def test_unsupported_method_is_json_405(api_client, world):
    response = api_client.delete(f"/api/v1/keys/{world.target_key.pk}/", **bearer(world.user_token))
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
    for path in ["/api/v1/whoami/", "/api/v1/keys/", "/api/v1/service-ids/"]:
        options = api_client.options(path, **bearer(world.user_token))
        assert options.status_code == 405, path
        assert options.json()["code"] == "method_not_allowed"


def test_malformed_json_body_is_400_invalid_request(api_client, world):
    response = api_client.generic(
        "POST",
        f"/api/v1/keys/{world.target_key.pk}/revoke/",
        "{not json",
        content_type="application/json",
        **bearer(world.user_token),
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"


def test_unexpected_error_is_json_500_without_details(api_client, world, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("database password is hunter2")

    monkeypatch.setattr("keys.selectors.key_list", explode)
    response = api_client.get("/api/v1/keys/", **bearer(world.user_token))
    assert response.status_code == 500
    assert response.json() == {"code": "server_error", "detail": SERVER_ERROR}
    assert AuditEvent.objects.get(action="api.request").outcome == "failure"


# --- Schema and docs -----------------------------------------------------------------------


def _schema(client) -> dict:
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return json.loads(response.content)


def test_schema_is_valid_openapi_with_bearer_scheme_and_each_operations_scope(client):
    from drf_spectacular.validation import validate_schema

    schema = _schema(client)
    validate_schema(schema)
    assert schema["openapi"].startswith("3.")
    assert schema["components"]["securitySchemes"]["bearerKey"] == {
        **schema["components"]["securitySchemes"]["bearerKey"],
        "type": "http",
        "scheme": "bearer",
    }
    for endpoint in ENDPOINTS:
        path = endpoint.path.replace("{key}", "{id}").replace("{service_id}", "{id}")
        operation = schema["paths"][path][endpoint.method.lower()]
        expected = [endpoint.scope] if endpoint.scope else []
        assert operation["security"] == [{"bearerKey": expected}], endpoint.name
        assert operation["x-required-scopes"] == expected
        assert "Required scope" in operation["description"]
        if endpoint.scope:
            assert f"`{endpoint.scope}`" in operation["description"]


def test_schema_and_docs_need_no_key_and_write_no_event(client):
    before = AuditEvent.objects.count()
    assert client.get("/api/schema/", HTTP_AUTHORIZATION="Bearer garbage").status_code == 200
    assert client.get("/api/docs/").status_code == 200
    assert AuditEvent.objects.count() == before


def test_docs_page_loads_only_local_assets_and_no_inline_code(client):
    response = client.get("/api/docs/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "http://" not in html and "https://" not in html
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    # Under SECURE_CSP (script-src 'self' + nonce, style-src 'self') inline code would not run.
    assert "<style" not in html
    assert html.count("<script") == html.count("<script src=")
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp


def test_docs_assets_exist_in_static_files():
    from django.contrib.staticfiles import finders

    for asset in [
        "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js",
        "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css",
        "js/api-docs.js",
        "css/api-docs.css",
    ]:
        assert finders.find(asset), asset


def test_a_portal_session_never_authenticates_the_api(owner_client):
    response = owner_client.get("/api/v1/whoami/")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_api_writes_need_no_csrf_token_because_no_cookie_authenticates(world):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    response = client.post(
        f"/api/v1/keys/{world.target_key.pk}/revoke/",
        {"reason": "x"},
        content_type="application/json",
        headers={"Authorization": f"Bearer {world.user_token}"},
    )
    assert response.status_code == 200


@pytest.mark.parametrize("path", ["/api/v1/keys/", "/api/v1/members/", "/api/v1/service-ids/"])
def test_lists_cost_the_same_queries_whatever_their_length(
    api_client, world, path, django_assert_num_queries
):
    for i in range(5):
        factories.add_member(world.tenant, "member")
        factories.make_service_id(world.tenant, f"bot-{i}")
        factories.make_api_key(world.admin, name=f"extra {i}")
    api_client.get(path, **bearer(world.user_token))  # last_used_at written once a minute
    with django_assert_num_queries(3):  # authentication, the list, the request event
        response = api_client.get(path, **bearer(world.user_token))
    assert response.status_code == 200 and len(response.json()) > 5
