"""Settings of the db_worker processes tests/webhooks/test_worker.py starts: production's
database task backend, with deliveries allowed to the test's receiver on loopback."""

from config.settings import *  # noqa: F403

KEYWARD_WEBHOOKS_ALLOW_LOOPBACK = True
KEYWARD_WEBHOOKS_ALLOW_HTTP = True
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
