import os

import pytest
from asgiref.local import Local
from django.core.signals import setting_changed
from django.db import connection
from django.db.backends.postgresql.operations import DatabaseOperations
from django.dispatch import receiver

from tests import factories

_sql_flush = DatabaseOperations.sql_flush


def _sql_flush_through_audit_trigger(self, style, tables, **kwargs):
    """Let transactional tests flush tables: the audit trigger's one documented escape.

    Django flushes inside one transaction (execute_sql_flush), so SET LOCAL ends with it.
    """
    statements = _sql_flush(self, style, tables, **kwargs)
    return ["SET LOCAL keyward.audit_prune = 'on';", *statements] if statements else statements


DatabaseOperations.sql_flush = _sql_flush_through_audit_trigger


@pytest.fixture
def postgresql():
    """Run only where the database is PostgreSQL; in CI a missing PostgreSQL is a failure."""
    if connection.vendor != "postgresql":
        if os.environ.get("CI"):
            pytest.fail("CI runs these tests on PostgreSQL: set DATABASE_URL")
        pytest.skip("needs PostgreSQL (set DATABASE_URL)")


@pytest.fixture
def tenant(db):
    return factories.make_tenant("acme")


@pytest.fixture
def owner(tenant):
    return tenant.memberships.get(role="owner").user


@pytest.fixture
def admin_member(tenant):
    return factories.add_member(tenant, "admin")


@pytest.fixture
def member(tenant):
    return factories.add_member(tenant, "member")


@pytest.fixture
def auditor(tenant):
    return factories.add_member(tenant, "auditor")


@pytest.fixture
def other_tenant(db):
    return factories.make_tenant("globex")


@pytest.fixture
def owner_client(client, owner):
    factories.verify_session(client, owner)
    return client


IMMEDIATE_TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}


@receiver(setting_changed)
def _reset_task_backends(*, setting, **kwargs):
    """Django keeps its task backends once built: build them again when a test changes TASKS."""
    if setting == "TASKS":
        from django.tasks import task_backends

        task_backends.__dict__.pop("settings", None)
        task_backends._connections = Local(task_backends.thread_critical)


@pytest.fixture(autouse=True)
def _tasks_run_at_once(settings):
    """Run background tasks (e-mails, webhook deliveries) in the process that enqueues them,
    when the enqueuing transaction commits: tests/common/test_tasks.py runs the database
    backend with its worker."""
    settings.TASKS = IMMEDIATE_TASKS


@pytest.fixture(autouse=True)
def _auth_mail_in_the_request(settings):
    """Send reset links and lock notices in the request, so a test finds them in the outbox at
    once: tests/security/test_login_enumeration.py covers the sending thread."""
    settings.KEYWARD_AUTH_MAIL = "request"


@pytest.fixture(autouse=True)
def _clear_cache():
    from django.core.cache import cache

    from api.recording import forget_log_marks
    from audit import summaries
    from common.ratelimit import reset_fallback
    from keys.throttling import reset_process_state

    cache.clear()
    reset_process_state()
    forget_log_marks()
    summaries.forget()
    reset_fallback()
    yield


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def fast_password_hasher(settings):
    """Hash test passwords with MD5: Argon2 costs ~0.1 s per user, and these tests make many."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
