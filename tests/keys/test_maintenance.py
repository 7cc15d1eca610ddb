from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import Actor
from keys import services
from keys.models import ApiKey
from keys.services import keys_expire
from tests import factories

pytestmark = pytest.mark.django_db


def test_expired_keys_are_recorded_once(tenant, owner):
    old, _ = factories.make_api_key(owner, tenant, days=1)
    fresh, _ = factories.make_api_key(owner, tenant, days=30)
    later = timezone.now() + timedelta(days=2)
    assert keys_expire(now=later) == 1
    assert keys_expire(now=later) == 0
    events = AuditEvent.objects.filter(action="key.expired")
    assert [(e.target_id, e.actor_kind) for e in events] == [(str(old.pk), "system")]
    old.refresh_from_db()
    fresh.refresh_from_db()
    assert old.expired_at == old.expires_at and fresh.expired_at is None


def test_a_rotated_keys_grace_end_is_an_expiry_and_revoked_keys_are_left_alone(tenant, owner):
    rotated, _ = factories.make_api_key(owner, tenant)
    services.key_rotate(actor=Actor.cli("test"), key=rotated, grace="1h")
    revoked, _ = factories.make_api_key(owner, tenant, days=1)
    services.key_revoke(actor=Actor.cli("test"), key=revoked)
    assert keys_expire(now=timezone.now() + timedelta(days=2)) == 1
    event = AuditEvent.objects.get(action="key.expired")
    assert event.target_id == str(rotated.pk) and event.metadata["rotated"] is True
    assert ApiKey.objects.get(pk=revoked.pk).expired_at is None


def test_command_reports_what_it_did(tenant, owner):
    key, _ = factories.make_api_key(owner, tenant, days=1)
    ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    out = StringIO()
    call_command("keys_maintain", stdout=out)
    assert out.getvalue().splitlines()[0] == "1 keys expired."
