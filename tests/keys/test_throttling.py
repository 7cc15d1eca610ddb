"""Per-key rate limits and the per-address limit on failed authentication."""

import threading
import time

import pytest
from django.core.cache import cache
from django.test import override_settings

from accounts.models import Tenant
from accounts.principals import Principal
from api.base import KEY_THROTTLED
from audit import summaries
from audit.models import AuditEvent
from common.ratelimit import incr_window
from keys import services, throttling, tokens
from keys.authentication import AUTH_THROTTLED
from keys.throttling import KeyRateThrottle, rate_of
from tests import factories

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]

WHOAMI = "/api/v1/whoami/"


def _get(client, token: str, **extra):
    return client.get(WHOAMI, HTTP_AUTHORIZATION=f"Bearer {token}", **extra)


@pytest.fixture
def admin(tenant):
    return factories.add_member(tenant, "admin")


def test_key_over_its_tenants_rate_gets_429_with_retry_after(api_client, tenant, admin):
    Tenant.objects.filter(pk=tenant.pk).update(key_rate="2/min")
    key, token = factories.make_api_key(admin)
    assert [_get(api_client, token).status_code for _ in range(2)] == [200, 200]
    response = _get(api_client, token)
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 61
    assert response.json()["code"] == "throttled"
    assert response.json()["detail"].startswith(KEY_THROTTLED)
    assert "Expected available in" in response.json()["detail"]
    summaries.flush(everything=True)  # a key's 429s: one event per key and minute
    event = AuditEvent.objects.get(action="api.throttled")
    assert (event.target_id, event.metadata["reasons"]) == (str(key.pk), {"key_rate_limited": 1})


def test_refused_requests_count_against_the_keys_rate(api_client, tenant, admin):
    Tenant.objects.filter(pk=tenant.pk).update(key_rate="2/min")
    _, token = factories.make_api_key(admin, scopes=["keys:read"])
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    statuses = [api_client.get("/api/v1/members/", **headers).status_code for _ in range(3)]
    assert statuses == [403, 403, 429]


def test_each_key_has_its_own_counter(api_client, tenant, admin):
    Tenant.objects.filter(pk=tenant.pk).update(key_rate="1/min")
    _, first = factories.make_api_key(admin, name="first")
    _, second = factories.make_api_key(admin, name="second")
    assert _get(api_client, first).status_code == 200
    assert _get(api_client, first).status_code == 429
    assert _get(api_client, second).status_code == 200


@override_settings(KEYWARD_KEY_RATE="1/min")
def test_default_rate_applies_when_the_tenant_sets_none(api_client, admin):
    _, token = factories.make_api_key(admin)
    assert _get(api_client, token).status_code == 200
    assert _get(api_client, token).status_code == 429


@override_settings(KEYWARD_KEY_RATE="5/min")
def test_malformed_tenant_rate_falls_back_to_the_default(tenant, admin):
    Tenant.objects.filter(pk=tenant.pk).update(key_rate="lots")
    key, _ = factories.make_api_key(admin)
    key.refresh_from_db()
    assert rate_of(key) == (5, 60)


def test_window_counter_counts_in_one_key_and_resets_per_window():
    assert [incr_window("rl:key:test:1", 61) for _ in range(3)] == [1, 2, 3]
    assert cache.get("rl:key:test:1") == 3  # the same value the cache API reads
    assert incr_window("rl:key:test:2", 61) == 1


def test_requests_without_a_key_are_not_counted_by_the_key_throttle():
    class Anonymous:
        auth = None

    assert KeyRateThrottle().allow_request(Anonymous(), view=None) is True


@override_settings(KEYWARD_FAILED_AUTH_RATE="3/min")
def test_an_address_over_its_failure_limit_gets_429_for_failures_only(
    api_client, admin, django_assert_num_queries
):
    _, valid = factories.make_api_key(admin)
    attacker = {"REMOTE_ADDR": "203.0.113.9"}
    guesses = [tokens.generate(tokens.Kind.PERSONAL) for _ in range(3)]
    statuses = [_get(api_client, guess, **attacker).status_code for guess in guesses]
    assert statuses == [401, 401, 401]
    response = _get(api_client, tokens.generate(tokens.Kind.PERSONAL), **attacker)
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 61
    assert response.json()["code"] == "throttled"
    assert response.json()["detail"].startswith(AUTH_THROTTLED)
    assert "Expected available in" in response.json()["detail"]
    with django_assert_num_queries(0):  # a guess repeated costs no lookup
        assert _get(api_client, guesses[0], **attacker).status_code == 429
    # SECURITY: the limit never refuses a key that authenticates, from the same address.
    assert [_get(api_client, valid, **attacker).status_code for _ in range(3)] == [200] * 3


@override_settings(KEYWARD_FAILED_AUTH_RATE="3/min")
def test_a_client_retrying_a_revoked_key_never_locks_out_its_valid_keys(api_client, admin):
    revoked, revoked_token = factories.make_api_key(admin, name="old")
    _, valid = factories.make_api_key(admin, name="new")
    services.key_revoke(actor=Principal.of_membership(admin), key=revoked, reason="rotated")
    retries = [_get(api_client, revoked_token).status_code for _ in range(10)]
    assert retries == [401] * 3 + [429] * 7
    assert _get(api_client, valid).status_code == 200


@override_settings(KEYWARD_FAILED_AUTH_RATE="2/min")
def test_tokens_in_the_query_string_count_as_failures(api_client, admin):
    _, valid = factories.make_api_key(admin)
    assert api_client.get(f"{WHOAMI}?access_token=abc").status_code == 400
    assert api_client.get(f"{WHOAMI}?t={tokens.generate(tokens.Kind.SERVICE)}").status_code == 400
    assert api_client.get(f"{WHOAMI}?access_token=abc").status_code == 429
    assert _get(api_client, valid).status_code == 200


@override_settings(KEYWARD_FAILED_AUTH_RATE="2/min")
def test_successful_requests_do_not_count_as_failures(api_client, admin):
    _, valid = factories.make_api_key(admin)
    assert [_get(api_client, valid).status_code for _ in range(5)] == [200] * 5


@override_settings(KEYWARD_FAILED_AUTH_RATE="2/min")
def test_malformed_tokens_are_not_counted_against_the_address(api_client, admin):
    # Refused before any lookup, they guess at nothing; counting them would cost a round trip
    # per forged request.
    _, valid = factories.make_api_key(admin)
    attacker = {"REMOTE_ADDR": "203.0.113.9"}
    assert [_get(api_client, "garbage", **attacker).status_code for _ in range(5)] == [401] * 5
    assert _get(api_client, valid, **attacker).status_code == 200


def test_a_process_reserves_a_busy_keys_requests_in_leases(api_client, tenant, admin, monkeypatch):
    Tenant.objects.filter(pk=tenant.pk).update(key_rate="1000/min")  # lease: 10 requests
    key, token = factories.make_api_key(admin)
    calls = []
    real = throttling.ratelimit.incr_window
    monkeypatch.setattr(
        throttling.ratelimit, "incr_window", lambda *a: calls.append(a[2]) or real(*a)
    )
    assert all(_get(api_client, token).status_code == 200 for _ in range(25))
    assert calls == [10, 10, 10]  # three round trips for 25 requests
    window = int(time.time() // 60)
    assert cache.get(f"rl:key:{key.pk}:{window}") == 30  # what this process reserved


def test_leases_never_grant_more_than_the_limit_across_processes(tenant, admin):
    limit, period, window = 250, 60, 7  # lease: 2 requests
    processes = [throttling._Leases() for _ in range(3)]
    granted = sum(processes[i % 3].take(4242, limit, period, window) for i in range(3 * limit))
    assert granted == limit  # round-robin spends every lease: exactly the limit, never more
    assert not any(p.take(4242, limit, period, window) for p in processes)
    assert cache.get(f"rl:key:4242:{window}") <= limit + 3 * throttling.lease_size(limit)
    fresh = throttling._Leases()
    assert fresh.take(4242, limit, period, window + 1)  # the next window starts over


def test_a_lease_left_unspent_is_all_a_key_can_lose(tenant, admin):
    limit, period, window = 1000, 60, 9  # lease: 10 requests
    idle, busy = throttling._Leases(), throttling._Leases()
    assert idle.take(77, limit, period, window)  # reserves 10, spends 1
    granted = 1 + sum(busy.take(77, limit, period, window) for _ in range(2 * limit))
    assert limit - throttling.lease_size(limit) < granted <= limit


@override_settings(KEYWARD_FAILED_AUTH_RATE="2/min")
def test_an_address_refused_for_its_failures_gets_429_even_for_a_malformed_token(api_client):
    attacker = {"REMOTE_ADDR": "203.0.113.9"}
    for _ in range(2):
        _get(api_client, tokens.generate(tokens.Kind.PERSONAL), **attacker)
    assert _get(api_client, "garbage", **attacker).status_code == 429
    assert _get(api_client, "garbage", REMOTE_ADDR="198.51.100.1").status_code == 401


def test_threads_of_one_process_never_spend_a_reserved_request_twice():
    leases, limit = throttling._Leases(), 500  # lease: 5 requests
    granted = []

    def client():
        granted.extend(leases.take(99, limit, 60, 3) for _ in range(100))

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(granted) == 800 and sum(granted) == limit
