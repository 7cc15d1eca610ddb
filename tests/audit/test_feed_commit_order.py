"""The audit feed delivers every event exactly once, whatever order transactions commit in.

Ids are taken at INSERT, but transactions commit out of id order: a cursor on ids (or on a
wall-clock lag) skips the event of a transaction that commits late. The feed hands out events
in commit order (txid, id) and only those no open transaction can still precede
(audit/selectors.py). PostgreSQL only: SQLite commits one writer at a time.
"""

import random
import threading
import time

import pytest
from django.db import connection, transaction
from rest_framework.test import APIClient

import audit
from audit.models import AuditEvent
from audit.services import Actor
from tests import factories

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("postgresql")]

URL = "/api/v1/audit-events/"
ACTION = "key.revoked"  # what the writers record; the reader's own api.request events aside
OLD_LAG = 5  # seconds the feed used to hold events back (KEYWARD_AUDIT_API_LAG)


@pytest.fixture
def feed(tenant, owner):
    _, token = factories.make_api_key(owner, tenant, scopes=["audit:read"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    state = {"cursor": None}

    def pull() -> list[int]:
        """Follow the cursor until has_more is false; return the ids handed out."""
        seen = []
        while True:
            params = {"action": ACTION, "limit": 500}
            if state["cursor"]:
                params["cursor"] = state["cursor"]
            response = client.get(URL, params)
            assert response.status_code == 200, response.content
            page = response.json()
            seen += [event["id"] for event in page["results"]]
            state["cursor"] = page["next_cursor"] or state["cursor"]
            if not page["has_more"]:
                return seen

    return pull


def _catch_up(feed, seen: list, want: int) -> list:
    """Pull until ``want`` events were seen (bounded): a transaction open anywhere in the
    cluster, even another test run's, holds the feed back until it ends."""
    deadline = time.monotonic() + 30
    while len(seen) < want and time.monotonic() < deadline:
        seen += feed()
        time.sleep(0.1)
    return seen


def _record(tenant, note: str) -> AuditEvent:
    return audit.record(ACTION, actor=Actor.system(), tenant=tenant, metadata={"note": note})


def test_a_transaction_held_open_is_delivered_once_when_it_commits(feed, tenant):
    opened, release = threading.Event(), threading.Event()
    held = {}

    def slow_writer():
        try:
            with transaction.atomic():
                held["event"] = _record(tenant, "held open")
                opened.set()
                release.wait(30)
        finally:
            connection.close()

    thread = threading.Thread(target=slow_writer)
    thread.start()
    assert opened.wait(10)
    later = _record(tenant, "committed at once")  # a higher txid, committed first
    assert later.pk > held["event"].pk
    seen = []
    deadline = time.monotonic() + 3 * OLD_LAG
    while time.monotonic() < deadline:
        seen += feed()
        time.sleep(0.3)
    # Handing out the later event now would move the cursor past the held one for good.
    assert seen == []
    release.set()
    thread.join(10)
    _catch_up(feed, seen, 2)
    assert seen == [held["event"].pk, later.pk]  # commit order, each once
    assert feed() == []


def test_a_poller_sees_every_event_of_8_writers_exactly_once(feed, tenant):
    stop = threading.Event()
    errors = []

    def writer(n: int):
        rng = random.Random(n)
        try:
            while not stop.is_set():
                if rng.random() < 0.5:
                    with transaction.atomic():
                        _record(tenant, f"writer {n}")
                        time.sleep(rng.uniform(0, 0.02))  # commit late, out of id order
                        if rng.random() < 0.3:
                            _record(tenant, f"writer {n}, second")
                else:
                    _record(tenant, f"writer {n}, autocommit")
        except Exception as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    seen = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        seen += feed()
        time.sleep(0.05)
    stop.set()
    for thread in threads:
        thread.join(10)
    assert not errors
    expected = list(
        AuditEvent.objects.filter(tenant=tenant, action=ACTION).values_list("id", flat=True)
    )
    _catch_up(feed, seen, len(expected))
    assert len(expected) > 500  # the writers did write
    assert len(seen) == len(set(seen)), "an event was delivered twice"
    assert set(seen) == set(expected), f"{len(set(expected) - set(seen))} events never delivered"
