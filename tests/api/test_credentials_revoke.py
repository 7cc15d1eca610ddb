"""POST /api/v1/credentials/revoke: anyone may revoke a Keyward key by its value, no account
needed; the answer never says whether a token was live."""

import json

import pytest
from asgiref.local import Local
from django.core import mail

from api.credentials import ACCEPTED, CARRIES_CREDENTIALS, TOO_MANY
from audit.models import AuditEvent
from audit.services import Actor
from keys import leaks, tokens
from keys.models import ApiKey
from keys.services import key_revoke
from tests import factories

pytestmark = pytest.mark.django_db

URL = "/api/v1/credentials/revoke"


def _post(client, body, **extra):
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(URL, data, content_type="application/json", **extra)


def _usable(key: ApiKey) -> bool:
    return ApiKey.objects.get(pk=key.pk).revoked_at is None


def _reset_task_backends():
    from django.tasks import task_backends

    task_backends.__dict__.pop("settings", None)
    task_backends._connections = Local(task_backends.thread_critical)


@pytest.fixture
def deferred_tasks(settings):
    """Tasks are queued, not run: what a production backend with workers does."""
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}
    _reset_task_backends()
    from django.tasks import default_task_backend

    yield default_task_backend
    _reset_task_backends()


def test_a_live_key_is_revoked_recorded_and_its_owners_told(
    api_client, tenant, owner, admin_member, member, django_capture_on_commit_callbacks
):
    key, token = factories.make_api_key(member)
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(api_client, {"credentials": [token]}, REMOTE_ADDR="198.51.100.7")
    assert response.status_code == 202
    assert response.json() == {"detail": ACCEPTED}
    key.refresh_from_db()
    assert key.revoked_at is not None and key.revoked_reason == "reported by value"
    event = AuditEvent.objects.get(action="key.revoked", target_id=str(key.pk))
    assert key.hint in event.target_label
    assert event.metadata["reason"] == "reported by value"
    assert (event.actor_kind, event.actor_label) == ("anonymous", "reported by value")
    assert event.ip == "198.51.100.7" and event.request_id == response["X-Request-ID"]
    assert token not in json.dumps(event.metadata) and token not in event.target_label
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert sorted(message.to) == sorted([owner.email, admin_member.user.email, member.user.email])
    assert "Keyward revoked the key." in message.body and key.hint in message.subject
    assert token not in message.body and token not in message.subject


def test_a_service_key_is_revoked_and_the_tenants_managers_told(
    api_client, tenant, owner, admin_member, django_capture_on_commit_callbacks
):
    key, token = factories.make_api_key(factories.make_service_id(tenant))
    with django_capture_on_commit_callbacks(execute=True):
        assert _post(api_client, {"credentials": [token, token]}).status_code == 202
    assert not _usable(key)
    assert AuditEvent.objects.filter(action="key.revoked", target_id=str(key.pk)).count() == 1
    assert sorted(mail.outbox[0].to) == sorted([owner.email, admin_member.user.email])


def test_every_kind_of_token_gets_the_same_answer(api_client, tenant, owner):
    live, live_token = factories.make_api_key(owner, tenant, name="live")
    old, old_token = factories.make_api_key(owner, tenant, name="old")
    key_revoke(actor=Actor.system(), key=old)
    cases = {
        "live": live_token,
        "unknown": tokens.generate(tokens.Kind.PERSONAL),
        "malformed": live_token[:-1] + ("x" if live_token[-1] != "x" else "y"),
        "not a token": "ghp_somethingelse",
        "revoked": old_token,
        "empty": "",
    }
    answers = {}
    for name, credential in cases.items():
        response = _post(api_client, {"credentials": [credential]})
        headers = sorted(h for h in response.headers if h != "X-Request-ID")
        answers[name] = (response.status_code, response.content, headers)
    assert len(set(map(repr, answers.values()))) == 1, answers
    assert answers["live"][0] == 202
    assert not _usable(live)


def test_the_request_only_queues_digests_and_the_task_revokes(
    api_client, tenant, owner, deferred_tasks
):
    key, token = factories.make_api_key(owner, tenant)
    unknown = tokens.generate(tokens.Kind.SERVICE)
    response = _post(api_client, {"credentials": [token, unknown, "junk"]})
    assert response.status_code == 202
    assert _usable(key)  # nothing decided in the request: its timing says nothing
    (result,) = deferred_tasks.results
    assert result.task.module_path == "keys.leaks.keys_revoke_reported"
    digests, context = result.args
    assert digests == [tokens.digest(token).hex(), tokens.digest(unknown).hex()]
    assert token not in json.dumps(result.args) and unknown not in json.dumps(result.args)
    assert context["request_id"] == response["X-Request-ID"]
    assert leaks.keys_revoke_reported.call(*result.args) == 1
    assert not _usable(key)


def test_a_thousand_credentials_are_accepted(api_client, tenant, owner):
    key, token = factories.make_api_key(owner, tenant)
    credentials = [tokens.generate(tokens.Kind.PERSONAL) for _ in range(999)] + [token]
    assert _post(api_client, {"credentials": credentials}).status_code == 202
    assert not _usable(key)


def test_more_than_a_thousand_is_400_and_revokes_nothing(api_client, tenant, owner):
    key, token = factories.make_api_key(owner, tenant)
    credentials = [token] + ["x"] * 1000
    response = _post(api_client, {"credentials": credentials})
    assert response.status_code == 400
    assert response.json() == {"code": "too_many_credentials", "detail": TOO_MANY}
    assert _usable(key)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"credentials": "kwp_x"},
        {"credentials": [1]},
        {"credentials": [None]},
        {"credentials": []},
        {"credentials": [["nested"]]},
        ["kwp_x"],
        "not json",
        '{"credentials": [',
    ],
)
def test_a_malformed_body_is_400(api_client, body):
    response = _post(api_client, body)
    assert response.status_code == 400
    assert response.json()["code"] in ("invalid", "invalid_request")


@pytest.mark.parametrize("header", ["Bearer {token}", "Basic dXNlcjpwYXNz", "Bearer nonsense"])
def test_a_request_with_an_authorization_header_is_refused(api_client, tenant, owner, header):
    key, token = factories.make_api_key(owner, tenant)
    api_client.credentials(HTTP_AUTHORIZATION=header.format(token=token))
    response = _post(api_client, {"credentials": [token]})
    assert response.status_code == 403
    assert response.json() == {"code": "credentials_not_allowed", "detail": CARRIES_CREDENTIALS}
    assert _usable(key)
    assert not AuditEvent.objects.filter(action="key.revoked").exists()


def test_a_request_with_a_portal_session_is_refused(owner_client, tenant, owner):
    key, token = factories.make_api_key(owner, tenant)
    response = _post(owner_client, {"credentials": [token]})
    assert response.status_code == 403
    assert _usable(key)


def test_no_csrf_token_is_needed(tenant, owner):
    from django.test import Client

    key, token = factories.make_api_key(owner, tenant)
    assert _post(Client(enforce_csrf_checks=True), {"credentials": [token]}).status_code == 202
    assert not _usable(key)


def test_requests_are_limited_per_address(api_client, settings, tenant, owner):
    settings.KEYWARD_CREDENTIALS_REVOKE_RATE = "2/min"
    key, token = factories.make_api_key(owner, tenant)
    for _ in range(2):
        assert _post(api_client, {"credentials": ["junk"]}).status_code == 202
    response = _post(api_client, {"credentials": [token]})
    assert response.status_code == 429 and int(response["Retry-After"]) > 0
    assert _usable(key)
    other = _post(api_client, {"credentials": [token]}, REMOTE_ADDR="203.0.113.50")
    assert other.status_code == 202 and not _usable(key)


def test_an_expired_key_is_left_alone(
    api_client, tenant, owner, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone

    key, token = factories.make_api_key(owner, tenant)
    ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert _post(api_client, {"credentials": [token]}).status_code == 202
    assert _usable(key) and mail.outbox == []


def test_openapi_documents_the_endpoint_without_authentication(client):
    schema = client.get("/api/schema/?format=json").json()
    operation = schema["paths"]["/api/v1/credentials/revoke"]["post"]
    assert operation["operationId"] == "credentials_revoke"
    assert set(operation["responses"]) == {"202", "400", "403", "413", "415", "429"}
    assert operation.get("security") in ([], [{}], None)
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert body["properties"]["credentials"]["maxItems"] == 1000


def test_a_body_that_is_not_json_is_a_json_415(api_client):
    response = api_client.post(URL, "credentials=x", content_type="text/plain")
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


def test_a_body_over_the_upload_limit_is_413(api_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    response = _post(api_client, {"credentials": ["x" * (128 * 1024)]})
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


@pytest.mark.django_db(transaction=True)
def test_with_the_database_backend_a_worker_revokes_and_the_row_holds_no_token(
    api_client, tenant, owner, settings, postgresql
):
    from io import StringIO

    from django.core.management import call_command
    from django_tasks_db.models import DBTaskResult

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    _reset_task_backends()
    try:
        key, token = factories.make_api_key(owner, tenant)
        assert _post(api_client, {"credentials": [token]}).status_code == 202
        assert _usable(key)  # the request only queued it
        row = DBTaskResult.objects.get(task_path="keys.leaks.keys_revoke_reported")
        assert token not in json.dumps(row.args_kwargs)
        call_command("db_worker", "--batch", "--no-startup-delay", stdout=StringIO())
        row.refresh_from_db()
        assert row.status == "SUCCESSFUL" and row.return_value == 1
        assert not _usable(key)
        told = [m for m in mail.outbox if "found in public" in m.subject]
        assert [m.to for m in told] == [[owner.email]] and key.hint in told[0].subject
    finally:
        _reset_task_backends()
