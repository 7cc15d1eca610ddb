"""Every request made with a Keyward key is one audit event, on any DRF view: an installation's
own APIView, ViewSet and @api_view (tests/api/keyed_views.py) inherit nothing from Keyward's API,
and every way DRF can answer leaves its event (api/middleware.py, api/recording.py)."""

import pytest

from audit import summaries
from audit.models import AuditEvent
from keys import tokens
from tests import factories

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.api.keyed_views")]

PREFIX = "/api/custom"
VIEWS = [f"{PREFIX}/plain/", f"{PREFIX}/things/", f"{PREFIX}/function/"]


@pytest.fixture
def key(owner, tenant):
    key, token = factories.make_api_key(owner, tenant, scopes=["keys:read"])
    key.token = token
    return key


def _events(key):
    return list(
        AuditEvent.objects.filter(target_kind="key", target_id=str(key.pk))
        .filter(action__startswith="api.")
        .order_by("id")
    )


def _call(client, method, path, key, **extra):
    return getattr(client, method)(path, HTTP_AUTHORIZATION=f"Bearer {key.token}", **extra)


@pytest.mark.parametrize("path", VIEWS)
def test_each_kind_of_view_records_one_event_per_request(client, key, path):
    for _ in range(3):
        assert _call(client, "get", path, key).status_code == 200
    events = _events(key)
    assert [(e.action, e.metadata["status"], e.metadata["path"]) for e in events] == [
        ("api.request", 200, path)
    ] * 3
    assert {e.request_id for e in events} != {""}


@pytest.mark.parametrize(
    ("method", "path", "extra", "status"),
    [
        ("get", f"{PREFIX}/plain/", {"HTTP_ACCEPT": "text/html"}, 406),  # content negotiation
        ("get", f"{PREFIX}/plain/?format=xml", {}, 404),  # an unknown format
        ("get", f"{PREFIX}/things/?format=xml", {}, 404),
        (
            "post",
            f"{PREFIX}/plain/",
            {"data": "{not json", "content_type": "application/json"},
            400,
        ),
        ("post", f"{PREFIX}/plain/", {"data": "a=b", "content_type": "text/csv"}, 415),  # no parser
        ("put", f"{PREFIX}/plain/", {}, 405),
        ("delete", f"{PREFIX}/function/", {}, 405),
        ("get", f"{PREFIX}/things/1/", {}, 500),  # the view raises
    ],
)
def test_every_way_drf_answers_a_keyed_request_is_recorded(
    client, key, method, path, extra, status
):
    response = _call(client, method, path, key, **extra)
    assert response.status_code == status
    (event,) = _events(key)
    assert event.action == "api.request"
    assert event.outcome == "failure"
    assert event.metadata["status"] == status
    assert event.metadata["method"] == method.upper()
    assert event.metadata["reason"]


def test_a_state_change_and_its_event_commit_together(client, key):
    response = _call(
        client, "post", f"{PREFIX}/plain/", key, data={"a": 1}, content_type="application/json"
    )
    assert response.status_code == 200 and response.json() == {"got": {"a": 1}}
    assert [e.metadata["status"] for e in _events(key)] == [200]


def test_a_keys_429s_are_one_event_per_minute_with_the_count(client, key, tenant):
    tenant.key_rate = "5/min"
    tenant.save()
    statuses = [_call(client, "get", f"{PREFIX}/plain/", key).status_code for _ in range(40)]
    assert statuses.count(200) == 5 and statuses.count(429) == 35
    summaries.flush(everything=True)
    events = _events(key)
    assert [e.action for e in events] == ["api.request"] * 5 + ["api.throttled"]
    throttled = events[-1]
    assert throttled.metadata["count"] == 35
    assert throttled.metadata["statuses"] == {"429": 35}
    assert throttled.tenant_id == tenant.pk


def test_requests_without_a_usable_key_are_one_event_per_address_and_minute(client, key):
    unknown = tokens.generate(tokens.Kind.PERSONAL)  # well-formed, never issued
    for path in VIEWS:
        client.get(path)  # no credentials
        client.get(path, HTTP_AUTHORIZATION="Bearer kwp_not-a-token")
        client.get(path, HTTP_AUTHORIZATION=f"Bearer {unknown}")
    assert not AuditEvent.objects.filter(action="api.refused").exists()  # counted, not written
    summaries.flush(everything=True)
    (refused,) = AuditEvent.objects.filter(action="api.refused")
    assert refused.metadata["count"] == 9
    assert refused.ip == "127.0.0.1" and refused.tenant_id is None
    assert set(refused.metadata["reasons"]) == {"no credentials", "malformed_token", "unknown_key"}
    assert _events(key) == []


def test_a_passed_minutes_counts_are_written_after_a_keyed_request_never_a_refused_one(
    client, key, monkeypatch
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(f"{PREFIX}/plain/", HTTP_AUTHORIZATION="Bearer kwp_not-a-token")
    monkeypatch.setattr(summaries, "due", lambda: True)  # as if the minute has just passed
    monkeypatch.setattr(summaries.time, "time", lambda: 10**10)  # far after that minute
    with CaptureQueriesContext(connection) as queries:
        client.get(f"{PREFIX}/plain/", HTTP_AUTHORIZATION="Bearer kwp_not-a-token")
    assert len(queries) == 0, [q["sql"] for q in queries]
    assert not AuditEvent.objects.filter(action="api.refused").exists()
    _call(client, "get", f"{PREFIX}/plain/", key)
    (refused,) = AuditEvent.objects.filter(action="api.refused")
    assert refused.metadata["count"] == 1
