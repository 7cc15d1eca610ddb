"""Load with integrity: a live server on PostgreSQL, 8 client threads x 250 requests.

With request events committed in the request (fail-closed, the default) and, again, written
by the per-process batched writer (fail-open): no 5xx; exactly one ``api.request`` /
``api.denied`` event per request sent (matched by request id: none lost, none doubled); and a
key revoked halfway through, from the test thread, through the service, answers no request with
a 2xx once the revoke has committed.

PostgreSQL only: SQLite serialises writers, which is not the concurrency this proves. Locally the
test skips on SQLite; in CI (``CI`` set) it fails instead, so that it can never silently not run.
"""

import http.client
import os
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from django.db import connection

from audit import writer
from audit.models import AuditEvent
from audit.services import Actor
from keys import services as key_services
from keys.models import ApiKey
from tests import factories

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("fast_password_hasher"),
]

THREADS = 8
REQUESTS_PER_THREAD = 250
TOTAL = THREADS * REQUESTS_PER_THREAD
VICTIM_EVERY = 4  # every 4th request of each thread uses the key that gets revoked
PATH = "/api/v1/whoami/"


@pytest.fixture
def postgresql():
    if connection.vendor != "postgresql":
        message = f"the load test needs PostgreSQL (DATABASE_URL), not {connection.vendor}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@dataclass(frozen=True)
class Sent:
    request_id: str
    key_id: int
    started: float  # time.monotonic() just before the request was written to the socket
    status: int


@pytest.fixture(params=["fail-closed", "fail-open"])
def request_events(request, settings):
    """Both ways of writing request events: committed in the request (fail-closed, the
    default) and the batched writer after the response (KEYWARD_AUDIT_FAIL_CLOSED=false)."""
    settings.KEYWARD_AUDIT_FAIL_CLOSED = request.param == "fail-closed"
    yield request.param
    writer.flush(close=True)  # the writer's own connection must not outlive the database


def _client(base_url: str, key_tokens: list[tuple[int, str]], thread: int, log: list, progress):
    """Send REQUESTS_PER_THREAD requests on one keep-alive connection; record each one."""
    netloc = urlsplit(base_url)
    conn = http.client.HTTPConnection(netloc.hostname, netloc.port, timeout=30)
    try:
        for i in range(REQUESTS_PER_THREAD):
            key_id, token = key_tokens[0] if i % VICTIM_EVERY == 0 else key_tokens[1 + i % 3]
            request_id = f"load-{thread}-{i}"
            started = time.monotonic()
            conn.request(
                "GET",
                PATH,
                headers={"Authorization": f"Bearer {token}", "X-Request-ID": request_id},
            )
            response = conn.getresponse()
            response.read()
            log.append(Sent(request_id, key_id, started, response.status))
            progress()
    finally:
        conn.close()


def test_load_keeps_every_request_audited_and_a_revoke_takes_effect_at_once(
    postgresql, live_server, request_events, settings, tenant, owner
):
    # The per-address limit of failed authentication would turn the revoked key's 401s into
    # 429s for every key from 127.0.0.1, and throttled requests are only logged.
    settings.KEYWARD_FAILED_AUTH_RATE = "1000000/min"
    settings.KEYWARD_KEY_RATE = "1000000/min"
    admin = factories.add_member(tenant, "admin")
    bot = factories.make_service_id(tenant, "load-bot", role="member")
    victim, victim_token = factories.make_api_key(owner, tenant, name="victim")
    others = [
        factories.make_api_key(owner, tenant, name="owner key"),
        factories.make_api_key(admin, name="admin key"),
        factories.make_api_key(bot, name="bot key"),
    ]
    key_tokens = [(victim.pk, victim_token)] + [(key.pk, token) for key, token in others]
    key_ids = [str(key_id) for key_id, _ in key_tokens]
    events_before = AuditEvent.objects.filter(action__in=["api.request", "api.denied"]).count()

    log: list[Sent] = []
    done = [0]
    lock = threading.Lock()
    halfway = threading.Event()

    def progress():
        with lock:
            done[0] += 1
            if done[0] >= TOTAL // 2:
                halfway.set()

    errors: list[BaseException] = []

    def run(thread: int):
        try:
            _client(live_server.url, key_tokens, thread, log, progress)
        except BaseException as error:  # reported below, with the thread that failed
            errors.append(error)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(THREADS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    assert halfway.wait(120), "the clients did not get halfway"
    key_services.key_revoke(actor=Actor.cli("load test"), key=victim, reason="revoked under load")
    revoked = time.monotonic()  # key_revoke's transaction has committed when it returns
    for thread in threads:
        thread.join(120)
    elapsed = time.monotonic() - started
    assert not errors, errors
    assert writer.flush(30), "the audit writer did not drain"

    assert len(log) == TOTAL
    statuses = {s.status for s in log}
    assert all(status < 500 for status in statuses), sorted(statuses)
    assert {s.status for s in log if s.key_id != victim.pk} == {200}

    # A revoke takes effect at once: no success for a request sent after it committed.
    victim_log = [s for s in log if s.key_id == victim.pk]
    after = [s for s in victim_log if s.started > revoked]
    assert after, "no request used the victim key after the revoke: nothing was proven"
    assert [s for s in after if 200 <= s.status < 300] == []
    assert {s.status for s in after} == {401}
    assert any(s.status == 200 for s in victim_log if s.started < revoked)
    assert ApiKey.objects.get(pk=victim.pk).revoked_at is not None

    # Exactly one request event per request sent, for exactly the keys used.
    events = AuditEvent.objects.filter(
        action__in=["api.request", "api.denied"], request_id__startswith="load-"
    )
    request_ids = list(events.values_list("request_id", flat=True))
    assert len(request_ids) == TOTAL
    assert sorted(request_ids) == sorted(s.request_id for s in log)
    assert set(events.values_list("target_id", flat=True)) <= set(key_ids)
    denied = events.filter(action="api.denied")
    assert set(denied.values_list("request_id", flat=True)) == {
        s.request_id for s in log if s.status == 401
    }
    assert set(denied.values_list("metadata__reason", flat=True)) == {"revoked"}
    total_events = AuditEvent.objects.filter(action__in=["api.request", "api.denied"]).count()
    assert total_events - events_before == TOTAL

    print(
        f"\nload ({request_events}): {TOTAL} requests ({THREADS} threads x "
        f"{REQUESTS_PER_THREAD}) in {elapsed:.1f} s "
        f"({TOTAL / elapsed:.0f}/s); {len(request_ids)} request events; victim key: "
        f"{len(victim_log)} requests, {len(after)} after the revoke, all 401"
    )
