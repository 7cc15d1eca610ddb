"""What a scrape reads from the database: the task queue (django-tasks-db) and webhook
deliveries by outcome (the webhooks app's outbox), and a scrape that survives their absence."""

from datetime import timedelta

import pytest
from asgiref.local import Local
from django.apps import apps
from django.db import connection
from django.utils import timezone

from keys import leaks
from tests.metrics.scrape import scrape, value

pytestmark = pytest.mark.django_db


def _reset_task_backends():
    from django.tasks import task_backends

    task_backends.__dict__.pop("settings", None)
    task_backends._connections = Local(task_backends.thread_critical)


@pytest.fixture
def database_tasks(settings):
    settings.TASKS = {
        "default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"},
        "database": {"BACKEND": "django_tasks_db.DatabaseBackend"},
    }
    _reset_task_backends()
    yield apps.get_model("django_tasks_database", "DBTaskResult")
    _reset_task_backends()


def test_the_task_queue_depth_and_age_are_read_at_scrape_time(client, database_tasks):
    assert value(scrape(client), "keyward_tasks_queued", queue="default", status="READY") == 0
    for _ in range(3):
        leaks.leak_signer_keys_refresh.using(backend="database").enqueue()
    database_tasks.objects.filter(pk=database_tasks.objects.order_by("pk")[0].pk).update(
        enqueued_at=timezone.now() - timedelta(minutes=10)
    )
    samples = scrape(client)
    assert value(samples, "keyward_tasks_queued", queue="default", status="READY") == 3
    age = value(samples, "keyward_tasks_oldest_ready_age_seconds", queue="default")
    assert 590 < age < 700


def test_a_missing_task_table_costs_the_scrape_only_that_figure(client, database_tasks, caplog):
    leaks.leak_signer_keys_refresh.using(backend="database").enqueue()
    table = database_tasks._meta.db_table
    with connection.cursor() as cursor:  # undone with the test's transaction
        cursor.execute(f"ALTER TABLE {table} RENAME TO {table}_away")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert b"keyward_tasks_queued{" not in response.content
    assert b"keyward_api_requests_total" in response.content
    assert b"keyward_webhook_deliveries" in response.content  # read after the failed one
    assert "task queue not readable" in caplog.text


def _deliveries(tenant, **statuses):
    endpoint_model = apps.get_model("webhooks", "WebhookEndpoint")
    delivery_model = apps.get_model("webhooks", "WebhookDelivery")
    endpoint = endpoint_model.objects.create(
        tenant=tenant, url="https://hooks.example/keyward", events=["key.revoked"]
    )
    now = timezone.now()
    made = 0
    for status, count in statuses.items():
        for _ in range(count):
            made += 1
            delivery_model.objects.create(
                endpoint=endpoint,
                msg_id=f"msg_{made}",
                event_type="key.revoked",
                body="{}",
                status=status,
                created_at=now - timedelta(minutes=made),
                finished_at=None if status == "pending" else now,
            )


def test_webhook_deliveries_are_counted_by_outcome(client, tenant):
    _deliveries(tenant, pending=2, succeeded=3, failed=1)
    samples = scrape(client)
    for status, count in (("pending", 2), ("succeeded", 3), ("failed", 1)):
        assert value(samples, "keyward_webhook_deliveries", status=status) == count
    age = value(samples, "keyward_webhook_oldest_pending_age_seconds")
    assert 110 < age < 200  # the older of the two pending ones: 2 minutes


def test_without_pending_deliveries_the_age_is_zero(client, tenant):
    _deliveries(tenant, succeeded=1)
    samples = scrape(client)
    assert value(samples, "keyward_webhook_oldest_pending_age_seconds") == 0
    assert value(samples, "keyward_webhook_deliveries", status="succeeded") == 1
