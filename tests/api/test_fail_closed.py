"""Served means audited (KEYWARD_AUDIT_FAIL_CLOSED, the default): a response to a request made
with a key leaves only once its event is committed; when it cannot be, the client gets 503
``audit_unavailable`` with Retry-After and no data, and a change of state does not happen."""

import logging
from unittest import mock

import pytest
from django.db import DatabaseError, connection

from audit.models import AuditEvent
from keys.models import ApiKey
from tests import factories

pytestmark = pytest.mark.django_db

WHOAMI = "/api/v1/whoami/"


@pytest.fixture
def caller(owner, tenant):
    key, token = factories.make_api_key(owner, tenant, scopes=["keys:read", "keys:revoke"])
    return key, {"HTTP_AUTHORIZATION": f"Bearer {token}"}


@pytest.fixture
def refusing_database(postgresql):
    """The database refuses every new api.request / api.denied row (a real refusal: a trigger,
    created in the test's transaction and gone with it)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            CREATE FUNCTION pg_temp.refuse_request_events() RETURNS trigger AS $$
            BEGIN
                IF NEW.action IN ('api.request', 'api.denied') THEN
                    RAISE EXCEPTION 'audit storage refused the row';
                END IF;
                RETURN NEW;
            END $$ LANGUAGE plpgsql;
            CREATE TRIGGER refuse_request_events BEFORE INSERT ON audit_auditevent
                FOR EACH ROW EXECUTE FUNCTION pg_temp.refuse_request_events();
            """
        )


def _is_audit_unavailable(response) -> None:
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    body = response.json()
    assert body["code"] == "audit_unavailable"
    assert set(body) == {"code", "detail"}  # nothing of what the request asked for


def test_a_refused_event_means_a_503_without_data(client, caller, refusing_database, owner):
    _, headers = caller
    response = client.get(WHOAMI, **headers)
    _is_audit_unavailable(response)
    assert owner.email not in response.content.decode()


def test_a_change_whose_event_cannot_commit_does_not_happen(
    client, caller, owner, tenant, refusing_database
):
    target, _ = factories.make_api_key(owner, tenant, name="target")
    revoked_before = AuditEvent.objects.filter(action="key.revoked").count()
    response = client.post(
        f"/api/v1/keys/{target.pk}/revoke/",
        data={"reason": "test"},
        content_type="application/json",
        **caller[1],
    )
    _is_audit_unavailable(response)
    target = ApiKey.objects.get(pk=target.pk)
    assert target.revoked_at is None
    assert AuditEvent.objects.filter(action="key.revoked").count() == revoked_before


def test_a_change_and_its_request_event_commit_together(client, caller, owner, tenant):
    target, _ = factories.make_api_key(owner, tenant, name="target")
    response = client.post(
        f"/api/v1/keys/{target.pk}/revoke/",
        data={"reason": "test"},
        content_type="application/json",
        **caller[1],
    )
    assert response.status_code == 200, response.content
    assert ApiKey.objects.get(pk=target.pk).revoked_at is not None
    request_event = AuditEvent.objects.get(action="api.request", target_id=str(caller[0].pk))
    revoked = AuditEvent.objects.get(action="key.revoked", target_id=str(target.pk))
    assert request_event.txid == revoked.txid  # one transaction


def test_any_database_error_while_recording_is_a_503(client, caller):
    with mock.patch("audit.writer.write_now", side_effect=DatabaseError("gone")):
        response = client.get(WHOAMI, **caller[1])
    _is_audit_unavailable(response)


def test_fail_open_serves_and_logs(client, caller, settings, caplog):
    settings.KEYWARD_AUDIT_FAIL_CLOSED = False
    with (
        mock.patch("audit.writer.writer.submit") as submit,
        caplog.at_level(logging.ERROR),
    ):
        response = client.get(WHOAMI, **caller[1])
    assert response.status_code == 200
    (event,), _ = submit.call_args
    assert event.action == "api.request" and event.pk is None  # queued for the batched writer


def test_readyz_reports_an_audit_log_the_app_cannot_write(client, postgresql):
    assert client.get("/readyz").status_code == 200
    with connection.cursor() as cursor:
        cursor.execute("CREATE ROLE keyward_readyz_test NOLOGIN")
        cursor.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO keyward_readyz_test")
        cursor.execute("SET ROLE keyward_readyz_test")
    try:
        response = client.get("/readyz")
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET ROLE")
    assert response.status_code == 503
    assert response.json()["failed"] == ["audit"]
