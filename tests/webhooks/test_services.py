"""Webhook endpoints and deliveries: the outbox row commits with its audit event, each delivery
verifies with the reference ``standardwebhooks`` library, retries back off, failing endpoints
are disabled, rotation signs twice for a day."""

import json
from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from accounts.models import Membership
from accounts.principals import Principal
from audit.models import AuditEvent
from keys import services as key_services
from tests import factories
from webhooks import services
from webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]


def _deliver_all(now=None) -> list[str]:
    return [
        services.delivery_attempt(delivery_id=pk, now=now)
        for pk in WebhookDelivery.objects.pending().order_by("id").values_list("pk", flat=True)
    ]


# --- Endpoints --------------------------------------------------------------------------------


def test_owner_adds_an_endpoint_audited_with_its_secret_sealed(
    owner_principal, receiver, local_receivers_allowed
):
    endpoint, secret = services.endpoint_create(
        actor=owner_principal, url=receiver.url, events=["key.issued", "key.revoked"]
    )
    assert secret.startswith("whsec_")
    stored = WebhookEndpoint.objects.filter(pk=endpoint.pk).values_list("secret_sealed", flat=True)[
        0
    ]
    assert secret not in stored and secret.removeprefix("whsec_") not in stored
    event = AuditEvent.objects.get(action="webhook.endpoint_created")
    assert event.target_id == str(endpoint.pk)
    assert event.metadata["events"] == ["key.issued", "key.revoked"]
    assert secret not in json.dumps(event.metadata)


def test_a_member_may_not_add_an_endpoint(tenant, member, receiver, local_receivers_allowed):
    membership = Membership.objects.select_related("tenant", "user").get(user=member.user)
    with pytest.raises(PermissionDenied):
        services.endpoint_create(
            actor=Principal.of_membership(membership), url=receiver.url, events=["key.issued"]
        )
    assert not WebhookEndpoint.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="webhook.").exists()


@pytest.mark.parametrize(
    "events", [[], ["key.unknown"], ["api.request"]], ids=["none", "unknown", "not-offered"]
)
def test_bad_events_are_refused_with_no_row_and_no_event(
    owner_principal, receiver, local_receivers_allowed, events
):
    with pytest.raises(ValidationError) as raised:
        services.endpoint_create(actor=owner_principal, url=receiver.url, events=events)
    assert "events" in raised.value.message_dict
    assert not WebhookEndpoint.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="webhook.").exists()


# --- The outbox ------------------------------------------------------------------------------


def test_an_issued_key_writes_its_outbox_row_with_its_event(endpoint, owner):
    key, token = factories.make_api_key(owner, endpoint[0].tenant, name="deploy")
    event = AuditEvent.objects.get(action="key.issued", target_id=str(key.pk))
    delivery = WebhookDelivery.objects.get()
    assert delivery.audit_event_id == event.pk
    assert delivery.event_type == "key.issued"
    assert delivery.status == DeliveryStatus.PENDING
    body = json.loads(delivery.body)
    assert body["type"] == "key.issued"
    assert body["data"]["key"]["hint"] == key.hint
    assert body["data"]["key"]["name"] == "deploy"
    assert token not in delivery.body  # SECURITY: the hint, never the token


def test_a_rolled_back_change_leaves_no_outbox_row_and_sends_nothing(
    endpoint, owner, receiver, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError):
            with transaction.atomic():
                factories.make_api_key(owner, endpoint[0].tenant)
                raise RuntimeError("the change is rolled back")
    assert callbacks == []
    assert not WebhookDelivery.objects.exists()
    assert receiver.received == []
    assert mail.outbox == []


def test_events_not_subscribed_and_other_tenants_write_nothing(
    owner_principal, receiver, local_receivers_allowed, owner, other_tenant
):
    services.endpoint_create(actor=owner_principal, url=receiver.url, events=["key.revoked"])
    factories.make_api_key(owner, owner_principal.tenant)  # key.issued: not chosen
    other_owner = other_tenant.memberships.get(role="owner").user
    other_key, _ = factories.make_api_key(other_owner, other_tenant)
    key_services.key_revoke(
        actor=Principal.of_membership(other_tenant.memberships.get(role="owner")), key=other_key
    )
    assert not WebhookDelivery.objects.exists()


def test_a_disabled_endpoint_gets_no_new_deliveries(endpoint, owner):
    WebhookEndpoint.objects.update(disabled_at=timezone.now())
    factories.make_api_key(owner, endpoint[0].tenant)
    assert not WebhookDelivery.objects.exists()


# --- Delivery --------------------------------------------------------------------------------


def test_each_delivery_verifies_with_the_reference_library(
    endpoint, owner, receiver, django_capture_on_commit_callbacks
):
    ep, secret = endpoint
    with django_capture_on_commit_callbacks(execute=True):
        key, token = factories.make_api_key(owner, ep.tenant)
    with django_capture_on_commit_callbacks(execute=True):
        key_services.key_revoke(
            actor=Principal.of_membership(ep.tenant.memberships.get(role="owner")), key=key
        )
    assert len(receiver.received) == 2
    payloads = [r.verify(secret) for r in receiver.received]
    assert [p["type"] for p in payloads] == ["key.issued", "key.revoked"]
    assert all(p["data"]["key"]["hint"] == key.hint for p in payloads)
    assert all(token.encode() not in r.body for r in receiver.received)
    assert receiver.received[0].path == "/hooks/keyward"
    deliveries = WebhookDelivery.objects.order_by("id")
    assert [d.status for d in deliveries] == [DeliveryStatus.SUCCEEDED] * 2
    assert [r.headers["webhook-id"] for r in receiver.received] == [d.msg_id for d in deliveries]
    assert WebhookAttempt.objects.filter(status_code=204).count() == 2


def test_a_wrong_secret_or_a_changed_body_fails_verification(endpoint, owner, receiver):
    ep, secret = endpoint
    factories.make_api_key(owner, ep.tenant)
    _deliver_all()
    received = receiver.received[0]
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 43 + "=").verify(received.body, received.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(
            received.body.replace(b"key.issued", b"key.revoked"), received.headers
        )


def test_a_failed_attempt_is_retried_with_back_off_and_each_attempt_recorded(
    endpoint, owner, receiver
):
    ep, secret = endpoint
    receiver.statuses = [500, 503]
    factories.make_api_key(owner, ep.tenant)
    delivery = WebhookDelivery.objects.get()
    now = timezone.now()
    assert services.delivery_attempt(delivery_id=delivery.pk, now=now) == "retrying"
    delivery.refresh_from_db()
    first_wait = delivery.next_attempt_at - now
    assert timedelta(seconds=15) <= first_wait <= timedelta(seconds=30)
    # not yet due: nothing is sent
    assert services.delivery_attempt(delivery_id=delivery.pk, now=now) == "skipped"
    later = delivery.next_attempt_at
    assert services.delivery_attempt(delivery_id=delivery.pk, now=later) == "retrying"
    delivery.refresh_from_db()
    assert timedelta(seconds=30) <= delivery.next_attempt_at - later <= timedelta(seconds=60)
    assert services.delivery_attempt(delivery_id=delivery.pk, now=delivery.next_attempt_at) == (
        "succeeded"
    )
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED and delivery.attempt_count == 3
    assert [a.status_code for a in delivery.attempts.all()] == [500, 503, 204]
    # one message id on every attempt: receivers deduplicate on it
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1
    ep.refresh_from_db()
    assert ep.failing_since is None


def test_back_off_doubles_with_jitter_and_stops_at_its_cap():
    for attempt in range(1, 30):
        wait = services.backoff(attempt)
        whole = min(services.BACKOFF_BASE * 2 ** (attempt - 1), services.BACKOFF_CAP)
        assert whole / 2 <= wait <= whole
    assert len({services.backoff(3) for _ in range(20)}) > 1  # jitter


def test_an_endpoint_failing_for_a_day_is_disabled_and_its_owners_emailed(
    endpoint, owner, receiver, admin_member, django_capture_on_commit_callbacks
):
    ep, _ = endpoint
    receiver.statuses = [500] * 100
    factories.make_api_key(owner, ep.tenant)
    delivery = WebhookDelivery.objects.get()
    now = delivery.created_at
    outcomes = []
    with django_capture_on_commit_callbacks(execute=True):
        while (outcome := services.delivery_attempt(delivery_id=delivery.pk, now=now)) != "failed":
            outcomes.append(outcome)
            delivery.refresh_from_db()
            now = delivery.next_attempt_at
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert timedelta(hours=12) < now - delivery.created_at <= timedelta(hours=24)
    assert set(outcomes) == {"retrying"} and delivery.attempts.count() == len(outcomes) + 1
    ep.refresh_from_db()
    # failing since the first attempt, less than 24 h before the last: not yet disabled
    assert ep.is_enabled
    factories.make_api_key(owner, ep.tenant)
    second = WebhookDelivery.objects.pending().get()
    # still failing 30 h after the first failure: this delivery's last attempt disables it
    later = ep.failing_since + timedelta(hours=30)
    with django_capture_on_commit_callbacks(execute=True):
        outcome = services.delivery_attempt(delivery_id=second.pk, now=later)
    assert outcome == "failed"
    ep.refresh_from_db()
    assert not ep.is_enabled and "24 hours" in ep.disabled_reason
    event = AuditEvent.objects.get(action="webhook.endpoint_disabled")
    assert event.actor_kind == "system" and event.target_id == str(ep.pk)
    notice = [m for m in mail.outbox if "disabled" in m.subject]
    assert len(notice) == 1
    assert set(notice[0].to) == {owner.email, admin_member.user.email}
    # a disabled endpoint's pending deliveries are dropped, not sent
    sent = len(receiver.received)
    pending = WebhookDelivery.objects.create(
        endpoint=ep, msg_id="msg_pending", event_type="key.issued", body="{}"
    )
    assert services.delivery_attempt(delivery_id=pending.pk) == "dropped"
    assert len(receiver.received) == sent


def test_rotation_signs_with_both_secrets_for_a_day(endpoint, owner, receiver, owner_principal):
    ep, old_secret = endpoint
    new_secret = services.endpoint_rotate_secret(actor=owner_principal, endpoint=ep)
    assert new_secret != old_secret
    assert AuditEvent.objects.filter(action="webhook.secret_rotated").count() == 1
    factories.make_api_key(owner, ep.tenant)
    _deliver_all()
    received = receiver.received[-1]
    assert len(received.headers["webhook-signature"].split(" ")) == 2
    received.verify(new_secret)
    received.verify(old_secret)  # receivers that have not switched yet still verify
    # after the overlap, only the new secret signs
    ep.refresh_from_db()
    WebhookEndpoint.objects.filter(pk=ep.pk).update(
        previous_secret_until=timezone.now() - timedelta(seconds=1)
    )
    factories.make_api_key(owner, ep.tenant)
    _deliver_all()
    received = receiver.received[-1]
    assert len(received.headers["webhook-signature"].split(" ")) == 1
    received.verify(new_secret)
    with pytest.raises(WebhookVerificationError):
        received.verify(old_secret)


def test_the_test_event_reaches_the_endpoint_signed(endpoint, receiver, owner_principal):
    ep, secret = endpoint
    delivery = services.endpoint_send_test(actor=owner_principal, endpoint=ep)
    event = AuditEvent.objects.get(action="webhook.test_sent")
    assert delivery.audit_event_id == event.pk
    _deliver_all()
    payload = receiver.received[0].verify(secret)
    assert payload["type"] == "webhook.test"


def test_a_url_that_resolves_to_a_private_address_at_delivery_time_is_refused(
    endpoint, owner, receiver, monkeypatch, settings
):
    """SSRF through DNS rebinding: the URL was public when it was added; now it is not."""
    ep, _ = endpoint
    factories.make_api_key(owner, ep.tenant)
    settings.KEYWARD_WEBHOOKS_ALLOW_LOOPBACK = False  # the production default
    assert _deliver_all() == ["retrying"]
    attempt = WebhookAttempt.objects.get()
    assert attempt.status_code is None and attempt.error.startswith("refused:")
    assert receiver.received == []


def test_the_sweep_hands_due_deliveries_to_workers(endpoint, owner, receiver):
    ep, secret = endpoint
    factories.make_api_key(owner, ep.tenant)  # its on-commit enqueue never ran (a lost task)
    assert receiver.received == []
    call_command("webhooks_sweep", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert len(receiver.received) == 1
    receiver.received[0].verify(secret)
    assert WebhookDelivery.objects.get().status == DeliveryStatus.SUCCEEDED


def test_a_delivery_claimed_by_one_worker_is_skipped_by_another(endpoint, owner, postgresql):
    """Two workers never attempt one delivery at once: the claim is a row lock + lease."""
    factories.make_api_key(owner, endpoint[0].tenant)
    delivery = WebhookDelivery.objects.get()
    claimed = services._claim(delivery.pk, timezone.now())
    assert claimed is not None
    # the lease moved next_attempt_at ahead: a second worker finds nothing due
    assert services.delivery_attempt(delivery_id=delivery.pk) == "skipped"
    assert connection.vendor == "postgresql"


def test_the_outbox_costs_the_change_one_insert_and_no_key_lookup(endpoint, owner):
    """The key recorded as the event's target rides along the signal: the receiver does not
    read it again. (The database backend adds its task row's INSERT: test_worker.py.)"""
    ep, _ = endpoint
    key, _ = factories.make_api_key(owner, ep.tenant)
    principal = Principal.of_membership(ep.tenant.memberships.get(role="owner"))
    with CaptureQueriesContext(connection) as queries:
        key_services.key_revoke(actor=principal, key=key)
    sql = [q["sql"] for q in queries.captured_queries]
    after_event = sql[next(i for i, s in enumerate(sql) if "audit_auditevent" in s) :]
    assert sum('INSERT INTO "webhooks_webhookdelivery"' in s for s in after_event) == 1
    assert not any('FROM "keys_apikey"' in s for s in after_event)
    body = json.loads(WebhookDelivery.objects.get(event_type="key.revoked").body)
    assert body["data"]["key"]["owner"] == {"kind": "user", "id": owner.pk}
    assert body["data"]["key"]["revoked_at"] is not None


def test_with_the_database_backend_the_outbox_row_and_its_task_row_commit_together(
    endpoint, owner, settings, postgresql
):
    from django_tasks_db.models import DBTaskResult

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    ep, _ = endpoint
    with pytest.raises(RuntimeError), transaction.atomic():
        factories.make_api_key(owner, ep.tenant)
        assert WebhookDelivery.objects.count() == DBTaskResult.objects.count() == 1
        raise RuntimeError("rolled back")
    assert not WebhookDelivery.objects.exists() and not DBTaskResult.objects.exists()
    key, _ = factories.make_api_key(owner, ep.tenant)
    delivery = WebhookDelivery.objects.get()
    task = DBTaskResult.objects.get()
    assert task.task_path == "webhooks.tasks.deliver_webhook" and task.status == "READY"
    assert task.args_kwargs == {"args": [delivery.pk], "kwargs": {}}
