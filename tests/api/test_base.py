"""The base of every API view (api/base.py, api/middleware.py): every endpoint against every way a
key can be refused, one audit event per keyed request, keys in URLs, no session on the API."""

import json
from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection
from django.utils import timezone

from accounts import services as account_services
from accounts.principals import Principal
from api.errors import KEYS_CANNOT_CREATE_KEYS, NOT_AUTHENTICATED
from api.recording import forget_log_marks
from audit import summaries
from audit.models import AuditEvent
from audit.services import Actor
from keys import services, tokens
from keys.authentication import INVALID_TOKEN, INVALID_TOKEN_CHALLENGE, MALFORMED_HEADER, REALM
from keys.models import ApiKey
from keys.permissions import MISSING_SCOPE
from tests import factories
from tests.api.world import (
    ALL_SCOPES,
    ENDPOINTS,
    OBJECT_ENDPOINTS,
    SCOPED_ENDPOINTS,
    bearer,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]


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


def test_unknown_keys_are_counted_into_one_api_refused_event_without_tenant(api_client, world):
    for _ in range(3):
        api_client.get("/api/v1/whoami/", **bearer(tokens.generate(tokens.Kind.SERVICE)))
    assert not AuditEvent.objects.filter(action__in=["api.denied", "api.refused"]).exists()
    summaries.flush(everything=True)
    event = AuditEvent.objects.get(action="api.refused")
    assert event.metadata["reasons"] == {"unknown_key": 3} and event.metadata["count"] == 3
    assert event.tenant_id is None and event.target_id == ""


def test_client_error_with_a_key_is_a_failed_api_request(api_client, world):
    api_client.get("/api/v1/keys/999999/", **bearer(world.user_token))
    event = AuditEvent.objects.get(action="api.request")
    assert (event.outcome, event.metadata["status"], event.metadata["reason"]) == (
        "failure",
        404,
        "not_found",
    )


def test_no_credentials_and_malformed_tokens_write_no_event_per_request(api_client, world):
    before = AuditEvent.objects.count()
    api_client.get("/api/v1/whoami/")
    api_client.get("/api/v1/whoami/", **bearer("garbage"))
    assert AuditEvent.objects.count() == before
    summaries.flush(everything=True)
    (refused,) = AuditEvent.objects.filter(action="api.refused")
    assert refused.metadata["count"] == 2


def test_a_flood_of_refusals_is_one_log_line_per_address_and_minute(api_client, world, caplog):
    flood = [api_client.get("/api/v1/whoami/", **bearer("garbage")) for _ in range(20)]
    other = api_client.get("/api/v1/whoami/", **bearer("garbage"), REMOTE_ADDR="192.0.2.44")
    assert {r.status_code for r in [*flood, other]} == {401}
    lines = [r.getMessage() for r in caplog.records if r.name in ("keyward.api", "django.request")]
    assert len(lines) == 2  # no django.request line per 4xx either
    assert "ip=127.0.0.1" in lines[0] and "(malformed_token)" in lines[0]
    assert "ip=192.0.2.44" in lines[1]
    forget_log_marks()  # on a clock we control: a line, then the count of those skipped
    with mock.patch("api.recording.time.monotonic", return_value=10**9):
        api_client.get("/api/v1/whoami/", **bearer("garbage"))
        api_client.get("/api/v1/whoami/", **bearer("garbage"))
        api_client.get("/api/v1/whoami/", **bearer("garbage"))
    with mock.patch("api.recording.time.monotonic", return_value=10**9 + 61):
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


def test_whoami_costs_one_statement_in_the_steady_state(
    api_client, world, django_assert_num_queries
):
    with django_assert_num_queries(3):  # the key, its last use (once a minute), the event
        api_client.get("/api/v1/whoami/", **bearer(world.user_token))
    postgresql = connection.vendor == "postgresql"
    with django_assert_num_queries(1 if postgresql else 2) as queries:
        response = api_client.get("/api/v1/whoami/", **bearer(world.user_token))
    assert response.status_code == 200
    # A server-side-bound (prepared) query is logged as "QUERY = '…' - PARAMS = …".
    statements = [q["sql"].removeprefix("QUERY = '") for q in queries.captured_queries]
    if postgresql:
        # The key found a moment ago is not looked up again: its event is inserted on the
        # condition, checked in the same statement, that the key is still as it was found.
        (insert,) = statements
        assert insert.startswith('INSERT INTO "audit_auditevent"') and "keys_apikey" in insert
    else:
        select, insert = statements
        assert select.startswith("SELECT") and "keys_apikey" in select
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


def test_options_answers_405_and_allow_does_not_offer_it(api_client, world):
    response = api_client.options("/api/v1/keys/", **bearer(world.user_token))
    assert response.status_code == 405
    assert "OPTIONS" not in response["Allow"] and "GET" in response["Allow"]
