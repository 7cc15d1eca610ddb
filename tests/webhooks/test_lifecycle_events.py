"""Lifecycle warnings reach webhooks: key.expiring and key.unused_revocation_pending."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Tenant
from keys.services.lifecycle import keys_warn_expiring, keys_warn_unused
from tests import factories
from webhooks.models import WebhookDelivery

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]


def _policy(tenant: Tenant, **fields) -> None:
    Tenant.objects.filter(pk=tenant.pk).update(**fields)
    tenant.refresh_from_db()


def test_an_expiry_warning_is_a_key_expiring_webhook(tenant, owner, receiver, endpoint):
    key, _ = factories.make_api_key(owner, tenant, days=30)
    keys_warn_expiring(now=timezone.now() + timedelta(days=23, hours=1))
    delivery = WebhookDelivery.objects.get(event_type="key.expiring")
    body = json.loads(delivery.body)
    assert body["data"]["key"]["hint"] == key.hint
    assert body["data"]["details"]["days"] == 7
    assert "recipients" not in body["data"]["details"]  # who was e-mailed stays in Keyward


# --- Before a revocation for inactivity -------------------------------------------------------


def test_the_warning_is_a_key_unused_revocation_pending_webhook(tenant, owner, endpoint):
    _policy(tenant, revoke_unused_after_days=90)
    key, _ = factories.make_api_key(owner, tenant, days=365)
    keys_warn_unused(now=key.created_at + timedelta(days=61))
    delivery = WebhookDelivery.objects.get(event_type="key.unused_revocation_pending")
    body = json.loads(delivery.body)
    assert body["type"] == "key.unused_revocation_pending"
    assert body["data"]["key"]["hint"] == key.hint and body["data"]["details"]["days"] == 90
