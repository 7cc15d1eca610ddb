"""Each role gets exactly what ``accounts/roles.py`` says, no more.

Portal: a table of (route, method, target) → the actions it needs; what each role should get is
computed from ``roles.may``, never written down per role. Allowed: a 2xx/3xx answer (and a POST
records its audit event); refused: 403 within the tenant, or 404 for a key the role may not see,
with nothing changed. API: a key's scopes are re-checked against its owner's current role, for
people and service IDs, for every endpoint and every role the owner can be moved to.
"""

from dataclasses import dataclass, field

import pytest
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from accounts import roles
from accounts import services as account_services
from accounts.principals import Principal
from accounts.roles import Action
from api.keys import KeyCreateRefusedApi
from audit.models import AuditEvent
from keys.models import ApiKey
from keys.permissions import required_scopes_for
from keys.scopes import ceiling_for
from tests import factories
from tests.accounts.soft_authenticator import make_passkey
from tests.security.surface import (
    ALL_SCOPES,
    API_BODIES,
    api_routes,
    build_world,
    rolled_back,
    tenant_routes,
    tenant_state,
    verified_client,
)
from webhooks import services as webhook_services
from webhooks.models import WebhookEndpoint

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]

ROLES = list(roles.Role.values)
OK = "2xx/3xx"
# A key's visibility: one's own needs keys.own; anyone else's needs keys.manage_all, and without
# it the key is invisible (404), not forbidden.
OWN_OR_ALL = "own key, else keys.manage_all"


@dataclass(frozen=True)
class Case:
    url: str
    method: str
    needs: tuple = ()  # (action, status when the role lacks it), in the order the view checks
    target: str | tuple | None = None  # what fills <pk> / <sid>; a tuple: one per id, in order
    data: dict = field(default_factory=dict)
    event: str | None = None  # the audit action an allowed POST records

    def __str__(self) -> str:
        grant = f" role={self.data['role']}" if "role" in self.data else ""
        return f"{self.method} {self.url}{f' [{self.target}]' if self.target else ''}{grant}"


KEY_DATA = {"name": "role table key", "expiry": "30", "scopes": ["keys:read"], "allowed_ips": ""}
POLICY = {
    "max_key_lifetime_days": "90",
    "default_key_lifetime_days": "7",
    "revoke_unused_after_days": "",
    "leak_policy": "revoke_and_notify",
    "allowed_ips": "",
    "key_rate": "600/min",
}
MANAGE = (Action.MEMBERS_MANAGE, 403)
OWNERS = (Action.OWNERS_MANAGE, 403)
SID_MANAGE = (Action.SERVICE_IDS_MANAGE, 403)
WEBHOOKS = (Action.KEYS_MANAGE_ALL, 403)  # owners and admins (webhooks/views.py)
OWNERS_ONLY = (Action.POLICY_EDIT, 403)  # trusts and the sign-in policy: owners alone
# The endpoint is added on a loopback URL: the role table allows it (see the test below).
WEBHOOK_DATA = {"url": "http://127.0.0.1:9/hooks/new", "events": ["key.revoked"]}
TRUST_DATA = {
    "issuer": "https://token.actions.githubusercontent.com",
    "audience": "keyward",
    "subject_pattern": "repo:acme/role-table:*",
    "scopes": ["keys:read"],
}
TRUST = ("a service ID", "a workload trust")
KEY_TARGETS = ["own key", "another member's key", "an admin's key", "a service key"]

CASES = [
    Case("accounts:tenant_home", "GET"),
    Case("accounts:members", "GET", ((Action.MEMBERS_READ, 403),)),
    Case(
        "accounts:member_invite",
        "POST",
        (MANAGE,),
        data={"email": "new@example.com", "role": "member"},
        event="member.invited",
    ),
    # The form does not offer a role one may not grant: a 400 with the form, as for service IDs.
    Case(
        "accounts:member_invite",
        "POST",
        (MANAGE, (Action.OWNERS_MANAGE, 400)),
        data={"email": "new@example.com", "role": "owner"},
        event="member.invited",
    ),
    Case(
        "accounts:member_role",
        "POST",
        (MANAGE,),
        "a member",
        {"role": "auditor"},
        "member.role_changed",
    ),
    Case(
        "accounts:member_role",
        "POST",
        (MANAGE, OWNERS),
        "a member",
        {"role": "owner"},
        "member.role_changed",
    ),
    Case(
        "accounts:member_role",
        "POST",
        (MANAGE, OWNERS),
        "another owner",
        {"role": "member"},
        "member.role_changed",
    ),
    # The confirmation page lists the personal keys that removal revokes.
    Case("keys:member_remove", "GET", (MANAGE,), "a member"),
    Case("keys:member_remove", "GET", (MANAGE, OWNERS), "another owner"),
    Case("keys:member_remove", "POST", (MANAGE,), "a member", event="member.removed"),
    Case("keys:member_remove", "POST", (MANAGE, OWNERS), "another owner", event="member.removed"),
    Case(
        "accounts:invitation_revoke",
        "POST",
        (MANAGE,),
        "a member's invitation",
        event="member.invitation_revoked",
    ),
    Case(
        "accounts:invitation_revoke",
        "POST",
        (MANAGE, OWNERS),
        "an owner's invitation",
        event="member.invitation_revoked",
    ),
    Case("accounts:service_ids", "GET", ((Action.SERVICE_IDS_READ, 403),)),
    Case(
        "accounts:service_ids",
        "POST",
        (SID_MANAGE,),
        data={"name": "new-bot", "role": "member"},
        event="service_id.created",
    ),
    Case(
        "accounts:service_ids",
        "POST",
        (SID_MANAGE, (Action.OWNERS_MANAGE, 400)),
        data={"name": "new-bot", "role": "owner"},
        event="service_id.created",
    ),
    Case("keys:service_id_detail", "GET", ((Action.SERVICE_IDS_READ, 403),), "a service ID"),
    Case(
        "accounts:service_id_toggle",
        "POST",
        (SID_MANAGE,),
        "a service ID",
        event="service_id.disabled",
    ),
    Case("keys:list", "GET", ((Action.KEYS_OWN, 403),)),
    Case("keys:issue", "GET", ((Action.KEYS_OWN, 403),)),
    Case("keys:issue", "POST", ((Action.KEYS_OWN, 403),), data=KEY_DATA, event="key.issued"),
    *[Case("keys:detail", "GET", (OWN_OR_ALL,), target) for target in KEY_TARGETS],
    *[Case("keys:revoke", "GET", (OWN_OR_ALL,), target) for target in KEY_TARGETS],
    *[
        Case("keys:revoke", "POST", (OWN_OR_ALL,), target, {"reason": "x"}, "key.revoked")
        for target in KEY_TARGETS
    ],
    *[Case("keys:rotate", "GET", (OWN_OR_ALL,), target) for target in KEY_TARGETS],
    *[
        Case("keys:rotate", "POST", (OWN_OR_ALL,), target, {"grace": "now"}, "key.rotated")
        for target in KEY_TARGETS
    ],
    *[Case("keys:narrow", "GET", (OWN_OR_ALL,), target) for target in KEY_TARGETS],  # preview
    *[
        Case("keys:narrow", "POST", (OWN_OR_ALL,), target)  # nothing used yet: a message, no change
        for target in KEY_TARGETS
    ],
    *[
        Case(
            "keys:alerts",
            "POST",
            (OWN_OR_ALL,),
            target,
            {"enabled": "on"},
            "key.network_alert_changed",
        )
        for target in KEY_TARGETS
    ],
    # Issue 18: edit a key, the keys list's bulk revoke (GET: back to the list), the inventory
    # download (a POST: it records its event), the approval queue and a decision page.
    *[Case("keys:edit", "GET", (OWN_OR_ALL,), target) for target in KEY_TARGETS],
    Case("keys:bulk_revoke", "GET", ((Action.KEYS_MANAGE_ALL, 403),)),
    Case(
        "keys:export",
        "POST",
        ((Action.KEYS_MANAGE_ALL, 403),),
        event="key.inventory_exported",
    ),
    Case("keys:approvals", "GET", ((Action.KEYS_MANAGE_ALL, 403),)),
    Case("keys:approval_decide", "GET", ((Action.KEYS_MANAGE_ALL, 403),), "a pending key"),
    # The key review: for those who manage every key, and for auditors.
    Case("keys:review", "GET", (((Action.KEYS_MANAGE_ALL, Action.AUDIT_READ), 403),)),
    Case("keys:service_issue", "GET", (SID_MANAGE,), "a service ID"),
    Case("keys:service_issue", "POST", (SID_MANAGE,), "a service ID", KEY_DATA, "key.issued"),
    Case("keys:policy", "GET", ((Action.POLICY_EDIT, 403),)),
    Case(
        "keys:policy",
        "POST",
        ((Action.POLICY_EDIT, 403),),
        data=POLICY,
        event="tenant.policy_changed",
    ),
    # Webhooks: owners and admins; adding one and rotating its secret need a fresh sudo, which
    # every client here has.
    Case("webhooks:list", "GET", (WEBHOOKS,)),
    Case("webhooks:list", "POST", (WEBHOOKS,), data=WEBHOOK_DATA, event="webhook.endpoint_created"),
    Case("webhooks:detail", "GET", (WEBHOOKS,), "a webhook endpoint"),
    Case("webhooks:test", "POST", (WEBHOOKS,), "a webhook endpoint", event="webhook.test_sent"),
    Case(
        "webhooks:rotate", "POST", (WEBHOOKS,), "a webhook endpoint", event="webhook.secret_rotated"
    ),
    Case(
        "webhooks:enable",
        "POST",
        (WEBHOOKS,),
        "a disabled webhook endpoint",
        event="webhook.endpoint_enabled",
    ),
    Case(
        "webhooks:delete",
        "POST",
        (WEBHOOKS,),
        "a webhook endpoint",
        event="webhook.endpoint_deleted",
    ),
    # Keyless CI trusts: every role that reads service IDs sees them; owners alone change them.
    Case("federation:trusts", "GET", ((Action.SERVICE_IDS_READ, 403),), "a service ID"),
    Case(
        "federation:trusts",
        "POST",
        ((Action.SERVICE_IDS_READ, 403), OWNERS_ONLY),
        "a service ID",
        TRUST_DATA,
        "trust.added",
    ),
    Case("federation:trust_remove", "POST", (OWNERS_ONLY,), TRUST, event="trust.removed"),
    # The sign-in policy: owners alone (the owner has a passkey, so turning it on is allowed).
    Case("accounts:sign_in_policy", "GET", (OWNERS_ONLY,)),
    Case(
        "accounts:sign_in_policy",
        "POST",
        (OWNERS_ONLY,),
        data={"require_passkey": "on"},
        event="tenant.policy_changed",
    ),
    Case("accounts:audit_list", "GET", ((Action.AUDIT_READ, 403),)),
    Case("accounts:audit_detail", "GET", ((Action.AUDIT_READ, 403),), "an audit event"),
    Case("accounts:audit_export_csv", "GET", ((Action.AUDIT_READ, 403),)),
    Case("accounts:audit_export_jsonl", "GET", ((Action.AUDIT_READ, 403),)),
]


@dataclass
class Acme:
    """One tenant: a member of each role with a key of their own, and something to act on."""

    world: object
    another_owner: object
    target: object  # a plain member the others act on
    own_keys: dict
    objects: dict

    def actor(self, role: str):
        return self.world.membership(role)


@pytest.fixture
def acme(db):
    world = build_world("acme")
    tenant = world.tenant
    another_owner = factories.add_member(tenant, "owner")
    target = factories.add_member(tenant, "member")
    auditor_key, _ = factories.make_api_key(world.auditor, name="auditor key")
    target_key, _ = factories.make_api_key(target, name="target key")
    pending_key, _ = factories.make_api_key(target, name="pending key")
    ApiKey.objects.filter(pk=pending_key.pk).update(approval="pending")
    owner_invitation, _ = account_services.invitation_create(
        actor=Principal.of_membership(world.owner), email="future-owner@acme.example", role="owner"
    )
    # The sign-in policy asks a passkey of an owner who requires one of everybody.
    make_passkey(world.owner.user)
    with override_settings(KEYWARD_WEBHOOKS_ALLOW_LOOPBACK=True, KEYWARD_WEBHOOKS_ALLOW_HTTP=True):
        disabled_endpoint, _ = webhook_services.endpoint_create(
            actor=Principal.of_membership(world.owner),
            url="http://127.0.0.1:9/hooks/disabled",
            events=["key.expired"],
        )
    WebhookEndpoint.objects.filter(pk=disabled_endpoint.pk).update(
        disabled_at=timezone.now(), disabled_reason="failing"
    )
    own_keys = {
        "owner": world.owner_key,
        "admin": world.admin_key,
        "member": world.member_key,
        "auditor": auditor_key,
    }
    objects = {
        "a member": target,
        "another owner": another_owner,
        "a member's invitation": world.invitation,
        "an owner's invitation": owner_invitation,
        "a service ID": world.service_id,
        "another member's key": target_key,
        "a pending key": pending_key,
        "an admin's key": world.admin_key,
        "a service key": world.service_key,
        "an audit event": AuditEvent.objects.for_tenant(tenant).filter(action="key.issued")[0],
        "a workload trust": world.objects("workload_trust")[0],
        "a webhook endpoint": world.objects("webhook_endpoint")[0],
        "a disabled webhook endpoint": disabled_endpoint,
    }
    return Acme(world, another_owner, target, own_keys, objects)


def _needs(case: Case, acme: Acme, role: str) -> list[tuple[str, int]]:
    needs = []
    for need in case.needs:
        if need == OWN_OR_ALL:
            key = acme.own_keys[role] if case.target == "own key" else acme.objects[case.target]
            is_own = key.user_id is not None and key.user_id == acme.actor(role).user_id
            needs.append((Action.KEYS_OWN, 403) if is_own else (Action.KEYS_MANAGE_ALL, 404))
        else:
            needs.append(need)
    return needs


def expected(case: Case, acme: Acme, role: str):
    """Return what ``role`` should get, from the role map alone."""
    for action, refused in _needs(case, acme, role):
        either = action if isinstance(action, tuple) else (action,)  # a tuple: any one will do
        if not any(roles.may(role, a) for a in either):
            return refused
    return OK


def _path(case: Case, acme: Acme, role: str) -> str:
    kwargs = {"slug": acme.world.slug}
    route = next(r for r in tenant_routes() if r.name == case.url)
    targets = case.target if isinstance(case.target, tuple) else (case.target,) * 9
    for param, name in zip(route.object_params, targets, strict=False):
        target = acme.own_keys[role] if name == "own key" else acme.objects[name]
        kwargs[param] = target.pk
    return reverse(case.url, kwargs=kwargs)


def test_the_role_table_covers_every_tenant_route_and_every_action():
    named = {case.url for case in CASES}
    missing = sorted(r.name for r in tenant_routes() if r.name not in named)
    assert not missing, f"add {missing} to CASES in tests/security/test_roles.py"
    needed = set()
    for case in CASES:
        for need in case.needs:
            if need != OWN_OR_ALL:
                needed |= set(need[0] if isinstance(need[0], tuple) else [need[0]])
    needed |= {Action.KEYS_OWN, Action.KEYS_MANAGE_ALL}
    assert needed == set(Action.values), "an action of roles.py has no row in the table"


@pytest.mark.parametrize("case", CASES, ids=str)
def test_each_role_gets_exactly_what_the_role_map_says(case, acme, settings):
    # SECURITY: tests only. The webhook rows add an endpoint on a loopback URL and nothing is
    # delivered (each case is rolled back); production refuses it (tests/webhooks/test_network.py).
    settings.KEYWARD_WEBHOOKS_ALLOW_LOOPBACK = True
    settings.KEYWARD_WEBHOOKS_ALLOW_HTTP = True
    tenant = acme.world.tenant
    seen, want = {}, {}
    for role in ROLES:
        want[role] = expected(case, acme, role)
        client = verified_client(acme.actor(role).user)
        with rolled_back():
            before = tenant_state(tenant)
            last_event = AuditEvent.objects.order_by("-id").values_list("id", flat=True)[0]
            response = getattr(client, case.method.lower())(_path(case, acme, role), case.data)
            status = response.status_code
            allowed = 200 <= status < 400 and not response.get("Location", "").startswith(
                (reverse("accounts:sudo"), reverse("accounts:login"))
            )
            seen[role] = OK if allowed else status
            recorded = AuditEvent.objects.filter(
                tenant=tenant, id__gt=last_event, action=case.event or "-"
            ).exists()
            if seen[role] != OK or case.method == "GET":
                assert tenant_state(tenant) == before, (role, "changed state", status)
            elif case.event and not recorded:
                seen[role] = f"{status} without {case.event}"
    assert seen == want


# --- API: scopes re-checked against the owner's current role ----------------------------------

API_ENDPOINTS = [(route, m) for route in api_routes() for m in route.api_methods]


def _api_expected(route, method: str, role: str) -> tuple[int, str | None]:
    """Return the (status, error code) that the role map predicts for an all-scopes key whose
    owner now has ``role`` (200 stands for any 2xx)."""
    view = route.callback.view_class()
    required = required_scopes_for(view, method.upper())
    beyond = [s for s in required if s not in ceiling_for(role)]
    if beyond:
        return 403, "insufficient_scope"
    if issubclass(route.callback.view_class, KeyCreateRefusedApi) and method == "post":
        return 403, "keys_cannot_create_keys"
    kinds = {route.kind_of(p) for p in route.object_params}
    if "key" in kinds and not roles.may(role, Action.KEYS_MANAGE_ALL):
        return 404, "not_found"  # another member's key is invisible without keys.manage_all
    return 200, None


def _demote_person(acme: Acme, role: str) -> str:
    """Issue an all-scopes key to an owner, then move that owner to ``role``."""
    owner = acme.another_owner
    _, token = factories.make_api_key(owner, name="all scopes", scopes=ALL_SCOPES)
    if role != "owner":
        account_services.membership_change_role(
            actor=Principal.of_membership(acme.world.owner), target=owner, role=role
        )
    return token


def _demote_service_id(acme: Acme, role: str) -> str:
    """Issue an all-scopes key to an owner-role service ID, then lower its role to ``role``."""
    bot = account_services.service_id_create(
        actor=Principal.of_membership(acme.world.owner), name="top-bot", role="owner"
    )
    _, token = factories.make_api_key(bot, name="all scopes", scopes=ALL_SCOPES)
    if role != "owner":
        account_services.service_id_update(
            actor=Principal.of_membership(acme.world.owner), service_id=bot, role=role
        )
    return token


API_TARGETS = {"key": "another member's key", "service_id": "a service ID"}


def _api_path(route, acme: Acme) -> str:
    values = {}
    for param in route.object_params:
        kind = route.kind_of(param)
        if kind not in API_TARGETS:
            pytest.fail(f"add a target for {kind} ({route.route}) to API_TARGETS")
        values[param] = acme.objects[API_TARGETS[kind]].pk
    return route.path(**values)


@pytest.mark.parametrize("principal", ["person", "service ID"])
@pytest.mark.parametrize("role", ROLES)
def test_api_keys_act_within_their_owners_current_role(principal, role, acme, api_client, settings):
    demote = _demote_person if principal == "person" else _demote_service_id
    token = demote(acme, role)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}", "format": "json"}
    seen, want = {}, {}
    for route, method in API_ENDPOINTS:
        label = f"{method.upper()} {route.route}"
        want[label] = _api_expected(route, method, role)
        with rolled_back():
            response = getattr(api_client, method)(
                _api_path(route, acme), API_BODIES[method], **headers
            )
        body = response.json()
        status = 200 if response.status_code in (200, 201) else response.status_code
        seen[label] = (status, body.get("code") if status >= 400 else None)
        if seen[label][1] == "insufficient_scope":
            challenge = response["WWW-Authenticate"]
            assert 'error="insufficient_scope"' in challenge and "scope=" in challenge, label
    assert seen == want
