"""A GET made with a Keyward JWT (KEYWARD_AUDIT_JWT_EVENTS=batched, the default) is served with
no SQL query at all: its api.request event goes through the per-process batched writer right
after the response. A request that may change state still commits with its event; while the
writer cannot write, JWT requests are answered only once their event is committed, as a key's."""

from unittest import mock

import jwt
import pytest
from django.db import DatabaseError

from audit import writer
from audit.models import AuditEvent
from tests.federation.conftest import jwt_for

pytestmark = pytest.mark.django_db(transaction=True)

WHOAMI = "/api/v1/whoami/"


@pytest.fixture
def batched(settings):
    settings.KEYWARD_AUDIT_JWT_EVENTS = "batched"
    writer.writer.failing = False
    yield
    writer.writer.failing = False
    writer.flush(close=True)  # the test database is dropped at the end of the session


@pytest.fixture
def jwt_headers(client, owner_key):
    key, plaintext = owner_key
    token = jwt_for(client, plaintext, scope="keys:read keys:revoke")
    return (
        key,
        jwt.decode(token, options={"verify_signature": False})["jti"],
        {"HTTP_AUTHORIZATION": f"Bearer {token}"},
    )


@pytest.fixture
def owner_key(tenant, owner):
    from tests import factories

    return factories.make_api_key(owner, tenant, scopes=["keys:read", "keys:revoke"])


def test_a_jwt_get_costs_no_query_and_every_one_is_recorded(
    batched, client, jwt_headers, django_assert_num_queries
):
    key, jti, headers = jwt_headers
    assert client.get(WHOAMI, **headers).status_code == 200  # this process learns the kid
    with django_assert_num_queries(0):
        for _ in range(20):
            assert client.get(WHOAMI, **headers).status_code == 200
    assert writer.flush()
    events = AuditEvent.objects.filter(action="api.request", metadata__jti=jti)
    assert events.count() == 21
    assert {e.target_id for e in events} == {str(key.pk)}


def test_a_jwt_request_that_changes_state_commits_with_its_event(batched, client, jwt_headers):
    key, jti, headers = jwt_headers
    with mock.patch.object(writer.writer, "submit") as submit:
        response = client.post(
            f"/api/v1/keys/{key.pk}/revoke/", {}, content_type="application/json", **headers
        )
    assert response.status_code == 200, response.content
    submit.assert_not_called()
    event = AuditEvent.objects.get(action="api.request", metadata__jti=jti)
    assert event.metadata["method"] == "POST"


def test_while_batches_fail_jwt_requests_wait_for_their_event(batched, client, jwt_headers):
    _, jti, headers = jwt_headers
    writer.writer.failing = True  # the last batch could not be written
    with mock.patch.object(writer, "write_now", side_effect=DatabaseError("away")):
        refused = client.get(WHOAMI, **headers)
    assert refused.status_code == 503 and refused.json()["code"] == "audit_unavailable"
    assert refused["Retry-After"]
    assert client.get(WHOAMI, **headers).status_code == 200  # the database is back
    assert AuditEvent.objects.filter(action="api.request", metadata__jti=jti).count() == 1
    assert writer.writer.failing is False  # batched again from now on


def test_a_failed_batch_makes_the_writer_failing(batched, client, jwt_headers):
    _, _, headers = jwt_headers
    with mock.patch.object(writer, "_insert", side_effect=DatabaseError("refused")):
        with mock.patch.object(writer, "_write_one_by_one", return_value=[]):
            assert client.get(WHOAMI, **headers).status_code == 200
            assert writer.flush()
    assert writer.writer.failing is True


def test_committed_mode_writes_the_event_before_the_response(settings, client, jwt_headers):
    settings.KEYWARD_AUDIT_JWT_EVENTS = "committed"
    _, jti, headers = jwt_headers
    with mock.patch.object(writer.writer, "submit") as submit:
        assert client.get(WHOAMI, **headers).status_code == 200
    submit.assert_not_called()
    assert AuditEvent.objects.filter(action="api.request", metadata__jti=jti).count() == 1
