"""/metrics: the figures move with the requests that make them."""

import pytest

from audit import writer
from audit.services import Actor
from keys import tokens
from keys.services import key_revoke
from tests import factories
from tests.metrics.scrape import scrape, value

pytestmark = pytest.mark.django_db


@pytest.fixture
def key_token(tenant, owner):
    return factories.make_api_key(owner, tenant, scopes=["keys:read"])[1]


def _delta(before: dict, after: dict, name: str, **labels) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def test_api_requests_are_counted_by_outcome_and_status(client, api_client, key_token):
    before = scrape(client)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {key_token}")
    assert api_client.get("/api/v1/whoami/").status_code == 200
    assert api_client.get("/api/v1/keys/999999/").status_code == 404
    after = scrape(client)
    requests = "keyward_api_requests_total"
    assert _delta(before, after, requests, outcome="success", status="200") == 1
    assert _delta(before, after, requests, outcome="failure", status="404") == 1


def test_refusals_are_counted_by_reason(client, api_client, tenant, owner, key_token):
    revoked, revoked_token = factories.make_api_key(owner, tenant, name="old")
    key_revoke(actor=Actor.system(), key=revoked)
    before = scrape(client)
    for header in (
        f"Bearer {key_token[:-1]}x",  # bad checksum: malformed, no lookup
        f"Bearer {tokens.generate(tokens.Kind.PERSONAL)}",  # well-formed, unknown
        None,  # no credentials
        f"Bearer {revoked_token}",  # a known key, refused: its own api.denied event
    ):
        api_client.credentials(**({"HTTP_AUTHORIZATION": header} if header else {}))
        assert api_client.get("/api/v1/whoami/").status_code == 401
    after = scrape(client)
    refused = "keyward_api_refused_total"
    assert _delta(before, after, refused, reason="malformed_token") == 1
    assert _delta(before, after, refused, reason="unknown_key") == 1
    assert _delta(before, after, refused, reason="no credentials") == 1
    requests = "keyward_api_requests_total"
    assert _delta(before, after, requests, outcome="refused", status="401") == 3
    assert _delta(before, after, requests, outcome="denied", status="401") == 1


def test_throttled_requests_are_counted(client, api_client, key_token, settings):
    settings.KEYWARD_KEY_RATE = "1/min"
    before = scrape(client)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {key_token}")
    assert api_client.get("/api/v1/whoami/").status_code == 200
    assert api_client.get("/api/v1/whoami/").status_code == 429
    after = scrape(client)
    requests = "keyward_api_requests_total"
    assert _delta(before, after, requests, outcome="throttled", status="429") == 1
    assert _delta(before, after, "keyward_api_throttled_total", reason="key_rate_limited") == 1


def test_authentication_latency_is_observed_for_accepted_and_refused_keys(
    client, api_client, key_token
):
    before = scrape(client)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {key_token}")
    api_client.get("/api/v1/whoami/")
    # Unknown (a malformed one is refused by the middleware before any authentication).
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens.generate(tokens.Kind.PERSONAL)}")
    assert api_client.get("/api/v1/whoami/").status_code == 401
    after = scrape(client)
    histogram = "keyward_authentication_seconds"
    assert _delta(before, after, f"{histogram}_count", outcome="accepted") == 1
    assert _delta(before, after, f"{histogram}_count", outcome="refused") == 1
    assert _delta(before, after, f"{histogram}_sum", outcome="accepted") > 0
    assert _delta(before, after, f"{histogram}_bucket", outcome="accepted", le="+Inf") == 1


def test_request_event_writes_are_timed(client, api_client, key_token, postgresql):
    before = scrape(client)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {key_token}")
    api_client.get("/api/v1/whoami/")
    after = scrape(client)
    assert _delta(before, after, "keyward_audit_write_seconds_count", mode="request") == 1


@pytest.mark.django_db(transaction=True)
def test_batched_writes_are_timed_and_the_queue_drains(client, api_client, tenant, owner, settings):
    settings.KEYWARD_AUDIT_FAIL_CLOSED = False
    _, token = factories.make_api_key(owner, tenant, scopes=["keys:read"])
    try:
        before = scrape(client)
        api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        for _ in range(3):
            assert api_client.get("/api/v1/whoami/").status_code == 200
        assert writer.flush()
        after = scrape(client)
    finally:
        writer.flush(close=True)
    assert _delta(before, after, "keyward_audit_write_seconds_count", mode="batch") >= 1
    assert value(after, "keyward_audit_queue_depth") == 0
