"""A flood does not flood the audit log: refusals without a usable key (none, malformed,
unknown) are one ``api.refused`` event per address and minute, and a key's 429s one
``api.throttled`` event per key and minute, each with the count (audit/summaries.py)."""

import time

import pytest

from audit import summaries
from audit.models import AuditEvent
from keys import tokens
from tests import factories

pytestmark = pytest.mark.django_db

FLOOD = 10_000


def _minute() -> int:
    return int(time.time() // 60)


WHOAMI = "/api/v1/whoami/"


def test_10000_refusals_from_one_address_are_one_event_with_the_count(client, settings):
    settings.KEYWARD_FAILED_AUTH_RATE = "100000/min"  # measure the refusals, not the block
    unknown = [tokens.generate(tokens.Kind.SERVICE) for _ in range(100)]
    ways = [
        {},
        {"HTTP_AUTHORIZATION": "Bearer kwp_not-a-key"},
        {"HTTP_AUTHORIZATION": "Basic dXNlcjpwYXNz"},
    ]
    before = AuditEvent.objects.count()
    first_minute = _minute()
    for i in range(FLOOD):
        way = ways[i % 4] if i % 4 < 3 else {"HTTP_AUTHORIZATION": f"Bearer {unknown[i % 100]}"}
        assert client.get(WHOAMI, REMOTE_ADDR="203.0.113.50", **way).status_code == 401
    summaries.flush(everything=True)  # what a worker does once the minute has passed
    events = list(AuditEvent.objects.order_by("id")[before:])
    assert len(events) <= _minute() - first_minute + 1  # one per minute the flood lasted
    assert {e.action for e in events} == {"api.refused"}
    assert sum(e.metadata["count"] for e in events) == FLOOD
    assert {e.ip for e in events} == {"203.0.113.50"}
    reasons = {}
    for event in events:
        for reason, n in event.metadata["reasons"].items():
            reasons[reason] = reasons.get(reason, 0) + n
    assert reasons == {
        "no credentials": FLOOD // 2,  # no header, and another scheme's
        "malformed_token": FLOOD // 4,
        "unknown_key": FLOOD // 4,
    }


def test_10000_requests_of_a_key_over_its_rate_are_one_event_with_the_count(client, owner, tenant):
    tenant.key_rate = "10/day"  # one window for the whole flood
    tenant.save()
    key, token = factories.make_api_key(owner, tenant, scopes=["keys:read"])
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    first_minute = _minute()
    statuses = [client.get(WHOAMI, **headers).status_code for _ in range(FLOOD)]
    assert statuses.count(200) == 10 and statuses.count(429) == FLOOD - 10
    summaries.flush(everything=True)
    events = AuditEvent.objects.filter(target_kind="key", target_id=str(key.pk))
    assert events.filter(action="api.request").count() == 10  # each served request: its event
    throttled = list(events.filter(action="api.throttled"))
    assert 1 <= len(throttled) <= _minute() - first_minute + 1
    assert sum(e.metadata["count"] for e in throttled) == FLOOD - 10
    assert {e.tenant_id for e in throttled} == {tenant.pk}
