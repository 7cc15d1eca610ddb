"""keys_maintain's lifecycle jobs: expiry warnings and the revocation of unused keys."""

import os
import threading
from datetime import timedelta
from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from accounts import conf as accounts_conf
from accounts.models import Tenant
from audit.models import AuditEvent
from audit.services import Actor
from keys import services
from keys.models import ApiKey
from keys.services import keys_revoke_unused, keys_warn_expiring
from tests import factories

pytestmark = pytest.mark.django_db


def _set(key: ApiKey, **fields) -> ApiKey:
    ApiKey.objects.filter(pk=key.pk).update(**fields)
    key.refresh_from_db()
    return key


def _rotate_link(key: ApiKey) -> str:
    path = reverse("keys:rotate", kwargs={"slug": key.tenant.slug, "pk": key.pk})
    return accounts_conf.settings.BASE_URL.rstrip("/") + path


def _warnings():
    return list(AuditEvent.objects.filter(action="key.expiry_warning_sent").order_by("id"))


# --- Expiry warnings --------------------------------------------------------------------------


def test_owner_is_warned_7_days_and_1_day_before_expiry_once_each(
    tenant, owner, django_capture_on_commit_callbacks
):
    key, token = factories.make_api_key(owner, tenant, days=30)
    start = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        assert keys_warn_expiring(now=start + timedelta(days=22)) == 0  # 8 days left
        assert keys_warn_expiring(now=start + timedelta(days=23, hours=1)) == 1
        assert keys_warn_expiring(now=start + timedelta(days=23, hours=2)) == 0
    assert len(mail.outbox) == 1
    week = mail.outbox[0]
    assert week.to == [owner.email]
    assert "expires in 7 days" in week.subject and key.name in week.subject
    assert _rotate_link(key) in week.body
    assert token not in week.body and key.hint in week.body

    with django_capture_on_commit_callbacks(execute=True):
        assert keys_warn_expiring(now=start + timedelta(days=29, hours=1)) == 1
        assert keys_warn_expiring(now=start + timedelta(days=29, hours=5)) == 0
    assert len(mail.outbox) == 2
    assert "expires tomorrow" in mail.outbox[1].subject
    assert _rotate_link(key) in mail.outbox[1].body
    events = _warnings()
    assert [e.metadata["days"] for e in events] == [7, 1]
    assert {(e.actor_kind, e.actor_label, e.target_id) for e in events} == {
        ("system", "keys_maintain", str(key.pk))
    }
    assert events[0].metadata["recipients"] == [owner.email]


def test_a_key_already_in_its_last_day_gets_only_the_1_day_warning(
    tenant, owner, django_capture_on_commit_callbacks
):
    factories.make_api_key(owner, tenant, days=30)
    later = timezone.now() + timedelta(days=29, hours=12)
    with django_capture_on_commit_callbacks(execute=True):
        assert keys_warn_expiring(now=later) == 1
        assert keys_warn_expiring(now=later + timedelta(hours=1)) == 0
    assert len(mail.outbox) == 1 and "tomorrow" in mail.outbox[0].subject


def test_a_3_day_key_gets_no_7_day_warning(tenant, owner, django_capture_on_commit_callbacks):
    factories.make_api_key(owner, tenant, days=3)
    start = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        assert keys_warn_expiring(now=start + timedelta(hours=1)) == 0
        assert keys_warn_expiring(now=start + timedelta(days=2, hours=1)) == 1
    assert [e.metadata["days"] for e in _warnings()] == [1]


def test_a_service_keys_warning_goes_to_the_tenants_owners_and_admins(
    tenant, owner, admin_member, member, auditor, django_capture_on_commit_callbacks
):
    service_id = factories.make_service_id(tenant)
    factories.make_api_key(service_id, days=30)
    with django_capture_on_commit_callbacks(execute=True):
        keys_warn_expiring(now=timezone.now() + timedelta(days=23, hours=1))
    assert len(mail.outbox) == 1
    assert sorted(mail.outbox[0].to) == sorted([owner.email, admin_member.user.email])


def test_revoked_and_rotated_keys_are_not_warned(tenant, owner):
    revoked, _ = factories.make_api_key(owner, tenant, days=30)
    services.key_revoke(actor=Actor.cli("test"), key=revoked)
    rotated, _ = factories.make_api_key(owner, tenant, days=30)
    services.key_rotate(actor=Actor.cli("test"), key=rotated, grace="7d")
    # Only the successor (a new 30-day key) is left to warn, and not yet.
    assert keys_warn_expiring(now=timezone.now() + timedelta(days=6)) == 0
    assert _warnings() == []


def test_running_the_command_twice_sends_each_warning_once(
    tenant, owner, django_capture_on_commit_callbacks
):
    key, _ = factories.make_api_key(owner, tenant, days=30)
    now = timezone.now()
    _set(key, created_at=now - timedelta(days=25), expires_at=now + timedelta(days=5))
    out = StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("keys_maintain", stdout=out)
        call_command("keys_maintain", stdout=out)
    assert len(mail.outbox) == 1
    assert "1 expiry warnings sent." in out.getvalue()
    assert ApiKey.objects.get(pk=key.pk).expiry_warning_days == 7


def test_a_warning_that_rolls_back_leaves_no_mark_no_event_and_no_mail(
    tenant, owner, monkeypatch, django_capture_on_commit_callbacks
):
    key, _ = factories.make_api_key(owner, tenant, days=30)

    def broken(*args, **kwargs):
        raise RuntimeError("audit database gone")

    monkeypatch.setattr("keys.services.lifecycle.audit.record", broken)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        keys_warn_expiring(now=timezone.now() + timedelta(days=23, hours=1))
    assert ApiKey.objects.get(pk=key.pk).expiry_warning_days is None
    assert mail.outbox == [] and _warnings() == []


# --- Unused keys ----------------------------------------------------------------------------


def _policy(tenant: Tenant, days: int | None) -> None:
    Tenant.objects.filter(pk=tenant.pk).update(revoke_unused_after_days=days)


def test_keys_unused_for_the_tenants_policy_are_revoked_and_the_owner_told(
    tenant, owner, django_capture_on_commit_callbacks
):
    _policy(tenant, 90)
    now = timezone.now()
    never_used, token = factories.make_api_key(owner, tenant, days=200)
    _set(never_used, created_at=now - timedelta(days=91))
    used_lately, _ = factories.make_api_key(owner, tenant, days=200)
    _set(used_lately, created_at=now - timedelta(days=300), last_used_at=now - timedelta(days=10))
    used_long_ago, _ = factories.make_api_key(owner, tenant, days=200)
    _set(used_long_ago, created_at=now - timedelta(days=300), last_used_at=now - timedelta(days=95))
    young, _ = factories.make_api_key(owner, tenant, days=200)
    _set(young, created_at=now - timedelta(days=30))

    with django_capture_on_commit_callbacks(execute=True):
        assert keys_revoke_unused(now=now) == 2
        assert keys_revoke_unused(now=now) == 0

    revoked = set(ApiKey.objects.exclude(revoked_at=None).values_list("pk", flat=True))
    assert revoked == {never_used.pk, used_long_ago.pk}
    never_used.refresh_from_db()
    assert never_used.revoked_reason == "unused for 90 days" and never_used.revoked_by is None
    events = AuditEvent.objects.filter(action="key.revoked").order_by("id")
    assert [(e.target_id, e.actor_kind, e.actor_label) for e in events] == [
        (str(never_used.pk), "system", "keys_maintain"),
        (str(used_long_ago.pk), "system", "keys_maintain"),
    ]
    assert len(mail.outbox) == 2
    assert all(m.to == [owner.email] for m in mail.outbox)
    assert "revoked after 90 days unused" in mail.outbox[0].subject
    assert token not in mail.outbox[0].body


def test_no_key_is_revoked_for_inactivity_when_the_policy_is_off(tenant, owner):
    _policy(tenant, None)
    key, _ = factories.make_api_key(owner, tenant, days=30)
    _set(key, created_at=timezone.now() - timedelta(days=3000))
    assert keys_revoke_unused() == 0
    assert ApiKey.objects.get(pk=key.pk).revoked_at is None


def test_the_inactivity_policy_is_each_tenants_own(tenant, owner, other_tenant):
    _policy(tenant, 30)  # other_tenant keeps the default, 365 days
    now = timezone.now()
    mine, _ = factories.make_api_key(owner, tenant, days=100)
    other_owner = other_tenant.memberships.get(role="owner").user
    theirs, _ = factories.make_api_key(other_owner, other_tenant, days=100)
    for key in (mine, theirs):
        _set(key, created_at=now - timedelta(days=60))
    assert keys_revoke_unused(now=now) == 1
    assert ApiKey.objects.get(pk=mine.pk).revoked_at is not None
    assert ApiKey.objects.get(pk=theirs.pk).revoked_at is None


def test_key_page_announces_inactivity_revocation_30_days_before(owner_client, tenant, owner):
    _policy(tenant, 90)
    now = timezone.now()
    soon, _ = factories.make_api_key(owner, tenant, days=200)
    _set(soon, last_used_at=now - timedelta(days=70))
    later, _ = factories.make_api_key(owner, tenant, days=200)
    _set(later, last_used_at=now - timedelta(days=50))

    page = owner_client.get(reverse("keys:detail", kwargs={"slug": "acme", "pk": soon.pk}))
    html = page.content.decode()
    when = (soon.last_used_at + timedelta(days=90)).strftime("%Y-%m-%d")
    assert "will be revoked for inactivity on" in html and when in html

    page = owner_client.get(reverse("keys:detail", kwargs={"slug": "acme", "pk": later.pk}))
    assert "will be revoked for inactivity" not in page.content.decode()


def test_no_inactivity_notice_when_the_key_expires_first(owner_client, tenant, owner):
    _policy(tenant, 90)
    key, _ = factories.make_api_key(owner, tenant, days=3)  # expires before day 90 comes
    _set(key, created_at=timezone.now() - timedelta(days=85))
    page = owner_client.get(reverse("keys:detail", kwargs={"slug": "acme", "pk": key.pk}))
    assert "will be revoked for inactivity" not in page.content.decode()


# --- Several hosts at once (PostgreSQL: real row locks) ------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_runs_warn_and_revoke_each_key_once():
    if connection.vendor != "postgresql":
        message = "needs PostgreSQL (set DATABASE_URL): SQLite has no row locks"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI must run it; only a local SQLite run may skip
        pytest.skip(message)
    tenant = factories.make_tenant("acme")
    owner = tenant.memberships.get(role="owner").user
    _policy(tenant, 60)
    now = timezone.now()
    warned, stale = [], []
    for _ in range(12):
        key, _ = factories.make_api_key(owner, tenant, days=30)
        warned.append(
            _set(key, created_at=now - timedelta(days=25), expires_at=now + timedelta(days=5))
        )
        key, _ = factories.make_api_key(owner, tenant, days=200)
        stale.append(_set(key, created_at=now - timedelta(days=61)))
    barrier = threading.Barrier(2)
    results, errors = [], []

    def run():
        try:
            barrier.wait()
            results.append(
                (keys_warn_expiring(now=now, batch=2), keys_revoke_unused(now=now, batch=2))
            )
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(w for w, _ in results) == 12 and sum(r for _, r in results) == 12
    assert AuditEvent.objects.filter(action="key.expiry_warning_sent").count() == 12
    assert AuditEvent.objects.filter(action="key.revoked").count() == 12
    subjects = [m.subject for m in mail.outbox]
    assert sum("expires in" in s for s in subjects) == 12
    assert sum("unused" in s for s in subjects) == 12
    assert len(subjects) == 24
