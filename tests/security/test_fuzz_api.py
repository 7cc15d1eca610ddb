"""Fuzz API v1 from its own OpenAPI schema (schemathesis), as three callers.

With an all-scopes key, a key holding only ``members:read``, and no key at all, every operation in
``/api/schema/`` gets positive and negative inputs. Whatever the input: no 5xx, the status code is
documented, the body matches the documented schema, and every error is JSON with a ``code``.

Each example runs inside a transaction that is rolled back afterwards, so a fuzzed revoke of the
calling key, or a fuzzed service ID, never changes what the next example sees. Path ids are drawn
half the time from real objects of both tenants, so 200s (and cross-tenant 404s) are fuzzed too.
"""

import contextlib
import json
from dataclasses import dataclass

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.schema import SCHEME_NAME
from keys.scopes import BUILTIN_SCOPES
from tests import factories

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]

MAX_EXAMPLES = 25
ALL_SCOPES = sorted(BUILTIN_SCOPES)
WRONG_SCOPES = ["members:read"]
# What a members:read key may do; everything else is refused with 403.
WRONG_SCOPE_ALLOWED = frozenset({"whoami", "members_list"})
REFUSED_CODES = frozenset({"insufficient_scope", "keys_cannot_create_keys"})


@contextlib.contextmanager
def _no_connection_recycling():
    """Call the WSGI app in-process the way Django's test client does.

    Closing "old" connections at the start and end of each request would close the test's own
    connection, and with it the transaction that holds the test data (at collection time it would
    reach for a database that pytest-django still blocks).
    """
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def _load_schema():
    """Load the schema as the app serves it, from ``/api/schema/`` (it needs no database)."""
    from config.wsgi import application

    with _no_connection_recycling():
        return schemathesis.openapi.from_wsgi("/api/schema/", application)


# schemathesis's lazy loader (schemathesis.pytest.from_fixture) reads a private attribute that
# pytest 9.2 removed, so the schema is loaded at collection and the data comes from fixtures.
# API v1 only: the OAuth endpoints and the published keys (/oauth/…, /.well-known/…) answer
# RFC 6749's {"error", "error_description"}, not API v1's {"code", "detail"}; their bad input is
# tested in tests/federation/.
schema = _load_schema().exclude(path_regex=r"^/(oauth|\.well-known)/")


def error_is_json_with_code(ctx, response, case):
    """Every 4xx/5xx answer is a JSON object with a non-empty string ``code`` and a ``detail``."""
    if response.status_code < 400:
        return True
    content_type = response.headers.get("content-type") or response.headers.get("Content-Type")
    content_type = content_type[0] if isinstance(content_type, list) else content_type or ""
    assert content_type.startswith("application/json"), f"error is {content_type!r}, not JSON"
    body = json.loads(response.content)
    assert isinstance(body, dict), f"error body is not an object: {body!r}"
    assert isinstance(body.get("code"), str) and body["code"], f"no code in {body!r}"
    assert isinstance(body.get("detail"), str), f"no detail in {body!r}"
    return True


def status_is_documented(ctx, response, case):
    """Stricter than status_code_conformance: no status outside the operation's responses.

    The one exception is 405 to a method the path does not have (schemathesis probes those).
    """
    documented = {int(code) for code in case.operation.definition.raw["responses"]}
    if response.request.method.lower() != case.operation.method.lower():
        assert response.status_code in documented | {401, 405}, response.status_code
        return True
    assert response.status_code in documented, (
        f"{response.status_code} is not documented for {case.operation.label}: {sorted(documented)}"
    )
    return True


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    error_is_json_with_code,
    status_is_documented,
]


@dataclass
class World:
    key_ids: list[int]
    service_id_ids: list[int]
    all_scopes_token: str
    wrong_scope_token: str


@pytest.fixture
def world(tenant, owner, other_tenant, settings):
    """Two tenants with members, service IDs and keys, and the two callers' keys."""
    # Fuzz the handlers, not the per-address throttle of failed authentication (tested elsewhere).
    settings.KEYWARD_FAILED_AUTH_RATE = "100000/min"
    admin = factories.add_member(tenant, "admin")
    member = factories.add_member(tenant, "member")
    bot = factories.make_service_id(tenant, "deploy-bot", role="admin")
    reader = factories.make_service_id(tenant, "reader", role="auditor")
    theirs = factories.make_service_id(other_tenant, "their-bot")
    all_key, all_token = factories.make_api_key(owner, tenant, name="caller", scopes=ALL_SCOPES)
    wrong_key, wrong_token = factories.make_api_key(owner, tenant, scopes=WRONG_SCOPES)
    keys = [
        all_key,
        wrong_key,
        factories.make_api_key(admin, name="admin key", scopes=ALL_SCOPES)[0],
        factories.make_api_key(member, name="member key", scopes=["keys:read"])[0],
        factories.make_api_key(bot, name="bot key", scopes=["keys:read"])[0],
        factories.make_api_key(other_tenant.memberships.get(role="owner"), name="theirs")[0],
    ]
    with _no_connection_recycling():
        yield World(
            key_ids=[k.pk for k in keys],
            service_id_ids=[bot.pk, reader.pk, theirs.pk],
            all_scopes_token=all_token,
            wrong_scope_token=wrong_token,
        )


class _Rollback(Exception):
    pass


def _aim_at_real_objects(case, world: World) -> None:
    """Half of the valid integer ids become ids of real objects (this tenant's or another's)."""
    value = (case.path_parameters or {}).get("id")
    if type(value) is not int or value % 2:
        return
    pool = world.service_id_ids if "/service-ids/" in case.path else world.key_ids
    case.path_parameters["id"] = pool[(value // 2) % len(pool)]


def _call(case, world: World, token: str | None):
    """Send ``case`` with the given key (or none), then roll back whatever it changed."""
    _aim_at_real_objects(case, world)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with transaction.atomic():
            response = case.call(headers=headers)
            raise _Rollback
    except _Rollback:
        pass
    case.validate_response(response, checks=CHECKS)
    return response


def _operation(case) -> str:
    return case.operation.definition.raw["operationId"]


def _sent_key(response) -> str | None:
    """The Authorization header actually sent (schemathesis drops or mangles it in some cases)."""
    return response.request.headers.get("Authorization")


def _needs_a_key(case) -> bool:
    """Whether the operation is behind the Bearer key scheme (the leak report is not: it is
    signed instead, and answers 401 ``invalid_signature`` on its own terms)."""
    raw = case.operation.definition.raw
    security = raw.get("security", schema.raw_schema.get("security", []))
    return any(SCHEME_NAME in requirement for requirement in security)


def _assert_refused_unless_found(response, case, token: str | None, allowed=frozenset()) -> None:
    """Without our key: 401; with it: 403 outside ``allowed``. An API 404 (a path that does not
    exist, or an object of another tenant) and 405 (a method probe) come first."""
    status, operation = response.status_code, _operation(case)
    body = response.json()
    if status == 404 and body["code"] == "not_found" or status == 405 or not _needs_a_key(case):
        return
    sent = _sent_key(response)
    if sent is None or [word.lower() for word in sent.split()[:1]] != ["bearer"]:
        # No credentials, or another scheme (Basic, garbage): not ours to refuse as invalid.
        assert (status, body["code"]) == (401, "not_authenticated"), (operation, status, body)
    elif token is None or sent != f"Bearer {token}":
        assert (status, body["code"]) == (401, "invalid_token"), (operation, status, body)
    elif operation not in allowed:
        assert status == 403, (operation, status, body)
        assert body["code"] in REFUSED_CODES, body


FUZZ = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,  # the same cases on every run: a CI failure reproduces locally
    database=None,
    suppress_health_check=list(HealthCheck),
)


@schema.parametrize()
@FUZZ
def test_all_scopes_key_gets_documented_answers(case, world):
    _call(case, world, world.all_scopes_token)


@schema.parametrize()
@FUZZ
def test_members_read_key_is_refused_everywhere_else(case, world):
    response = _call(case, world, world.wrong_scope_token)
    _assert_refused_unless_found(response, case, world.wrong_scope_token, WRONG_SCOPE_ALLOWED)


@schema.parametrize()
@FUZZ
def test_no_key_is_refused_everywhere(case, world):
    response = _call(case, world, None)
    _assert_refused_unless_found(response, case, None)


# --- Regressions: what the fuzzing found ------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/keys/%0A1/", "/api/v1/service-ids/1%0A/", "/api/%0A"])
def test_a_path_with_a_newline_gets_the_api_json_404(client, path):
    # The API's catch-all route was "^.*$": "." stops at a newline, so such paths fell through
    # to the portal's HTML 404.
    response = client.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize(
    "operation_id", ["keys_revoke", "service_ids_create", "service_ids_partial_update"]
)
def test_operations_with_a_body_document_415(operation_id):
    # DRF answers 415 to a body that is not JSON; the schema did not say so.
    operations = [
        operation
        for methods in schema.raw_schema["paths"].values()
        for operation in methods.values()
        if isinstance(operation, dict) and operation.get("operationId") == operation_id
    ]
    assert "415" in operations[0]["responses"]


def test_a_body_that_is_not_json_is_a_json_415(api_client, owner, tenant):
    _, token = factories.make_api_key(owner, tenant, scopes=ALL_SCOPES)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    response = api_client.post("/api/v1/service-ids/", data="name=x", content_type="text/plain")
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


# --- Bodies no parser should choke on: every operation that takes one ----------------------

DEEP_JSON = "[" * 100_000 + "]" * 100_000
BODY_OPERATIONS = sorted(
    (path, method, operation["operationId"])
    for path, methods in schema.raw_schema["paths"].items()
    for method, operation in methods.items()
    # API v1's JSON bodies (the OAuth endpoints' forms: tests/federation/)
    if isinstance(operation, dict) and "requestBody" in operation and path.startswith("/api/")
)


def _send_body(api_client, world: World, path: str, method: str, body: bytes | str):
    ids = {"/service-ids/": world.service_id_ids[0]}
    url = path.replace(
        "{id}", str(next((v for k, v in ids.items() if k in path), world.key_ids[2]))
    )
    call = getattr(api_client, method)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {world.all_scopes_token}"}
    return call(url, body, content_type="application/json", **headers)


@pytest.mark.parametrize(("path", "method", "operation_id"), BODY_OPERATIONS)
def test_json_nested_100000_deep_is_a_400_never_a_500(
    api_client, world, path, method, operation_id
):
    response = _send_body(api_client, world, path, method, DEEP_JSON)
    expected = {"invalid_request"} if operation_id != "leaks_report" else {"invalid_signature"}
    assert response.status_code in (400, 401), response.content[:300]
    assert response.json()["code"] in expected


@pytest.mark.parametrize(("path", "method", "operation_id"), BODY_OPERATIONS)
def test_a_body_over_the_upload_limit_is_a_413_never_a_500(
    api_client, world, path, method, operation_id, settings
):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    body = json.dumps({"reason": "x" * (3 * 1024 * 1024), "name": "big", "role": "member"})
    response = _send_body(api_client, world, path, method, body)
    assert response.status_code == 413, response.content[:300]
    assert response.json()["code"] == "payload_too_large"


def test_a_portal_form_over_the_upload_limit_is_a_413(owner_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    response = owner_client.post("/account/sudo/", {"code": "1" * (128 * 1024)})
    assert response.status_code == 413
    assert b"larger than 65536 bytes" in response.content
