"""key_issue, key_revoke, key_rotate: state, audit event, and nothing left behind on failure."""

import hashlib
import json
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from accounts.models import Tenant
from accounts.principals import Principal
from audit.models import AuditEvent
from audit.services import Actor
from keys import services, tokens
from keys.authentication import BearerKeyAuthentication
from keys.models import ApiKey
from keys.networks import BAD_CIDR
from keys.scopes import UNKNOWN_SCOPE
from tests import factories

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]

CLI = Actor.cli("test")


@pytest.fixture
def admin(tenant):
    return factories.add_member(tenant, "admin")


@pytest.fixture
def principal(admin):
    return Principal.of_membership(admin)


def _in_days(days: float):
    return timezone.now() + timedelta(days=days)


def _issue(principal, **overrides):
    kwargs = {
        "actor": principal,
        "tenant": principal.tenant,
        "owner": principal.user,
        "name": "ci",
        "scopes": ["keys:read"],
        "expires_at": _in_days(30),
    }
    return services.key_issue(**(kwargs | overrides))


def _authenticates(token: str) -> bool:
    request = Request(APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {token}"))
    try:
        return BearerKeyAuthentication().authenticate(request) is not None
    except exceptions.AuthenticationFailed:
        return False


def _snapshot():
    return ApiKey.objects.count(), AuditEvent.objects.count()


# --- Issue ---------------------------------------------------------------------------------


def test_issue_stores_only_the_digest_and_records_key_issued(principal, admin):
    key, token = _issue(principal, scopes=["members:read", "keys:read", "keys:read"])
    key.refresh_from_db()
    assert bytes(key.digest) == hashlib.sha256(token.encode()).digest()
    assert key.hint == tokens.hint(token)
    assert key.scopes == ["keys:read", "members:read"]
    assert key.user == admin.user and key.created_by == admin.user
    assert tokens.parse(token).kind is tokens.Kind.PERSONAL
    event = AuditEvent.objects.get(action="key.issued")
    assert (event.actor_kind, event.actor_id) == ("user", str(admin.user.pk))
    assert (event.target_kind, event.target_id) == ("key", str(key.pk))
    assert event.metadata["scopes"] == ["keys:read", "members:read"]
    assert token not in json.dumps(list(ApiKey.objects.values_list()), default=str)
    assert token not in json.dumps(list(AuditEvent.objects.values_list()), default=str)
    assert _authenticates(token)


def test_issue_service_key_from_the_cli_and_by_a_manager(tenant, principal):
    service_id = factories.make_service_id(tenant, "ci-bot", role="member")
    by_cli, cli_token = services.key_issue(
        actor=CLI,
        tenant=tenant,
        owner=service_id,
        name="a",
        scopes=["keys:read"],
        expires_at=_in_days(1),
    )
    by_admin, _ = _issue(principal, owner=service_id, name="b")
    assert by_cli.service_id == by_admin.service_id == service_id
    assert by_cli.created_by is None
    assert tokens.parse(cli_token).kind is tokens.Kind.SERVICE
    events = AuditEvent.objects.filter(action="key.issued", target_kind="key")
    assert {e.actor_kind for e in events} == {"cli", "user"}


def test_non_expiring_key_is_allowed_only_when_the_tenant_allows_it(tenant, principal):
    with pytest.raises(ValidationError) as raised:
        _issue(principal, expires_at=None)
    assert raised.value.message_dict["expires_at"] == [services.EXPIRY_REQUIRED]
    Tenant.objects.filter(pk=tenant.pk).update(allow_non_expiring_keys=True)
    principal.tenant.refresh_from_db()
    key, _ = _issue(principal, expires_at=None)
    assert key.expires_at is None


def _member_principal(tenant):
    return Principal.of_membership(factories.add_member(tenant, "member"))


ISSUE_REFUSALS = {
    "expiry missing": (
        lambda p, t: {"expires_at": None},
        ValidationError,
        {"expires_at": [services.EXPIRY_REQUIRED]},
    ),
    "expiry too long": (
        lambda p, t: {"expires_at": _in_days(366)},
        ValidationError,
        {"expires_at": [services.EXPIRY_TOO_LONG % {"days": 365}]},
    ),
    "expiry in the past": (
        lambda p, t: {"expires_at": _in_days(-1)},
        ValidationError,
        {"expires_at": [services.EXPIRY_PAST]},
    ),
    "scope above the ceiling": (
        lambda p, t: {
            "actor": (m := _member_principal(t)),
            "owner": m.user,
            "scopes": ["service_ids:write"],
        },
        ValidationError,
        {"scopes": [services.SCOPE_ABOVE_CEILING % {"scope": "service_ids:write"}]},
    ),
    "unknown scope": (
        lambda p, t: {"scopes": ["keys:destroy"]},
        ValidationError,
        {"scopes": [UNKNOWN_SCOPE % {"scope": "keys:destroy"}]},
    ),
    "bad CIDR": (
        lambda p, t: {"allowed_ips": ["10.0.0.0/33"]},
        ValidationError,
        {"allowed_ips": [BAD_CIDR % {"value": "10.0.0.0/33"}]},
    ),
    "duplicate name": (
        lambda p, t: {"name": "taken"},
        ValidationError,
        {"name": [services.NAME_TAKEN % {"name": "taken"}]},
    ),
    "blank name": (
        lambda p, t: {"name": "  "},
        ValidationError,
        {"name": [services.NAME_REQUIRED]},
    ),
    "member issuing a service key": (
        lambda p, t: {
            "actor": _member_principal(t),
            "owner": factories.make_service_id(t, "bot"),
        },
        PermissionDenied,
        services.NOT_YOURS,
    ),
    "cli minting a person's token": (
        lambda p, t: {"actor": CLI},
        PermissionDenied,
        services.NO_PERSON_TOKENS_HERE,
    ),
    "someone else's personal token": (
        lambda p, t: {"owner": t.memberships.get(role="owner").user},
        PermissionDenied,
        services.NO_PERSON_TOKENS_HERE,
    ),
    "a key creating a key": (
        lambda p, t: {"actor": Principal(tenant=t, role=p.role, user=p.user, key=object())},
        PermissionDenied,
        services.NOT_YOURS,
    ),
    "disabled service ID": (
        lambda p, t: {"actor": CLI, "owner": _disabled_service_id(t)},
        ValidationError,
        [services.SERVICE_ID_DISABLED],
    ),
}


def _disabled_service_id(tenant):
    service_id = factories.make_service_id(tenant, "off")
    type(service_id).objects.filter(pk=service_id.pk).update(is_active=False)
    service_id.refresh_from_db()
    return service_id


@pytest.mark.parametrize("case", list(ISSUE_REFUSALS), ids=str)
def test_refused_issue_leaves_no_key_and_no_event(tenant, principal, case):
    overrides, error, expected = ISSUE_REFUSALS[case]
    _issue(principal, name="taken")
    arguments = overrides(principal, tenant)
    before = _snapshot()
    with pytest.raises(error) as raised:
        _issue(principal, **arguments)
    assert _snapshot() == before
    if error is ValidationError and isinstance(expected, dict):
        assert raised.value.message_dict == expected
    elif error is ValidationError:
        assert raised.value.messages == expected
    else:
        assert str(raised.value) == expected


# --- Revoke --------------------------------------------------------------------------------


def test_revoke_ends_the_key_at_once_and_records_key_revoked(principal, admin):
    key, token = _issue(principal)
    services.key_revoke(actor=principal, key=key, reason=" rotated out ")
    key.refresh_from_db()
    assert key.revoked_at is not None and key.revoked_by == admin.user
    assert key.revoked_reason == "rotated out"
    event = AuditEvent.objects.get(action="key.revoked")
    assert event.metadata == {"reason": "rotated out"} and event.target_id == str(key.pk)
    assert not _authenticates(token)


def test_revoking_twice_fails_and_records_nothing(principal):
    key, _ = _issue(principal)
    services.key_revoke(actor=principal, key=key)
    before = _snapshot()
    with pytest.raises(ValidationError) as raised:
        services.key_revoke(actor=principal, key=key)
    assert raised.value.messages == [services.ALREADY_REVOKED]
    assert _snapshot() == before


def test_member_cannot_revoke_someone_elses_key_or_another_tenants(tenant, principal, other_tenant):
    key, _ = _issue(principal)
    outsider = Principal.of_membership(other_tenant.memberships.get(role="owner"))
    for actor in (_member_principal(tenant), outsider):
        before = _snapshot()
        with pytest.raises(PermissionDenied):
            services.key_revoke(actor=actor, key=key)
        assert _snapshot() == before
    key.refresh_from_db()
    assert key.revoked_at is None


def test_revoked_key_cannot_be_restored(principal):
    key, _ = _issue(principal)
    services.key_revoke(actor=principal, key=key)
    key.refresh_from_db()
    key.revoked_at = None
    with pytest.raises(ValueError, match="cannot be restored"):
        key.save()


# --- Rotate --------------------------------------------------------------------------------


def test_rotate_issues_a_successor_and_keeps_the_old_key_for_the_grace(principal, monkeypatch):
    old, old_token = _issue(principal, allowed_ips=["192.0.2.0/24", "127.0.0.1"])
    now = timezone.now()
    new, new_token = services.key_rotate(actor=principal, key=old, grace="24h", now=now)
    old.refresh_from_db()
    assert (new.name, new.scopes, new.allowed_ips) == (old.name, old.scopes, old.allowed_ips)
    assert new.rotated_from == old and new_token != old_token
    assert old.rotated_at == now and old.expires_at == now + timedelta(hours=24)
    assert old.revoked_at is None and old.status(now) == "rotated"
    event = AuditEvent.objects.get(action="key.rotated")
    assert event.target_id == str(new.pk) and event.metadata["previous_key"] == old.pk
    assert _authenticates(old_token) and _authenticates(new_token)
    monkeypatch.setattr("keys.authentication._now", lambda: now + timedelta(hours=24, seconds=1))
    assert not _authenticates(old_token)
    assert _authenticates(new_token)


def test_rotate_now_revokes_the_old_key_immediately(principal):
    old, old_token = _issue(principal)
    _, new_token = services.key_rotate(actor=principal, key=old, grace="now")
    old.refresh_from_db()
    assert old.revoked_at is not None and old.revoked_reason == "rotated"
    assert not _authenticates(old_token) and _authenticates(new_token)


def test_rotating_a_non_expiring_key_after_the_policy_tightened_uses_the_default_lifetime(
    tenant, principal
):
    Tenant.objects.filter(pk=tenant.pk).update(allow_non_expiring_keys=True)
    principal.tenant.refresh_from_db()
    old, _ = _issue(principal, expires_at=None)
    Tenant.objects.filter(pk=tenant.pk).update(
        allow_non_expiring_keys=False, default_key_lifetime_days=14
    )
    now = timezone.now()
    new, _ = services.key_rotate(actor=principal, key=old, grace="1h", now=now)
    assert new.expires_at == now + timedelta(days=14)


ROTATE_REFUSALS = {
    "unknown grace": ({"grace": "forever"}, ValidationError),
    "a key rotating a key": ("key actor", PermissionDenied),
    "already revoked": ("revoked", ValidationError),
    "already rotated": ("rotated", ValidationError),
    "someone else's key": ("member", PermissionDenied),
}


@pytest.mark.parametrize("case", list(ROTATE_REFUSALS), ids=str)
def test_refused_rotation_leaves_no_successor_and_no_event(tenant, principal, case):
    old, _ = _issue(principal)
    setup, error = ROTATE_REFUSALS[case]
    arguments = {"actor": principal, "key": old, "grace": "1h"}
    if isinstance(setup, dict):
        arguments |= setup
    elif setup == "key actor":
        arguments["actor"] = Principal(tenant=tenant, role="admin", user=principal.user, key=old)
    elif setup == "revoked":
        services.key_revoke(actor=principal, key=old)
    elif setup == "rotated":
        services.key_rotate(actor=principal, key=old, grace="1h")
        old.refresh_from_db()
    elif setup == "member":
        arguments["actor"] = _member_principal(tenant)
    before = _snapshot()
    with pytest.raises(error):
        services.key_rotate(**arguments)
    assert _snapshot() == before


def test_a_short_lived_key_is_not_expiring_as_soon_as_it_is_issued(tenant, owner):
    key, _ = factories.make_api_key(owner, tenant, days=7)
    assert key.status() == "active"
    assert key.status(now=key.expires_at - timedelta(days=1)) == "expiring"
    long_key, _ = factories.make_api_key(owner, tenant, days=90)
    assert long_key.status(now=long_key.expires_at - timedelta(days=6)) == "expiring"
    assert long_key.status(now=long_key.expires_at - timedelta(days=8)) == "active"
