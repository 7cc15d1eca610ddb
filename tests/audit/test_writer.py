import json

import pytest
from django.db import connection

from audit import writer
from audit.models import AuditEvent
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def batched(settings):
    settings.KEYWARD_AUDIT_FAIL_CLOSED = False
    yield
    writer.flush(close=True)  # the test database is dropped at the end of the session


@pytest.fixture
def bearer(api_client, tenant, owner):
    _, token = factories.make_api_key(owner, tenant, scopes=["keys:read"])
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return api_client


def test_batched_request_events_are_all_written_by_flush(batched, bearer):
    for _ in range(25):
        assert bearer.get("/api/v1/whoami/").status_code == 200
    bearer.get("/api/v1/keys/999999/")  # a 404 is an event too
    assert writer.flush()
    events = AuditEvent.objects.filter(action="api.request")
    assert events.count() == 26
    assert events.filter(outcome="failure", metadata__status=404).count() == 1


def test_the_request_itself_runs_only_the_authentication_query(
    batched, bearer, django_assert_num_queries
):
    bearer.get("/api/v1/whoami/")  # first use of the key: writes last_used_at once
    with django_assert_num_queries(1):
        assert bearer.get("/api/v1/whoami/").status_code == 200
    assert writer.flush()
    assert AuditEvent.objects.filter(action="api.request").count() == 2


def test_written_events_are_streamed_once_as_json(batched, bearer, caplog):
    caplog.set_level("INFO", logger="keyward.audit")
    bearer.get("/api/v1/whoami/", HTTP_X_REQUEST_ID="req-42")
    assert writer.flush()
    lines = [
        json.loads(r.getMessage())
        for r in caplog.records
        if r.name == "keyward.audit" and "api.request" in r.getMessage()
    ]
    assert len(lines) == 1 and lines[0]["request_id"] == "req-42" and lines[0]["id"]


def test_fail_closed_commits_the_event_in_the_request(bearer, django_assert_num_queries):
    bearer.get("/api/v1/whoami/")
    with django_assert_num_queries(1 if connection.vendor == "postgresql" else 2) as queries:
        bearer.get("/api/v1/whoami/")
    # Committed before the response: visible at once, with no flush, from another connection.
    assert AuditEvent.objects.filter(action="api.request").count() == 2
    if queries.connection.vendor == "postgresql":
        sql = queries.captured_queries[-1]["sql"]
        assert "set_config(" in sql and "synchronous_commit" in sql


def test_synchronous_commit_on_waits_for_the_flush(settings, bearer, django_assert_num_queries):
    settings.KEYWARD_AUDIT_SYNCHRONOUS_COMMIT = "on"
    bearer.get("/api/v1/whoami/")
    with django_assert_num_queries(1 if connection.vendor == "postgresql" else 2) as queries:
        bearer.get("/api/v1/whoami/")
    assert "synchronous_commit" not in queries.captured_queries[-1]["sql"]
    assert AuditEvent.objects.filter(action="api.request").count() == 2


def test_a_batch_stores_every_field_as_the_orm_would(batched, tenant, owner):
    from audit.services import Actor, build_event
    from common.request import RequestContext

    def event(ip):
        return build_event(
            "api.request",
            actor=Actor.anonymous(),
            tenant=tenant,
            context=RequestContext(ip=ip),
            metadata={"path": "/api/v1/ü/", "nested": {"b": [1, None], "a": "x"}},
        )

    batch = [event(ip="2001:db8::1"), event(ip=None), event(ip="192.0.2.9")]
    reference = event(ip="2001:db8::1")
    reference.save()
    writer.writer._write(batch)
    assert [e.pk for e in batch] == sorted(e.pk for e in batch) and batch[0].pk > reference.pk
    stored = {e.pk: e for e in AuditEvent.objects.filter(pk__in=[e.pk for e in batch])}
    for sent in batch:
        got = stored[sent.pk]
        assert (got.tenant_id, got.actor_kind, got.action, got.outcome) == (
            tenant.pk,
            reference.actor_kind,
            "api.request",
            reference.outcome,
        )
        assert got.ip == sent.ip and got.metadata == reference.metadata
        assert got.occurred_at == sent.occurred_at


@pytest.mark.parametrize("ip", ["2001:db8::1", None, "192.0.2.9"])
def test_an_event_written_in_the_request_stores_every_field_as_the_orm_would(tenant, ip):
    from audit.services import Actor, build_event
    from common.request import RequestContext

    def event():
        return build_event(
            "api.request",
            actor=Actor.anonymous("bot ü"),
            tenant=tenant,
            context=RequestContext(ip=ip, user_agent="agent/1 ✓", request_id="r-1"),
            metadata={"path": "/api/v1/ü/", "nested": {"b": [1, None], "a": "x"}, "n": 1.5},
        )

    reference, sent = event(), event()
    reference.save()
    assert writer.write_now(sent)
    got = AuditEvent.objects.get(pk=sent.pk)
    want = AuditEvent.objects.get(pk=reference.pk)
    for field in AuditEvent._meta.concrete_fields:
        if field.name not in ("id", "txid", "occurred_at"):
            assert getattr(got, field.attname) == getattr(want, field.attname), field.name
    assert got.occurred_at == sent.occurred_at and got.txid == sent.txid


def test_a_value_too_long_is_refused_not_truncated_and_spares_its_batch(
    batched, tenant, caplog, postgresql
):
    from audit.services import Actor, build_event

    good = [build_event("api.request", actor=Actor.anonymous(), tenant=tenant) for _ in range(2)]
    event = build_event("api.request", actor=Actor.anonymous(), tenant=tenant)
    event.target_label = "x" * 201  # the column holds 200
    writer.writer._write([good[0], event, good[1]])
    assert not AuditEvent.objects.filter(target_label__startswith="xxx").exists()
    assert any("lost audit event" in r.getMessage() for r in caplog.records)
    # The database refused one event: the others of its batch are written all the same.
    assert AuditEvent.objects.filter(pk__in=[e.pk for e in good]).count() == 2
