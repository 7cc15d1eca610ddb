"""The world every API test calls: two tenants, keys of each kind, every endpoint."""

from dataclasses import dataclass

from accounts.models import Membership, ServiceID
from keys.models import ApiKey
from keys.scopes import BUILTIN_SCOPES
from tests import factories

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


def make_world(tenant, owner, other_tenant):
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
