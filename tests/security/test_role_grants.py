"""No privilege is raised without a fresh second factor, and never by a key.

A matrix: every way a role is granted (an invitation, a member's new role, a new service ID, a
service ID's new role, a service ID enabled) × every door (the portal with a second factor
verified in the last KEYWARD_SUDO_SECONDS, the portal with an older one, an owner's personal key
holding every scope). Whether each cell succeeds is written down here, not computed; a refusal
writes no row and no event (a key's refusal only its ``api.denied`` request event).

Where the API has no endpoint for a grant (invitations, members' roles), the key's door is the
service called with the key's principal, as any future endpoint would call it.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from accounts import conf, roles
from accounts import services as account_services
from accounts.decorators import SUDO_SESSION_KEY
from accounts.models import Invitation, Membership, ServiceID
from accounts.principals import Principal
from audit.models import AuditEvent
from tests import factories
from tests.security.surface import ALL_SCOPES, tenant_state, verified_client

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]

FRESH, STALE, KEY = "portal, fresh sudo", "portal, stale sudo", "key"
OK, SUDO, DENIED = "granted", "sent to verify a second factor", "403"
REQUEST_EVENTS = ("api.request", "api.denied")


@dataclass
class Acme:
    tenant: object
    owner: Membership
    member: Membership
    admin: Membership
    member_bot: ServiceID
    admin_bot: ServiceID
    disabled_admin_bot: ServiceID
    disabled_member_bot: ServiceID
    key: object
    token: str

    def key_principal(self) -> Principal:
        """The principal the API builds for the owner's key."""
        return Principal(tenant=self.tenant, role="owner", user=self.owner.user, key=self.key)


@pytest.fixture
def acme(db):
    tenant = factories.make_tenant("acme")
    owner = tenant.memberships.select_related("user", "tenant").get(role="owner")
    as_owner = Principal.of_membership(owner)
    bots = {}
    for name, role, active in [
        ("member-bot", "member", True),
        ("admin-bot", "admin", True),
        ("off-admin-bot", "admin", False),
        ("off-member-bot", "member", False),
    ]:
        bots[name] = account_services.service_id_create(actor=as_owner, name=name, role=role)
        if not active:
            account_services.service_id_update(
                actor=as_owner, service_id=bots[name], is_active=False
            )
    key, token = factories.make_api_key(owner, name="everything", scopes=ALL_SCOPES)
    return Acme(
        tenant=tenant,
        owner=owner,
        member=factories.add_member(tenant, "member"),
        admin=factories.add_member(tenant, "admin"),
        member_bot=bots["member-bot"],
        admin_bot=bots["admin-bot"],
        disabled_admin_bot=bots["off-admin-bot"],
        disabled_member_bot=bots["off-member-bot"],
        key=key,
        token=token,
    )


def _url(name: str, **kwargs) -> str:
    return reverse(name, kwargs={"slug": "acme", **kwargs})


@dataclass(frozen=True)
class Grant:
    """One way of granting a role: through the portal and through a key, and how to tell it
    took effect. ``portal`` is None where the portal has no page for it."""

    name: str
    portal: Callable | None
    key: Callable
    applied: Callable
    want: dict  # door -> OK, SUDO or DENIED
    refusal: str | None = None  # the 403 message a key gets

    def __str__(self) -> str:
        return self.name


def _api(acme: Acme, api_client, method: str, path: str, body: dict):
    call = getattr(api_client, method)
    return call(path, body, format="json", HTTP_AUTHORIZATION=f"Bearer {acme.token}")


def _service(call: Callable):
    """Call a service as the key's principal; answer like the API would (201 or 403)."""
    try:
        call()
    except PermissionDenied as error:
        return 403, str(error)
    return 201, None


def _invite(role: str) -> Grant:
    email = f"new-{role}@example.com"
    lowest = role == roles.lowest()
    return Grant(
        f"invitation as {role}",
        portal=lambda acme, client: client.post(
            _url("accounts:member_invite"), {"email": email, "role": role}
        ),
        key=lambda acme, api: _service(
            lambda: account_services.invitation_create(
                actor=acme.key_principal(), email=email, role=role
            )
        ),
        applied=lambda acme: Invitation.objects.filter(email=email, role=role).exists(),
        want={FRESH: OK, STALE: SUDO, KEY: OK if lowest else DENIED},
        refusal=None
        if lowest
        else account_services.KEY_GRANTS_ONLY_LOWEST_ROLE % {"role": roles.lowest()},
    )


def _member_role(start: str, role: str) -> Grant:
    raising = not roles.at_most(role, start)

    def target(acme):
        return acme.member if start == "member" else acme.admin

    return Grant(
        f"member {start} → {role}",
        portal=lambda acme, client: client.post(
            _url("accounts:member_role", pk=target(acme).pk), {"role": role}
        ),
        key=lambda acme, api: _service(
            lambda: account_services.membership_change_role(
                actor=acme.key_principal(), target=target(acme), role=role
            )
        ),
        applied=lambda acme: Membership.objects.get(pk=target(acme).pk).role == role,
        # Changing a member's role always asks for sudo in the portal, lowering too.
        want={FRESH: OK, STALE: SUDO, KEY: DENIED if raising else OK},
        refusal=account_services.KEY_CANNOT_RAISE_ROLE if raising else None,
    )


def _service_id_create(role: str) -> Grant:
    name = f"new-{role}-bot"
    lowest = role == roles.lowest()
    return Grant(
        f"service ID created as {role}",
        portal=lambda acme, client: client.post(
            _url("accounts:service_ids"), {"name": name, "role": role, "description": ""}
        ),
        key=lambda acme, api: _api(
            acme, api, "post", "/api/v1/service-ids/", {"name": name, "role": role}
        ),
        applied=lambda acme: ServiceID.objects.filter(name=name, role=role).exists(),
        want={FRESH: OK, STALE: SUDO, KEY: OK if lowest else DENIED},
        refusal=None
        if lowest
        else account_services.KEY_GRANTS_ONLY_LOWEST_ROLE % {"role": roles.lowest()},
    )


def _service_id_role(start: str, role: str) -> Grant:
    raising = not roles.at_most(role, start)

    def bot(acme):
        return acme.member_bot if start == "member" else acme.admin_bot

    return Grant(
        f"service ID {start} → {role}",
        portal=None,  # the portal changes no service ID's role
        key=lambda acme, api: _api(
            acme, api, "patch", f"/api/v1/service-ids/{bot(acme).pk}/", {"role": role}
        ),
        applied=lambda acme: ServiceID.objects.get(pk=bot(acme).pk).role == role,
        want={KEY: DENIED if raising else OK},
        refusal=account_services.KEY_CANNOT_RAISE_ROLE if raising else None,
    )


def _service_id_enable(role: str) -> Grant:
    lowest = role == roles.lowest()

    def bot(acme):
        return acme.disabled_member_bot if role == "member" else acme.disabled_admin_bot

    return Grant(
        f"service ID of role {role} enabled",
        portal=lambda acme, client: client.post(
            _url("accounts:service_id_toggle", pk=bot(acme).pk)
        ),
        key=lambda acme, api: _api(
            acme, api, "patch", f"/api/v1/service-ids/{bot(acme).pk}/", {"is_active": True}
        ),
        applied=lambda acme: ServiceID.objects.get(pk=bot(acme).pk).is_active,
        want={FRESH: OK, STALE: SUDO, KEY: OK if lowest else DENIED},
        refusal=None
        if lowest
        else account_services.KEY_GRANTS_ONLY_LOWEST_ROLE % {"role": roles.lowest()},
    )


GRANTS = [
    _invite("owner"),
    _invite("admin"),
    _invite("member"),
    _member_role("member", "owner"),
    _member_role("member", "admin"),
    _member_role("admin", "auditor"),
    _member_role("admin", "member"),
    _service_id_create("owner"),
    _service_id_create("admin"),
    _service_id_create("auditor"),
    _service_id_create("member"),
    _service_id_role("member", "owner"),
    _service_id_role("member", "auditor"),
    _service_id_role("admin", "owner"),
    _service_id_role("admin", "member"),
    _service_id_enable("admin"),
    _service_id_enable("member"),
]
CELLS = [(grant, door) for grant in GRANTS for door in (FRESH, STALE, KEY) if door in grant.want]


def _portal_client(acme: Acme, door: str):
    client = verified_client(acme.owner.user)
    if door == STALE:
        session = client.session
        session[SUDO_SESSION_KEY] = time.time() - conf.settings.SUDO_SECONDS - 1
        session.save()
    return client


def _rows(acme: Acme) -> dict:
    state = tenant_state(acme.tenant)
    del state["audit.AuditEvent"]
    return state


def _last_event_id() -> int:
    return AuditEvent.objects.order_by("-id").values_list("id", flat=True)[0]


@pytest.mark.parametrize(("grant", "door"), CELLS, ids=lambda v: str(v))
def test_who_may_grant_a_role_through_which_door(grant, door, acme, api_client):
    api_client.get("/api/v1/whoami/", HTTP_AUTHORIZATION=f"Bearer {acme.token}")  # last use set
    client = _portal_client(acme, door) if door != KEY else None  # its login is an event
    before, last = _rows(acme), _last_event_id()
    if door == KEY:
        response = grant.key(acme, api_client)
        status, detail = response if isinstance(response, tuple) else (response.status_code, None)
        if status == 403 and detail is None:
            detail = response.json()["detail"]
            assert response.json()["code"] == "permission_denied"
        seen = DENIED if status == 403 else OK if status in (200, 201) else status
    else:
        response = grant.portal(acme, client)
        location = response.get("Location", "")
        if location.startswith(reverse("accounts:sudo")):
            seen = SUDO
        else:
            seen = OK if response.status_code == 302 else response.status_code
    assert seen == grant.want[door]
    events = AuditEvent.objects.filter(id__gt=last).exclude(action__in=REQUEST_EVENTS)
    if seen == OK:
        assert grant.applied(acme)
        assert events.exists()
    else:
        assert not grant.applied(acme)
        assert _rows(acme) == before, "a refused grant changed a row"
        assert not events.exists(), "a refused grant recorded an event"
    if seen == DENIED:
        assert detail == grant.refusal


def test_a_stale_session_can_still_disable_a_service_id_and_list_pages(acme):
    client = _portal_client(acme, STALE)
    assert client.get(_url("accounts:service_ids")).status_code == 200
    response = client.post(_url("accounts:service_id_toggle", pk=acme.admin_bot.pk))
    assert response.status_code == 302
    assert not ServiceID.objects.get(pk=acme.admin_bot.pk).is_active


@pytest.mark.parametrize(
    ("role", "other", "at_most"),
    [
        ("member", "auditor", True),
        ("auditor", "member", False),
        ("auditor", "admin", True),
        ("admin", "owner", True),
        ("owner", "admin", False),  # same scopes, more actions
        ("admin", "admin", True),
        ("emperor", "owner", False),
    ],
)
def test_role_height_counts_actions_and_scope_ceilings(role, other, at_most):
    assert roles.at_most(role, other) is at_most


def test_the_lowest_role_is_member():
    assert roles.lowest() == roles.Role.MEMBER


def test_no_one_grants_a_role_above_their_own(acme):
    as_admin = Principal.of_membership(acme.admin)
    for grant in (
        lambda: account_services.invitation_create(
            actor=as_admin, email="boss@example.com", role="owner"
        ),
        lambda: account_services.membership_change_role(
            actor=as_admin, target=acme.member, role="owner"
        ),
        lambda: account_services.service_id_create(actor=as_admin, name="boss-bot", role="owner"),
        lambda: account_services.service_id_update(
            actor=as_admin, service_id=acme.admin_bot, role="owner"
        ),
    ):
        with pytest.raises(PermissionDenied):
            grant()
    assert not Invitation.objects.filter(role="owner").exists()
    assert not ServiceID.objects.filter(role="owner").exists()
    assert Membership.objects.filter(tenant=acme.tenant, role="owner").count() == 1


def test_a_service_key_cannot_raise_its_own_service_id(acme, api_client):
    bot = acme.admin_bot
    _, admin_token = factories.make_api_key(bot, scopes=ALL_SCOPES)
    response = api_client.patch(
        f"/api/v1/service-ids/{bot.pk}/",
        {"role": "owner"},
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {admin_token}",
    )
    assert response.status_code == 403
    assert ServiceID.objects.get(pk=bot.pk).role == "admin"
