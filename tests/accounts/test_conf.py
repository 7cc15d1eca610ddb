import pytest
from django.test import override_settings

from accounts import conf, lockout
from audit.models import AuditEvent
from tests import factories

pytestmark = pytest.mark.django_db


def test_lock_after_failures_is_read_when_used():
    user = factories.make_user("counted@example.com")
    with override_settings(KEYWARD_LOCK_AFTER_FAILURES=3):
        assert conf.settings.LOCK_AFTER_FAILURES == 3
        for _ in range(3):
            lockout.auth_failure(user=user, action="auth.login_failed")
    user.refresh_from_db()
    assert user.locked_at is not None and user.failed_auth_count == 3
    assert AuditEvent.objects.filter(action="auth.account_locked").count() == 1


def test_an_unset_setting_falls_back_to_the_default(settings):
    if hasattr(settings, "KEYWARD_LOCK_AFTER_FAILURES"):  # set in this environment
        del settings.KEYWARD_LOCK_AFTER_FAILURES
    assert conf.settings.LOCK_AFTER_FAILURES == 100
