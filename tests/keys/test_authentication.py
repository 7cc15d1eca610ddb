"""BearerKeyAuthentication: RFC 6750 header parsing, one query, every refusal reason."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from accounts import services as account_services
from accounts.models import Membership, Tenant, User
from accounts.principals import Principal
from audit.services import Actor
from common.request import Decision, context_of
from keys import services, tokens
from keys.authentication import (
    INVALID_TOKEN,
    INVALID_TOKEN_CHALLENGE,
    MALFORMED_HEADER,
    BearerKeyAuthentication,
)
from keys.leaks import TokenInQuery
from keys.lookup import Reason
from keys.models import ApiKey
from keys.throttling import reset_process_state
from tests import factories

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]


def _request(authorization: str | None = None, path: str = "/api/v1/whoami/", **meta) -> Request:
    if authorization is not None:
        meta["HTTP_AUTHORIZATION"] = authorization
    return Request(APIRequestFactory().get(path, **meta))


def _authenticate(request: Request):
    return BearerKeyAuthentication().authenticate(request)


@pytest.fixture
def admin(tenant):
    return factories.add_member(tenant, "admin")


@pytest.fixture
def issued(admin):
    """An admin's personal key with two scopes: ``(api_key, token)``."""
    return factories.make_api_key(admin, scopes=["keys:read", "members:read"])


def _denial(request: Request) -> Decision:
    return context_of(request).decision


# --- Header parsing ------------------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "", "Basic dXNlcjpwYXNz", "Token abc", "Bearerx abc"])
def test_no_header_or_another_scheme_is_not_ours(header, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert _authenticate(_request(header)) is None


@pytest.mark.parametrize(
    "header",
    ["Bearer", "Bearer ", "Bearer a b", "Bearer kwp_x kwp_y", "bearer  one two three"],
)
def test_malformed_header_is_refused_with_401(header, django_assert_num_queries):
    request = _request(header)
    with django_assert_num_queries(0), pytest.raises(exceptions.AuthenticationFailed) as raised:
        _authenticate(request)
    assert raised.value.detail == MALFORMED_HEADER
    assert raised.value.detail.code == "invalid_token"
    assert _denial(request).reason == Reason.MALFORMED


def test_non_ascii_token_is_malformed():
    request = Request(APIRequestFactory().get("/", HTTP_AUTHORIZATION="Bearer kwp_é"))
    with pytest.raises(exceptions.AuthenticationFailed):
        _authenticate(request)


def test_scheme_is_case_insensitive(issued):
    key, token = issued
    _, authenticated = _authenticate(_request(f"bEaReR {token}"))
    assert authenticated == key


def test_authenticate_header_is_an_invalid_token_challenge():
    assert BearerKeyAuthentication().authenticate_header(_request()) == INVALID_TOKEN_CHALLENGE
    assert INVALID_TOKEN_CHALLENGE == 'Bearer realm="api", error="invalid_token"'


# --- Malformed tokens: no query ------------------------------------------------------------

VALID_SHAPE = "kwp_" + "0" * 32 + "3dvAlN"


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "kwp_",
        "kwp_" + "0" * 32 + "3dvAlM",  # checksum off by one char
        "xxp_" + "0" * 32 + "3dvAlN",  # another prefix
        "kwx_" + "0" * 32 + "3dvAlN",  # unknown kind
        VALID_SHAPE + "0",  # too long
        VALID_SHAPE[:-1],  # too short
        "kwp_" + "0" * 31 + "!" + "3dvAlN",  # not base62
    ],
)
def test_malformed_token_is_refused_without_any_query(raw, django_assert_num_queries):
    request = _request()
    with django_assert_num_queries(0), pytest.raises(exceptions.AuthenticationFailed) as raised:
        BearerKeyAuthentication().authenticate_credentials(raw, request)
    assert raised.value.detail == INVALID_TOKEN
    assert _denial(request) == Decision(reason=Reason.MALFORMED, record=False)


# --- One query -----------------------------------------------------------------------------


def test_valid_key_authenticates_in_exactly_one_query(issued, admin, django_assert_num_queries):
    key, token = issued
    _authenticate(_request(f"Bearer {token}"))  # first use this minute also writes last_used_at
    with django_assert_num_queries(1) as queries:
        user, authenticated = _authenticate(_request(f"Bearer {token}"))
    assert "SELECT" in queries.captured_queries[0]["sql"]
    assert user == admin.user
    assert authenticated.pk == key.pk
    principal = authenticated.principal
    assert (principal.tenant, principal.role, principal.user) == (admin.tenant, "admin", admin.user)
    assert principal.service_id is None and principal.key is authenticated


def test_the_key_lookup_is_a_prepared_statement_on_postgresql(issued, postgresql):
    _, token = issued
    for _ in range(3):
        _authenticate(_request(f"Bearer {token}"))
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE NOT from_sql")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any("keys_apikey" in sql and "digest" in sql for sql in prepared)


@pytest.mark.django_db(transaction=True)
def test_a_key_still_works_after_the_database_dropped_the_connection(issued, postgresql):
    key, token = issued
    _authenticate(_request(f"Bearer {token}"))  # the connection is open and kept
    factories.drop_database_connection()
    _, authenticated = _authenticate(_request(f"Bearer {token}"))
    assert authenticated.pk == key.pk


def test_first_use_in_a_minute_writes_last_used_once(issued, django_assert_num_queries):
    key, token = issued
    with django_assert_num_queries(2) as queries:
        _authenticate(_request(f"Bearer {token}", REMOTE_ADDR="192.0.2.7"))
    assert queries.captured_queries[1]["sql"].startswith("UPDATE")
    key.refresh_from_db()
    assert key.last_used_ip == "192.0.2.7"
    first = key.last_used_at
    _authenticate(_request(f"Bearer {token}", REMOTE_ADDR="192.0.2.8"))
    key.refresh_from_db()
    assert (key.last_used_at, key.last_used_ip) == (first, "192.0.2.7")
    cache.delete(f"kw:lu:{key.pk}")  # a minute later, in this and every other process
    reset_process_state()
    _authenticate(_request(f"Bearer {token}", REMOTE_ADDR="192.0.2.8"))
    key.refresh_from_db()
    assert key.last_used_ip == "192.0.2.8" and key.last_used_at > first


def test_service_key_authenticates_as_its_service_id_with_its_role(tenant):
    service_id = factories.make_service_id(tenant, "ci", role="auditor")
    key, token = factories.make_api_key(service_id, scopes=["audit:read"])
    principal, authenticated = _authenticate(_request(f"Bearer {token}"))
    assert principal == service_id
    assert authenticated.principal.role == "auditor"
    assert authenticated.principal.user is None
    assert authenticated.principal.service_id == service_id


def test_owner_role_is_read_fresh_on_every_request(issued, admin, tenant):
    key, token = issued
    owner = tenant.memberships.get(role="owner")
    account_services.membership_change_role(
        actor=Principal.of_membership(owner), target=admin, role="auditor"
    )
    _, authenticated = _authenticate(_request(f"Bearer {token}"))
    assert authenticated.principal.role == "auditor"


# --- Every refusal: a generic 401, the precise reason for the audit log ---------------------


def _expire(key, tenant, admin):
    ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))


def _revoke(key, tenant, admin):
    services.key_revoke(actor=Actor.cli("test"), key=key, reason="test")


def _remove_owner(key, tenant, admin):
    # Removal revokes the key (tests/keys/test_people.py); a membership that vanished without
    # the ORM (raw SQL, a restore) is still refused at authentication.
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {Membership._meta.db_table} WHERE id = %s", [admin.pk])


def _deactivate_owner(key, tenant, admin):
    # As above: a bulk update sends no post_save, and the key is still refused.
    User.objects.filter(pk=admin.user_id).update(is_active=False)


def _deactivate_tenant(key, tenant, admin):
    Tenant.objects.filter(pk=tenant.pk).update(is_active=False)


def _restrict_key_networks(key, tenant, admin):
    ApiKey.objects.filter(pk=key.pk).update(allowed_ips=["10.0.0.0/8"])


def _restrict_tenant_networks(key, tenant, admin):
    Tenant.objects.filter(pk=tenant.pk).update(allowed_ips=["2001:db8::/32"])


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (_expire, Reason.EXPIRED),
        (_revoke, Reason.REVOKED),
        (_remove_owner, Reason.OWNER_NOT_MEMBER),
        (_deactivate_owner, Reason.OWNER_INACTIVE),
        (_deactivate_tenant, Reason.TENANT_INACTIVE),
        (_restrict_key_networks, Reason.IP_NOT_ALLOWED_BY_KEY),
        (_restrict_tenant_networks, Reason.IP_NOT_ALLOWED_BY_TENANT),
    ],
    ids=lambda v: v if isinstance(v, str) else v.__name__.strip("_"),
)
def test_refused_key_gets_the_generic_message_and_the_reason_goes_to_the_request(
    issued, tenant, admin, change, reason
):
    key, token = issued
    change(key, tenant, admin)
    request = _request(f"Bearer {token}")
    with pytest.raises(exceptions.AuthenticationFailed) as raised:
        _authenticate(request)
    assert raised.value.detail == INVALID_TOKEN
    assert _denial(request).reason == reason
    assert _denial(request).key.pk == key.pk
    assert _denial(request).record is True


def test_unknown_key_reason_has_no_key():
    request = _request(f"Bearer {tokens.generate(tokens.Kind.PERSONAL)}")
    with pytest.raises(exceptions.AuthenticationFailed):
        _authenticate(request)
    assert _denial(request).reason == Reason.UNKNOWN
    assert _denial(request).key is None


def test_disabled_service_id_refuses_its_keys(tenant):
    service_id = factories.make_service_id(tenant, "ci", role="member")
    _, token = factories.make_api_key(service_id, scopes=["keys:read"])
    owner = tenant.memberships.get(role="owner")
    account_services.service_id_update(
        actor=Principal.of_membership(owner), service_id=service_id, is_active=False
    )
    request = _request(f"Bearer {token}")
    with pytest.raises(exceptions.AuthenticationFailed):
        _authenticate(request)
    assert _denial(request).reason == Reason.SERVICE_ID_DISABLED


def test_key_inside_its_allowed_networks_is_accepted(admin):
    _, token = factories.make_api_key(admin, allowed_ips=["192.0.2.0/24"])
    assert _authenticate(_request(f"Bearer {token}", REMOTE_ADDR="192.0.2.99")) is not None
    with pytest.raises(exceptions.AuthenticationFailed):
        _authenticate(_request(f"Bearer {token}", REMOTE_ADDR="198.51.100.1"))


@override_settings(KEYWARD_TRUSTED_PROXIES=["10.0.0.0/8"])
def test_allowed_networks_use_the_client_ip_behind_a_trusted_proxy(admin):
    _, token = factories.make_api_key(admin, allowed_ips=["192.0.2.0/24"])
    behind_proxy = {"REMOTE_ADDR": "10.1.2.3", "HTTP_X_FORWARDED_FOR": "192.0.2.5"}
    assert _authenticate(_request(f"Bearer {token}", **behind_proxy)) is not None
    forged = {"REMOTE_ADDR": "198.51.100.1", "HTTP_X_FORWARDED_FOR": "192.0.2.5"}
    with pytest.raises(exceptions.AuthenticationFailed):
        _authenticate(_request(f"Bearer {token}", **forged))


def test_rotated_key_works_during_grace_and_fails_after(admin, monkeypatch):
    old, old_token = factories.make_api_key(admin)
    _, new_token = services.key_rotate(actor=Principal.of_membership(admin), key=old, grace="1h")
    assert _authenticate(_request(f"Bearer {old_token}"))[1].pk == old.pk
    later = timezone.now() + timedelta(hours=1, seconds=1)
    monkeypatch.setattr("keys.authentication._now", lambda: later)
    request = _request(f"Bearer {old_token}")
    with pytest.raises(exceptions.AuthenticationFailed):
        _authenticate(request)
    assert _denial(request).reason == Reason.ROTATED
    assert _authenticate(_request(f"Bearer {new_token}")) is not None


# --- Query string ----------------------------------------------------------------------------


def test_token_in_query_is_refused_before_the_header_is_read(issued):
    _, token = issued
    request = _request(f"Bearer {token}", path=f"/api/v1/whoami/?api_key={token}")
    with pytest.raises(TokenInQuery) as raised:
        _authenticate(request)
    assert raised.value.status_code == 400
    assert raised.value.detail.code == "invalid_request"
    assert _denial(request).reason == Reason.TOKEN_IN_QUERY


def test_ordinary_query_parameters_are_ignored(issued):
    _, token = issued
    request = _request(f"Bearer {token}", path="/api/v1/keys/?page=2&keyword=x&token=")
    assert _authenticate(request) is not None


def test_a_revoked_key_retried_is_refused_without_a_lookup_and_still_named(
    admin, django_assert_num_queries
):
    key, token = factories.make_api_key(admin)
    services.key_revoke(actor=Principal.of_membership(admin), key=key, reason="test")
    with pytest.raises(exceptions.AuthenticationFailed):
        _authenticate(_request(f"Bearer {token}"))
    request = _request(f"Bearer {token}")
    with django_assert_num_queries(0), pytest.raises(exceptions.AuthenticationFailed):
        _authenticate(request)
    assert _denial(request).reason == Reason.REVOKED
    assert _denial(request).key.pk == key.pk  # the audit event names the key and its tenant
