"""Figures read from the database when /metrics is scraped, not counted on the way: the task
queue (django-tasks-db's table) and webhook deliveries by outcome (the webhooks app's outbox).

Each is read only where its app is installed (``apps.is_installed`` and ``apps.get_model``,
never an import of the app: the figure appears when the app does), and a table that is absent
or unreadable (migrations not run yet) costs the scrape that figure, not an error.
"""

import logging

from django.apps import apps
from django.db import DatabaseError, transaction
from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

logger = logging.getLogger("keyward.metrics")

TASKS_APP = "django_tasks_db"
TASKS_LABEL = "django_tasks_database"
TASK_STATES = ("READY", "RUNNING")


def _tasks() -> list:
    if not apps.is_installed(TASKS_APP):
        return []
    model = apps.get_model(TASKS_LABEL, "DBTaskResult")
    depth = GaugeMetricFamily(
        "keyward_tasks_queued",
        "Background tasks waiting (READY) or running (RUNNING), by queue.",
        labels=["queue", "status"],
    )
    age = GaugeMetricFamily(
        "keyward_tasks_oldest_ready_age_seconds",
        "Age of the oldest task waiting to run, by queue (0 when none waits).",
        labels=["queue"],
    )
    now = timezone.now()
    rows = (
        model.objects.filter(status__in=TASK_STATES)
        .values("queue_name", "status")
        .annotate(count=Count("pk"), oldest=Min("enqueued_at"))
        .order_by()
    )
    for row in rows:
        depth.add_metric([row["queue_name"], row["status"]], row["count"])
        if row["status"] == "READY":
            age.add_metric([row["queue_name"]], max(0.0, (now - row["oldest"]).total_seconds()))
    return [depth, age]


WEBHOOKS_APP = "webhooks"


def _webhooks() -> list:
    if not apps.is_installed(WEBHOOKS_APP):
        return []
    model = apps.get_model(WEBHOOKS_APP, "WebhookDelivery")
    deliveries = GaugeMetricFamily(
        "keyward_webhook_deliveries",
        "Webhook deliveries by outcome: pending (being retried), succeeded, failed (given up).",
        labels=["status"],
    )
    age = GaugeMetricFamily(
        "keyward_webhook_oldest_pending_age_seconds",
        "Age of the oldest webhook delivery not yet delivered nor given up (0 when none).",
    )
    rows = model.objects.values("status").annotate(count=Count("pk")).order_by()
    for row in rows:
        deliveries.add_metric([row["status"]], row["count"])
    oldest = model.objects.filter(status="pending").aggregate(oldest=Min("created_at"))["oldest"]
    age.add_metric([], (timezone.now() - oldest).total_seconds() if oldest else 0.0)
    return [deliveries, age]


def _read(name: str, reader) -> list:
    try:
        with transaction.atomic():  # a savepoint: a failed read spoils no outer transaction
            return reader()
    except (DatabaseError, LookupError):
        logger.warning("metrics: %s not readable, left out of this scrape", name, exc_info=True)
        return []


class ScrapeTimeCollector:
    """What a scrape reads from the database (see the module)."""

    def collect(self):
        yield from _read("task queue", _tasks)
        yield from _read("webhook deliveries", _webhooks)
