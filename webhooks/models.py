"""Webhook endpoints, the outbox of deliveries and each delivery's attempts."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class WebhookEndpointQuerySet(models.QuerySet):
    def for_tenant(self, tenant):
        return self.filter(tenant=tenant)

    def enabled(self):
        return self.filter(disabled_at=None)


class WebhookEndpoint(models.Model):
    """A URL of a tenant's that receives the events it subscribed to, signed with its secret.

    The secrets are sealed (``accounts.crypto``, AES-256-GCM bound to the endpoint's id): a
    database dump holds no usable signing secret.
    """

    tenant = models.ForeignKey(
        "accounts.Tenant", on_delete=models.CASCADE, related_name="webhook_endpoints"
    )
    url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True)
    events = models.JSONField(default=list)
    secret_sealed = models.TextField(editable=False)
    previous_secret_sealed = models.TextField(blank=True, editable=False)
    previous_secret_until = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=200, blank=True)
    # Set by the first failed attempt after a success; cleared by the next success.
    failing_since = models.DateTimeField(null=True, blank=True, editable=False)

    audit_kind = "webhook_endpoint"
    objects = WebhookEndpointQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["tenant", "disabled_at"], name="webhooks_endpoint_live")]

    def __str__(self) -> str:
        return self.url

    @property
    def label(self) -> str:
        return self.url[:200]

    @property
    def is_enabled(self) -> bool:
        return self.disabled_at is None


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Delivered"
    FAILED = "failed", "Given up"


class WebhookDeliveryQuerySet(models.QuerySet):
    def for_tenant(self, tenant):
        return self.filter(endpoint__tenant=tenant)

    def pending(self):
        return self.filter(status=DeliveryStatus.PENDING)

    def due(self, now):
        return self.pending().filter(next_attempt_at__lte=now)


class WebhookDelivery(models.Model):
    """One message to one endpoint: the outbox row, written in the transaction of the audit
    event it reports (``audit_event_id``), delivered at least once by ``webhooks.tasks``.

    ``msg_id`` is the ``webhook-id`` header, the same on every attempt: receivers deduplicate
    on it. ``body`` is the exact JSON that is signed and sent.
    """

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    msg_id = models.CharField(max_length=40, unique=True)
    event_type = models.CharField(max_length=64)
    # No foreign key: sealed audit events may be pruned, deliveries outlive them in the log.
    audit_event_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempt_count = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = WebhookDeliveryQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="webhooks_delivery_due",
                condition=Q(status="pending"),
            ),
            models.Index(fields=["endpoint", "-id"], name="webhooks_delivery_log"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status="pending", finished_at=None)
                | (~Q(status="pending") & Q(finished_at__isnull=False)),
                name="webhooks_delivery_finished_iff_done",
            )
        ]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.endpoint_id} ({self.status})"


class WebhookAttempt(models.Model):
    """One try at a delivery: when, the answer's status (None: no answer), how long, why."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempts")
    attempted_at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.status_code or self.error} at {self.attempted_at:%Y-%m-%d %H:%M:%S}"

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300
