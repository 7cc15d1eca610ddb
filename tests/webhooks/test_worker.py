"""Production's task backend (django-tasks-db) on PostgreSQL: webhook deliveries are rows that
separate ``manage.py db_worker`` processes claim with SKIP LOCKED; two workers at once deliver
each message exactly once when every attempt succeeds."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django_tasks_db.models import DBTaskResult

from tests import factories
from webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("fast_password_hasher", "postgresql"),
]

ROOT = Path(__file__).resolve().parents[2]
KEYS = 12


def _worker(worker_id: str) -> subprocess.Popen:
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.webhooks.worker_settings",
        "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:"
        f"{db['PORT'] or 5432}/{db['NAME']}",
        "SECRET_KEY": settings.SECRET_KEY,  # the secrets are sealed under it
    }
    return subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "db_worker",
            "--batch",
            "--no-startup-delay",
            "--worker-id",
            worker_id,
            "--interval",
            "0.1",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def test_two_db_workers_deliver_every_webhook_once(endpoint, owner, receiver, settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    ep, secret = endpoint
    for _ in range(KEYS):
        factories.make_api_key(owner, ep.tenant)
    # Committed: each key's outbox row, and (enqueued on commit) its task row; nothing sent.
    assert WebhookDelivery.objects.count() == KEYS
    assert DBTaskResult.objects.filter(status="READY").count() == KEYS
    assert receiver.received == []

    workers = [_worker("worker-a"), _worker("worker-b")]
    outputs = [w.communicate(timeout=300)[0].decode() for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs

    attempts = list(WebhookAttempt.objects.values_list("status_code", "error"))
    assert len(attempts) == KEYS and {a[0] for a in attempts} == {204}, (attempts, outputs)
    ids = [r.headers["webhook-id"] for r in receiver.received]
    assert sorted(ids) == sorted(WebhookDelivery.objects.values_list("msg_id", flat=True))
    assert all(r.verify(secret)["type"] == "key.issued" for r in receiver.received)
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {
        DeliveryStatus.SUCCEEDED
    }
    tasks = list(DBTaskResult.objects.all())
    assert {t.status for t in tasks} == {"SUCCESSFUL"}
    assert all(len(t.worker_ids) == 1 for t in tasks)  # each task claimed by one worker
