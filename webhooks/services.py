"""Webhook writes: endpoints (owners and admins, audited), the outbox rows written with their
audit events, and each delivery attempt."""

import logging
import random
import time
import uuid
from datetime import datetime, timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.tasks import default_task_backend
from django.urls import reverse
from django.utils import timezone

import audit
from accounts import crypto, roles
from accounts.principals import Principal
from accounts.services import absolute_url
from audit.models import AuditEvent
from audit.services import Actor
from common import mail as common_mail
from common.request import RequestContext
from keys import notifications
from webhooks import conf, network, payloads, signing
from webhooks.events import EVENTS, FROM_AUDIT, TEST_EVENT
from webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint

logger = logging.getLogger("keyward.webhooks")

NOT_ALLOWED = "Only the tenant's owners and admins manage webhooks."
NO_EVENTS = "Choose at least one event."
UNKNOWN_EVENT = "Unknown event: %(event)s."
MAX_ENDPOINTS = 20
TOO_MANY = f"A tenant has at most {MAX_ENDPOINTS} webhook endpoints."
ENDPOINT_DISABLED = "endpoint disabled"
DISABLED_REASON = "Deliveries failed for %(hours)s hours."

# Back-off: 30 s, 1 min, 2 min, … doubling up to 6 h, each drawn in [half, whole] (jitter), until
# the delivery is KEYWARD_WEBHOOKS_RETRY_HOURS old.
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=6)
# An attempt in progress holds its delivery this long; a worker that dies mid-attempt leaves
# it due again after that (``deliveries_enqueue_due``).
LEASE = timedelta(minutes=2)


def _now() -> datetime:
    return timezone.now()


def _require_manager(actor: Principal) -> None:
    if not roles.may(actor.role, roles.Action.KEYS_MANAGE_ALL):
        raise PermissionDenied(NOT_ALLOWED)


def _seal(endpoint_pk: int, secret: str) -> str:
    return crypto.seal(secret.encode(), context=f"webhook-endpoint:{endpoint_pk}".encode())


def _unseal(endpoint_pk: int, sealed: str) -> str:
    return crypto.unseal(sealed, context=f"webhook-endpoint:{endpoint_pk}".encode()).decode()


def _clean(*, url: str, events: list[str], description: str) -> list[str]:
    errors: dict[str, list[str]] = {}
    try:
        network.validate(url)
    except network.Refused as exc:
        errors["url"] = [str(exc)]
    chosen = sorted(set(events))
    unknown = [e for e in chosen if e not in EVENTS]
    if unknown:
        errors["events"] = [UNKNOWN_EVENT % {"event": unknown[0]}]
    elif not chosen:
        errors["events"] = [NO_EVENTS]
    if len(description) > 200:
        errors["description"] = ["At most 200 characters."]
    if errors:
        raise ValidationError(errors)
    return chosen


@transaction.atomic
def endpoint_create(
    *,
    actor: Principal,
    url: str,
    events: list[str],
    description: str = "",
    context: RequestContext | None = None,
) -> tuple[WebhookEndpoint, str]:
    """Add an endpoint to the actor's tenant; return it with its signing secret (shown once).

    Raises ``PermissionDenied`` unless the actor is an owner or admin, ``ValidationError`` for
    a URL that is not https or resolves to a non-public address, or unknown events. Records
    ``webhook.endpoint_created`` in the same transaction.
    """
    _require_manager(actor)
    chosen = _clean(url=url, events=events, description=description)
    if WebhookEndpoint.objects.for_tenant(actor.tenant).count() >= MAX_ENDPOINTS:
        raise ValidationError(TOO_MANY)
    endpoint = WebhookEndpoint(
        tenant=actor.tenant,
        url=url,
        events=chosen,
        description=description,
        created_by=actor.user,
        secret_sealed="-",
    )
    endpoint.full_clean(exclude=["secret_sealed"])
    endpoint.save()
    secret = signing.new_secret()
    endpoint.secret_sealed = _seal(endpoint.pk, secret)
    endpoint.save(update_fields=["secret_sealed"])
    audit.record(
        "webhook.endpoint_created",
        actor=actor,
        tenant=actor.tenant,
        target=endpoint,
        context=context,
        metadata={"url": url, "events": chosen},
    )
    return endpoint, secret


@transaction.atomic
def endpoint_delete(
    *, actor: Principal, endpoint: WebhookEndpoint, context: RequestContext | None = None
) -> None:
    """Delete an endpoint with its deliveries; records ``webhook.endpoint_deleted``."""
    _require_manager(actor)
    locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk, tenant=actor.tenant)
    audit.record(
        "webhook.endpoint_deleted",
        actor=actor,
        tenant=actor.tenant,
        target=locked,
        context=context,
        metadata={"url": locked.url},
    )
    locked.delete()


@transaction.atomic
def endpoint_rotate_secret(
    *,
    actor: Principal,
    endpoint: WebhookEndpoint,
    context: RequestContext | None = None,
    now: datetime | None = None,
) -> str:
    """Give the endpoint a new secret and return it (shown once); the previous one also signs
    for KEYWARD_WEBHOOKS_SECRET_OVERLAP_HOURS. Records ``webhook.secret_rotated``."""
    _require_manager(actor)
    now = now or _now()
    locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk, tenant=actor.tenant)
    secret = signing.new_secret()
    overlap = timedelta(hours=conf.settings.WEBHOOKS_SECRET_OVERLAP_HOURS)
    locked.previous_secret_sealed = locked.secret_sealed
    locked.previous_secret_until = now + overlap
    locked.secret_sealed = _seal(locked.pk, secret)
    locked.save(update_fields=["previous_secret_sealed", "previous_secret_until", "secret_sealed"])
    audit.record(
        "webhook.secret_rotated",
        actor=actor,
        tenant=actor.tenant,
        target=locked,
        context=context,
        metadata={"previous_signs_until": locked.previous_secret_until.isoformat()},
    )
    return secret


@transaction.atomic
def endpoint_enable(
    *, actor: Principal, endpoint: WebhookEndpoint, context: RequestContext | None = None
) -> WebhookEndpoint:
    """Enable a disabled endpoint again; records ``webhook.endpoint_enabled``."""
    _require_manager(actor)
    locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk, tenant=actor.tenant)
    if locked.disabled_at is not None:
        locked.disabled_at, locked.disabled_reason, locked.failing_since = None, "", None
        locked.save(update_fields=["disabled_at", "disabled_reason", "failing_since"])
        audit.record(
            "webhook.endpoint_enabled",
            actor=actor,
            tenant=actor.tenant,
            target=locked,
            context=context,
        )
    return locked


@transaction.atomic
def endpoint_send_test(
    *, actor: Principal, endpoint: WebhookEndpoint, context: RequestContext | None = None
) -> WebhookDelivery:
    """Queue a ``webhook.test`` delivery to the endpoint (even a disabled one); records
    ``webhook.test_sent`` with the delivery in the same transaction."""
    _require_manager(actor)
    event = audit.record(
        "webhook.test_sent",
        actor=actor,
        tenant=actor.tenant,
        target=endpoint,
        context=context,
    )
    data = {
        "event_id": event.pk,
        "tenant": actor.tenant.slug,
        "actor": {"kind": event.actor_kind, "label": event.actor_label},
        "details": {"message": "A test event sent from the Keyward portal."},
    }
    return _outbox(endpoint, TEST_EVENT, event, data)


def _outbox(
    endpoint: WebhookEndpoint, event_type: str, event: AuditEvent, data: dict
) -> WebhookDelivery:
    delivery = WebhookDelivery(
        endpoint=endpoint,
        msg_id=f"msg_{uuid.uuid4().hex}",
        event_type=event_type,
        audit_event_id=event.pk,
        body=payloads.body(event_type, event.occurred_at, data),
        next_attempt_at=event.occurred_at,
    )
    if common_mail.tasks_in_database() and connection.vendor == "postgresql":
        _insert_with_task(delivery)
    else:
        delivery.save(force_insert=True)
        pk = delivery.pk
        transaction.on_commit(lambda: _enqueue(pk), robust=True)
    return delivery


def _insert_with_task(delivery: WebhookDelivery) -> None:
    """INSERT the outbox row and its delivery task's row (django-tasks-db) in one statement:
    they commit together with the audit event, at one round trip for the pair (the request
    pays for the outbox, not for a second INSERT)."""
    from django.tasks import task_backends
    from django.tasks.signals import task_enqueued
    from django_tasks_db.models import DBTaskResult, get_date_max

    from webhooks import tasks

    backend = task_backends["default"]
    task = tasks.deliver_webhook
    backend.validate_task(task)
    row = DBTaskResult(
        id=backend._get_id(),
        args_kwargs={},
        priority=task.priority,
        task_path=task.module_path,
        queue_name=task.queue_name,
        run_after=get_date_max(),
        backend_name=backend.alias,
        enqueued_at=timezone.now(),
    )
    d_fields = [f for f in WebhookDelivery._meta.concrete_fields if not f.primary_key]
    t_fields = [f for f in DBTaskResult._meta.concrete_fields if f.attname != "args_kwargs"]
    ops = connection.ops

    def prepared(obj, fields):
        return [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields]

    # Names from the models' metadata, every value a parameter.
    delivery_table = ops.quote_name(WebhookDelivery._meta.db_table)
    sql = (
        f"WITH d AS (INSERT INTO {delivery_table} "  # noqa: S608
        f"({', '.join(ops.quote_name(f.column) for f in d_fields)}) "
        f"VALUES ({', '.join(['%s'] * len(d_fields))}) RETURNING id) "
        f"INSERT INTO {ops.quote_name(DBTaskResult._meta.db_table)} "
        f"({', '.join(ops.quote_name(f.column) for f in t_fields)}, args_kwargs) "
        f"SELECT {', '.join(['%s'] * len(t_fields))}, "
        "jsonb_build_object('args', jsonb_build_array(d.id), 'kwargs', '{}'::jsonb) FROM d "
        "RETURNING (args_kwargs->'args'->>0)::bigint"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, prepared(delivery, d_fields) + prepared(row, t_fields))
        delivery.pk = cursor.fetchone()[0]
    delivery._state.adding = False
    row.args_kwargs = {"args": [delivery.pk], "kwargs": {}}
    row._state.adding = False
    task_enqueued.send(type(backend), task_result=row.task_result)


def deliveries_for_event(*, event: AuditEvent, target=None) -> list[WebhookDelivery]:
    """Write one outbox row per endpoint of the event's tenant subscribed to it, in the
    caller's transaction (the event's); each is handed to a worker once that commits."""
    event_type = FROM_AUDIT.get(event.action)
    if event_type is None or event.tenant_id is None or event.outcome != "success":
        return []
    endpoints = [
        endpoint
        for endpoint in WebhookEndpoint.objects.for_tenant(event.tenant_id).enabled()
        if event_type in endpoint.events
    ]
    if not endpoints:
        return []
    data = payloads.event_data(event, target)
    return [_outbox(endpoint, event_type, event, data) for endpoint in endpoints]


# --- Delivery -------------------------------------------------------------------------------


def _enqueue(pk: int, when: datetime | None = None) -> None:
    from webhooks import tasks

    if when is not None and default_task_backend.supports_defer:
        tasks.deliver_webhook.using(run_after=when).enqueue(pk)
    elif when is None:
        tasks.deliver_webhook.enqueue(pk)
    # else: a backend that cannot defer (immediate): ``webhooks_sweep`` retries when due.


def backoff(attempt: int) -> timedelta:
    """Return the wait after failed attempt number ``attempt`` (1-based), with jitter."""
    whole = min(BACKOFF_BASE * 2 ** min(attempt - 1, 20), BACKOFF_CAP)
    return whole * random.uniform(0.5, 1.0)  # noqa: S311 (jitter, not a secret)


def _secrets(endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    current = [_unseal(endpoint.pk, endpoint.secret_sealed)]
    if endpoint.previous_secret_sealed and endpoint.previous_secret_until is not None:
        if endpoint.previous_secret_until > now:
            current.append(_unseal(endpoint.pk, endpoint.previous_secret_sealed))
    return current


def _claim(pk: int, now: datetime) -> WebhookDelivery | None:
    with transaction.atomic():
        delivery = (
            # The claim locks the delivery row only (of=self); locking its endpoint
            # too would make concurrent workers skip each other's deliveries.
            WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("endpoint", "endpoint__tenant")
            .filter(pk=pk)
            .due(now)
            .first()
        )
        if delivery is None:
            return None
        delivery.attempt_count += 1
        delivery.next_attempt_at = now + LEASE
        delivery.save(update_fields=["attempt_count", "next_attempt_at"])
        return delivery


def delivery_attempt(*, delivery_id: int, now: datetime | None = None) -> str:
    """Try one delivery if it is due and no one else is on it; return what happened.

    At least once: the attempt is claimed (a lease), made outside any transaction, then its
    outcome is recorded (``WebhookAttempt``). A failure is retried with back-off and jitter
    until the delivery is KEYWARD_WEBHOOKS_RETRY_HOURS old; an endpoint that failed every
    attempt for that long is disabled and the tenant's owners and admins are e-mailed.
    """
    now = now or _now()
    delivery = _claim(delivery_id, now)
    if delivery is None:
        return "skipped"
    endpoint = delivery.endpoint
    if not endpoint.is_enabled and delivery.event_type != TEST_EVENT:
        _finish(delivery, now, WebhookAttempt(error=ENDPOINT_DISABLED), succeeded=False)
        return "dropped"
    attempt = WebhookAttempt(delivery=delivery, attempted_at=now)
    started = time.monotonic()
    try:
        headers = signing.headers(
            _secrets(endpoint, now), delivery.msg_id, int(now.timestamp()), delivery.body
        )
        headers["content-type"] = "application/json"
        headers["user-agent"] = "Keyward-Webhooks/1"
        attempt.status_code = network.post(
            endpoint.url,
            delivery.body.encode(),
            headers,
            timeout=conf.settings.WEBHOOKS_TIMEOUT,
        )
    except network.Refused as exc:
        attempt.error = f"refused: {exc}"[:200]
    except Exception as exc:  # noqa: BLE001 (any transport failure is a failed attempt)
        attempt.error = f"{type(exc).__name__}: {exc}"[:200]
    attempt.duration_ms = int((time.monotonic() - started) * 1000)
    if attempt.succeeded:
        _finish(delivery, now, attempt, succeeded=True)
        return "succeeded"
    wait = backoff(delivery.attempt_count)
    give_up_at = delivery.created_at + timedelta(hours=conf.settings.WEBHOOKS_RETRY_HOURS)
    if now + wait > give_up_at or delivery.event_type == TEST_EVENT:
        _finish(delivery, now, attempt, succeeded=False)
        return "failed"
    _retry(delivery, now, attempt, now + wait)
    return "retrying"


@transaction.atomic
def _retry(delivery: WebhookDelivery, now: datetime, attempt: WebhookAttempt, when) -> None:
    attempt.delivery = delivery
    attempt.save()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=when)
    WebhookEndpoint.objects.filter(pk=delivery.endpoint_id, failing_since=None).update(
        failing_since=now
    )
    pk = delivery.pk
    transaction.on_commit(lambda: _enqueue(pk, when), robust=True)


@transaction.atomic
def _finish(delivery: WebhookDelivery, now: datetime, attempt: WebhookAttempt, *, succeeded):
    attempt.delivery = delivery
    attempt.save()
    status = DeliveryStatus.SUCCEEDED if succeeded else DeliveryStatus.FAILED
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status=status, finished_at=now)
    if delivery.event_type == TEST_EVENT or attempt.error == ENDPOINT_DISABLED:
        return
    if succeeded:
        WebhookEndpoint.objects.filter(pk=delivery.endpoint_id).exclude(failing_since=None).update(
            failing_since=None
        )
        return
    _disable_if_failing(delivery.endpoint_id, now)


def _disable_if_failing(endpoint_pk: int, now: datetime) -> None:
    hours = conf.settings.WEBHOOKS_RETRY_HOURS
    endpoint = (
        WebhookEndpoint.objects.select_for_update(of=("self",))
        .select_related("tenant")
        .filter(pk=endpoint_pk, disabled_at=None, failing_since__lte=now - timedelta(hours=hours))
        .first()
    )
    if endpoint is None:
        return
    endpoint.disabled_at = now
    endpoint.disabled_reason = DISABLED_REASON % {"hours": hours}
    endpoint.save(update_fields=["disabled_at", "disabled_reason"])
    audit.record(
        "webhook.endpoint_disabled",
        actor=Actor.system("webhooks"),
        tenant=endpoint.tenant,
        target=endpoint,
        metadata={"reason": endpoint.disabled_reason},
    )
    notifications.send_on_commit(
        f"Keyward: webhook endpoint {endpoint.url[:80]} disabled",
        f"Tenant: {endpoint.tenant.name} ({endpoint.tenant.slug})\n"
        f"Endpoint: {endpoint.url}\n\n"
        f"Every delivery to this endpoint failed for {hours} hours, so Keyward stopped sending\n"
        f"to it. Fix the receiver, then enable the endpoint again in the portal:\n\n"
        f"{absolute_url(reverse('webhooks:detail', args=[endpoint.tenant.slug, endpoint.pk]))}\n",
        notifications.tenant_key_managers(endpoint.tenant),
    )


def deliveries_enqueue_due(*, now: datetime | None = None, limit: int = 1000) -> int:
    """Hand every due pending delivery to a worker (a retry a backend could not defer, or an
    attempt whose worker died); return how many. Safe to run anywhere, any time: an attempt
    claims its delivery first."""
    now = now or _now()
    pks = list(
        WebhookDelivery.objects.due(now)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    for pk in pks:
        _enqueue(pk)
    return len(pks)
