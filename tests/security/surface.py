"""The surface the security suites walk: routes from the URL resolver, and tenants holding one
object of every tenant-owned kind.

Routes are never listed by hand. An id in a route (``<int:pk>``, ``<int:sid>`` …) is served by the
builder of the object kind named by the path segment before it (``keys/<int:pk>`` is a key); a
route or a tenant-owned model that no builder serves fails the suites with "add a builder for …".
"""

import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
from django.apps import apps
from django.db import transaction
from django.test import Client, override_settings
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RoutePattern
from django.utils import timezone

from accounts import services as account_services
from accounts.models import (
    AuthenticatorDevice,
    Invitation,
    Membership,
    ServiceID,
    Tenant,
    User,
    UserSession,
)
from accounts.principals import Principal
from audit.models import AuditEvent
from federation.models import RevokedToken, WorkloadTrust
from keys.models import ApiKey
from keys.scopes import BUILTIN_SCOPES
from tests import factories
from tests.accounts.soft_authenticator import make_passkey
from webhooks import services as webhook_services
from webhooks.models import WebhookEndpoint

PARAM = re.compile(r"<(?:\w+:)?(\w+)>")
TENANT_PREFIX = "t/<slug:slug>/"
API_PREFIX = "api/v1/"
ALL_SCOPES = sorted(BUILTIN_SCOPES)

# The object an id names: the path segment just before the id.
SEGMENT_KINDS = {
    "keys": "key",
    "service-ids": "service_id",
    "members": "membership",
    "invitations": "invitation",
    "audit": "audit_event",
    "authenticators": "totp_device",
    "passkeys": "passkey",
    "sessions": "user_session",
    "trusts": "workload_trust",
    "webhooks": "webhook_endpoint",
}
# The rows an API listing returns, by its last path segment (None: not a listing).
LISTING_KINDS = {
    "whoami": None,
    "keys": "key",
    "service-ids": "service_id",
    "members": "membership",
    "audit-events": "audit_event",
}
# The model of each tenant-owned kind: every model with a ``tenant`` field must be here.
KIND_MODELS = {
    "key": ApiKey,
    "service_id": ServiceID,
    "membership": Membership,
    "invitation": Invitation,
    "audit_event": AuditEvent,
    "workload_trust": WorkloadTrust,
    "revoked_token": RevokedToken,
    "webhook_endpoint": WebhookEndpoint,
}
# One body for every portal form: enough for each of them to act if nothing stopped it.
FORM_DATA = {
    "email": "new-person@example.com",
    "password": factories.PASSWORD,
    "role": "auditor",
    "name": "posted-name",
    "description": "posted",
    "reason": "posted",
    "grace": "now",
    "expiry": "30",
    "scopes": ["keys:read"],
    "allowed_ips": "",
    "code": "123456",
    "max_key_lifetime_days": "90",
    "default_key_lifetime_days": "7",
    "leak_policy": "notify",
    "key_rate": "10/min",
    "old_password": factories.PASSWORD,
    "new_password1": "another long passphrase 77",
    "new_password2": "another long passphrase 77",
    "full_name": "Posted Person",
    "password1": "another long passphrase 77",
    "password2": "another long passphrase 77",
}
# One body per API method: POST creates a service ID or revokes a key, PATCH changes a description.
API_BODIES = {
    "get": None,
    "post": {"reason": "posted", "name": "posted-bot", "role": "member"},
    "patch": {"description": "patched"},
    "put": {"description": "put"},
    "delete": None,
}


# --- Routes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    route: str  # the full route, e.g. "t/<slug:slug>/keys/<int:pk>/"
    name: str  # "keys:detail"
    callback: object = field(compare=False)

    def __str__(self) -> str:
        return self.name or self.route

    @property
    def params(self) -> tuple[str, ...]:
        return tuple(PARAM.findall(self.route))

    @property
    def object_params(self) -> tuple[str, ...]:
        """Return the params that name an object: the ``<int:…>`` ones."""
        return tuple(re.findall(r"<int:(\w+)>", self.route))

    @property
    def is_tenant_page(self) -> bool:
        return TENANT_PREFIX in self.route

    @property
    def is_api(self) -> bool:
        return self.route.startswith(API_PREFIX)

    @property
    def is_portal(self) -> bool:
        # /oauth/ and /.well-known/ (federation) take no session: credentials in the form or
        # header, or nothing at all (public keys, metadata).
        return not self.route.startswith(
            ("api/", "admin/", "healthz", "readyz", "oauth/", ".well-known/")
        )

    def kind_of(self, param: str) -> str:
        match = re.search(rf"([\w-]+)/<(?:\w+:)?{param}>", self.route)
        kind = SEGMENT_KINDS.get(match.group(1)) if match else None
        if kind is None:
            pytest.fail(f"add a builder for {self.route} (<{param}>) to tests/security/surface.py")
        return kind

    @property
    def listing_kind(self) -> str | None:
        segment = self.route.rstrip("/").rsplit("/", 1)[-1]
        if segment not in LISTING_KINDS:
            pytest.fail(f"add a listing kind for {self.route} to tests/security/surface.py")
        return LISTING_KINDS[segment]

    def path(self, **values) -> str:
        return "/" + PARAM.sub(lambda m: str(values[m.group(1)]), self.route)

    @property
    def uses_keys(self) -> bool:
        """Return whether the API view authenticates with keys (the leak report is signed)."""
        return bool(self.callback.view_class.authentication_classes)

    @property
    def api_methods(self) -> list[str]:
        view = self.callback.view_class
        return [m for m in ("get", "post", "put", "patch", "delete") if hasattr(view, m)]


def _walk(patterns, prefix: str = "", namespace: str = ""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            ns = ":".join(filter(None, [namespace, pattern.namespace or ""]))
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern), ns)
        elif isinstance(pattern, URLPattern):
            name = f"{namespace}:{pattern.name}" if namespace and pattern.name else pattern.name
            yield pattern, prefix + str(pattern.pattern), name or ""


def all_routes() -> list[Route]:
    """Return every route the resolver serves, except the admin's and regex catch-alls."""
    routes = []
    for pattern, route, name in _walk(get_resolver().url_patterns):
        if route.startswith("admin/") or not isinstance(pattern.pattern, RoutePattern):
            continue
        routes.append(Route(route, name, pattern.callback))
    return routes


def regex_routes() -> list[tuple[str, object]]:
    """Return (route, view) of the routes outside the admin that are regular expressions."""
    return [
        (route, pattern.callback)
        for pattern, route, _ in _walk(get_resolver().url_patterns)
        if not route.startswith("admin/") and not isinstance(pattern.pattern, RoutePattern)
    ]


def tenant_routes() -> list[Route]:
    return [r for r in all_routes() if r.is_tenant_page]


def api_routes() -> list[Route]:
    """Return the API v1 routes a key calls (not those authenticated another way)."""
    return [r for r in all_routes() if r.is_api and r.uses_keys]


def portal_routes() -> list[Route]:
    return [r for r in all_routes() if r.is_portal]


def tenant_owned_models() -> list:
    """Return every model with a ``tenant`` field."""
    return [
        model
        for model in apps.get_models()
        if any(f.name == "tenant" for f in model._meta.get_fields())
    ]


# --- Tenants with one object of every kind --------------------------------------------------


@dataclass
class World:
    """A tenant with an owner, admin, member and auditor, a service ID, keys, an invitation."""

    tenant: Tenant
    owner: Membership
    admin: Membership
    member: Membership
    auditor: Membership
    service_id: ServiceID
    owner_key: ApiKey  # all scopes: the caller in API tests
    owner_token: str
    service_key: ApiKey  # all scopes
    service_token: str
    admin_key: ApiKey
    member_key: ApiKey
    invitation: Invitation
    invitation_secret: str
    tokens: list[str]

    @property
    def slug(self) -> str:
        return self.tenant.slug

    def membership(self, role: str) -> Membership:
        return {
            "owner": self.owner,
            "admin": self.admin,
            "member": self.member,
            "auditor": self.auditor,
        }[role]

    def objects(self, kind: str) -> list:
        """Return the objects of ``kind`` (variants: a personal and a service key)."""
        builders = {
            "key": lambda: [self.member_key, self.service_key],
            "service_id": lambda: [self.service_id],
            "membership": lambda: [self.member],
            "invitation": lambda: [self.invitation],
            "audit_event": lambda: [
                AuditEvent.objects.for_tenant(self.tenant)
                .filter(action="key.issued", target_id=str(self.member_key.pk))
                .get()
            ],
            "totp_device": lambda: [AuthenticatorDevice.objects.filter(user=self.owner.user).get()],
            "passkey": lambda: [make_passkey(self.owner.user)],
            "user_session": lambda: [
                UserSession.objects.get_or_create(user=self.owner.user, stored_key="0" * 40)[0]
            ],
            "workload_trust": lambda: [
                WorkloadTrust.objects.get_or_create(
                    tenant=self.tenant,
                    service_id=self.service_id,
                    defaults={
                        "issuer": "https://ci.example",
                        "audience": "keyward",
                        "subject_pattern": f"repo:{self.slug}/app:*",
                        "scopes": ["keys:read"],
                    },
                )[0]
            ],
            "revoked_token": lambda: [
                RevokedToken.objects.get_or_create(
                    jti=f"{self.slug}-revoked-jti",
                    defaults={"tenant": self.tenant, "expires_at": timezone.now()},
                )[0]
            ],
            "webhook_endpoint": lambda: [self._webhook_endpoint()],
        }
        if kind not in builders:
            pytest.fail(f"add a builder for {kind} objects to tests/security/surface.py")
        return builders[kind]()

    def _webhook_endpoint(self) -> WebhookEndpoint:
        """Return the tenant's webhook endpoint, added through the service the first time.

        SECURITY: tests only. Loopback and plain http are allowed for the add alone (no
        delivery is made from here); production refuses them (tests/webhooks/test_network.py).
        """
        endpoint = WebhookEndpoint.objects.for_tenant(self.tenant).order_by("pk").first()
        if endpoint is None:
            with override_settings(
                KEYWARD_WEBHOOKS_ALLOW_LOOPBACK=True, KEYWARD_WEBHOOKS_ALLOW_HTTP=True
            ):
                endpoint, _ = webhook_services.endpoint_create(
                    actor=Principal.of_membership(self.owner),
                    url=f"http://127.0.0.1:9/hooks/{self.slug}",
                    events=["key.expired"],
                    description=f"{self.slug} webhook",
                )
        return endpoint

    def ids(self, kind: str) -> set[int]:
        return {obj.pk for obj in self.objects(kind)} | {
            obj.pk for obj in KIND_MODELS[kind].objects.for_tenant(self.tenant)
        }

    def variants(self, route: Route) -> list[dict]:
        """Return the URL values of ``route`` for each variant of its objects."""
        values = {"slug": self.slug}
        params = route.object_params
        if not params:
            return [values]
        per_param = {p: self.objects(route.kind_of(p)) for p in params}
        count = max(len(objs) for objs in per_param.values())
        return [
            values | {p: objs[min(i, len(objs) - 1)].pk for p, objs in per_param.items()}
            for i in range(count)
        ]

    def identifying_strings(self) -> list[str]:
        """Return what would give the tenant away: names, slug, e-mails, key names and hints."""
        strings = [self.tenant.name, self.tenant.slug]
        strings += list(
            User.objects.filter(memberships__tenant=self.tenant).values_list("email", flat=True)
        )
        strings += list(Invitation.objects.for_tenant(self.tenant).values_list("email", flat=True))
        strings += list(ServiceID.objects.for_tenant(self.tenant).values_list("name", flat=True))
        for name, hint in ApiKey.objects.for_tenant(self.tenant).values_list("name", "hint"):
            strings += [name, hint]
        return strings


def build_world(slug: str) -> World:
    """Build a tenant through the real services (so it has audit events of its own)."""
    tenant = factories.make_tenant(slug)
    owner = tenant.memberships.select_related("user", "tenant").get(role="owner")
    admin = factories.add_member(tenant, "admin")
    member = factories.add_member(tenant, "member")
    auditor = factories.add_member(tenant, "auditor")
    service_id = factories.make_service_id(tenant, f"{slug}-bot", role="admin")
    owner_key, owner_token = factories.make_api_key(
        owner, name=f"{slug} owner key", scopes=ALL_SCOPES
    )
    service_key, service_token = factories.make_api_key(
        service_id, name=f"{slug} service key", scopes=ALL_SCOPES
    )
    admin_key, admin_token = factories.make_api_key(admin, name=f"{slug} admin key")
    member_key, member_token = factories.make_api_key(member, name=f"{slug} member key")
    invitation, link = account_services.invitation_create(
        actor=Principal.of_membership(owner), email=f"invitee@{slug}.example", role="member"
    )
    world = World(
        tenant=tenant,
        owner=owner,
        admin=admin,
        member=member,
        auditor=auditor,
        service_id=service_id,
        owner_key=owner_key,
        owner_token=owner_token,
        service_key=service_key,
        service_token=service_token,
        admin_key=admin_key,
        member_key=member_key,
        invitation=invitation,
        invitation_secret=urlsplit(link).path.rstrip("/").rsplit("/", 1)[1],
        tokens=[owner_token, service_token, admin_token, member_token],
    )
    # Federation: made directly, not by a page; the webhook endpoint through its service.
    for kind in ("workload_trust", "revoked_token", "webhook_endpoint"):
        world.objects(kind)
    return world


def tenant_state(tenant: Tenant) -> dict:
    """Return every row of ``tenant`` and of every model it owns, for before/after comparison."""
    state = {"tenant": list(Tenant.objects.filter(pk=tenant.pk).values())}
    for model in tenant_owned_models():
        rows = model._default_manager.filter(tenant=tenant).order_by("pk").values()
        state[model._meta.label] = [
            {k: bytes(v) if isinstance(v, memoryview) else v for k, v in row.items()}
            for row in rows
        ]
    return state


# --- Requests -------------------------------------------------------------------------------


def verified_client(user: User, *, sudo: bool = True, **options) -> Client:
    """Return a client logged in as ``user`` with a verified second factor (and fresh sudo)."""
    client = Client(**options)
    factories.verify_session(client, user, sudo=sudo)
    return client


def body_of(response) -> str:
    if response.streaming:
        return b"".join(response.streaming_content).decode(errors="replace")
    return response.content.decode(errors="replace")


def leaked(world: World, text: str) -> list[str]:
    """Return the identifying strings of ``world`` that appear in ``text``."""
    lowered = text.lower()
    return [s for s in world.identifying_strings() if s and s.lower() in lowered]


@contextmanager
def rolled_back():
    """Run a block in a transaction that is rolled back: each case starts from the same rows."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)
