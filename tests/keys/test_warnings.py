"""Warnings people asked for: expiry warnings at the tenant's days (30, 7 and 1 by default),
and a warning before a key is revoked for inactivity; each sent once, each also a webhook."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from accounts.models import Tenant
from audit.models import AuditEvent
from keys.models import ApiKey, KeyWarning, WarningKind
from keys.services.lifecycle import keys_revoke_unused, keys_warn_expiring, keys_warn_unused
from tests import factories

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]


def _set(key: ApiKey, **fields) -> ApiKey:
    ApiKey.objects.filter(pk=key.pk).update(**fields)
    key.refresh_from_db()
    return key


def _policy(tenant: Tenant, **fields) -> None:
    Tenant.objects.filter(pk=tenant.pk).update(**fields)
    tenant.refresh_from_db()


# --- Expiry warnings at the tenant's days -----------------------------------------------------


def test_a_60_day_key_is_warned_30_7_and_1_days_before_once_each(
    tenant, owner, django_capture_on_commit_callbacks
):
    assert tenant.expiry_warning_days == [30, 7, 1]  # the default
    key, token = factories.make_api_key(owner, tenant, days=60)
    start = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        assert keys_warn_expiring(now=start + timedelta(days=29)) == 0  # 31 days left
        for day in (31, 53.5, 59.5):
            assert keys_warn_expiring(now=start + timedelta(days=day)) == 1
            assert keys_warn_expiring(now=start + timedelta(days=day, hours=1)) == 0
    subjects = [m.subject for m in mail.outbox]
    assert len(subjects) == 3
    assert "in 30 days" in subjects[0] and "in 7 days" in subjects[1] and "tomorrow" in subjects[2]
    assert all(token not in m.body and key.hint in m.body for m in mail.outbox)
    assert sorted(KeyWarning.objects.filter(key=key).values_list("days", flat=True)) == [1, 7, 30]
    days = AuditEvent.objects.filter(action="key.expiry_warning_sent").order_by("id")
    assert [e.metadata["days"] for e in days] == [30, 7, 1]


def test_the_tenants_own_days_are_used(tenant, owner, django_capture_on_commit_callbacks):
    _policy(tenant, expiry_warning_days=[14])
    factories.make_api_key(owner, tenant, days=60)
    start = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        assert keys_warn_expiring(now=start + timedelta(days=31)) == 0  # no 30-day warning
        assert keys_warn_expiring(now=start + timedelta(days=47)) == 1
        assert keys_warn_expiring(now=start + timedelta(days=59, hours=12)) == 0  # no 1-day
    assert len(mail.outbox) == 1 and "in 14 days" in mail.outbox[0].subject


def test_no_days_means_no_expiry_warnings(tenant, owner):
    _policy(tenant, expiry_warning_days=[])
    factories.make_api_key(owner, tenant, days=60)
    assert keys_warn_expiring(now=timezone.now() + timedelta(days=59, hours=12)) == 0
    assert not KeyWarning.objects.exists()


def test_a_warning_is_recorded_once_per_key_kind_and_days(tenant, owner):
    key, _ = factories.make_api_key(owner, tenant)
    KeyWarning.objects.create(key=key, kind=WarningKind.EXPIRY, days=7, sent_at=timezone.now())
    with pytest.raises(IntegrityError), transaction.atomic():
        KeyWarning.objects.create(key=key, kind=WarningKind.EXPIRY, days=7, sent_at=timezone.now())
    KeyWarning.objects.create(key=key, kind=WarningKind.UNUSED, days=7, sent_at=timezone.now())


def test_an_unused_key_is_warned_30_days_before_it_is_revoked(
    tenant, owner, django_capture_on_commit_callbacks
):
    _policy(tenant, revoke_unused_after_days=90)
    key, token = factories.make_api_key(owner, tenant, days=365)
    start = key.created_at
    with django_capture_on_commit_callbacks(execute=True):
        assert keys_warn_unused(now=start + timedelta(days=59)) == 0
        assert keys_warn_unused(now=start + timedelta(days=61)) == 1
        assert keys_warn_unused(now=start + timedelta(days=62)) == 0  # once
    assert len(mail.outbox) == 1
    notice = mail.outbox[0]
    revoke_on = f"{start + timedelta(days=90):%Y-%m-%d}"
    assert notice.to == [owner.email]
    assert revoke_on in notice.subject and key.hint in notice.body and token not in notice.body
    event = AuditEvent.objects.get(action="key.unused_warning_sent")
    assert event.actor_kind == "system" and event.metadata["days"] == 90
    assert event.metadata["revoke_at"].startswith(revoke_on)
    assert ApiKey.objects.get(pk=key.pk).revoked_at is None
    assert keys_revoke_unused(now=start + timedelta(days=91)) == 1


def test_a_key_used_after_its_warning_is_warned_again_when_idle_again(tenant, owner):
    _policy(tenant, revoke_unused_after_days=90)
    key, _ = factories.make_api_key(owner, tenant, days=365)
    start = key.created_at
    assert keys_warn_unused(now=start + timedelta(days=61)) == 1
    _set(key, last_used_at=start + timedelta(days=70))
    assert keys_warn_unused(now=start + timedelta(days=71)) == 0
    assert keys_warn_unused(now=start + timedelta(days=129)) == 0  # 59 days idle
    assert keys_warn_unused(now=start + timedelta(days=131)) == 1
    assert keys_warn_unused(now=start + timedelta(days=132)) == 0
    assert KeyWarning.objects.filter(key=key, kind=WarningKind.UNUSED).count() == 1
    assert AuditEvent.objects.filter(action="key.unused_warning_sent").count() == 2


def test_a_key_that_expires_before_its_revocation_is_not_warned(tenant, owner):
    _policy(tenant, revoke_unused_after_days=90)
    factories.make_api_key(owner, tenant, days=80)
    assert keys_warn_unused(now=timezone.now() + timedelta(days=65)) == 0


def test_a_short_policy_warns_halfway(tenant, owner):
    _policy(tenant, revoke_unused_after_days=10)
    key, _ = factories.make_api_key(owner, tenant, days=365)
    assert keys_warn_unused(now=key.created_at + timedelta(days=4)) == 0
    assert keys_warn_unused(now=key.created_at + timedelta(days=5, minutes=1)) == 1


def test_keys_maintain_sends_the_inactivity_warnings(tenant, owner):
    _policy(tenant, revoke_unused_after_days=90)
    key, _ = factories.make_api_key(owner, tenant, days=365)
    _set(key, created_at=timezone.now() - timedelta(days=61))
    out = StringIO()
    call_command("keys_maintain", stdout=out)
    call_command("keys_maintain", stdout=out)
    assert "1 warnings of revocation for inactivity sent." in out.getvalue()
    assert AuditEvent.objects.filter(action="key.unused_warning_sent").count() == 1


# --- The policy page --------------------------------------------------------------------------


def _policy_form(**changes) -> dict:
    data = {
        "max_key_lifetime_days": 365,
        "default_key_lifetime_days": 30,
        "leak_policy": "revoke_and_notify",
        "allowed_ips": "",
        "key_rate": "",
    }
    data.update(changes)
    return data


def test_an_owner_sets_the_expiry_warning_days(client, tenant, owner):
    factories.verify_session(client, owner)
    url = reverse("keys:policy", kwargs={"slug": tenant.slug})
    assert b"30, 7, 1" in client.get(url).content
    response = client.post(url, _policy_form(expiry_warning_days="3, 14,14"))
    assert response.status_code == 302
    tenant.refresh_from_db()
    assert tenant.expiry_warning_days == [14, 3]
    event = AuditEvent.objects.get(action="tenant.policy_changed")
    assert event.metadata["changed"]["expiry_warning_days"] == [[30, 7, 1], [14, 3]]


@pytest.mark.parametrize("value", ["abc", "0", "400", "7,,x", "1,2,3,4,5,6"])
def test_bad_warning_days_are_a_400_and_change_nothing(client, tenant, owner, value):
    factories.verify_session(client, owner)
    url = reverse("keys:policy", kwargs={"slug": tenant.slug})
    response = client.post(url, _policy_form(expiry_warning_days=value))
    assert response.status_code == 400
    assert b"between 1 and 365" in response.content
    tenant.refresh_from_db()
    assert tenant.expiry_warning_days == [30, 7, 1]
    assert not AuditEvent.objects.filter(action="tenant.policy_changed").exists()
