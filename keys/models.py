"""API keys: personal access tokens and service keys, stored only as a SHA-256 digest."""

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

EXPIRING_SOON = timedelta(days=7)


class ApiKeyQuerySet(models.QuerySet):
    def for_tenant(self, tenant) -> "ApiKeyQuerySet":
        """Return the keys of ``tenant``."""
        return self.filter(tenant=tenant)

    def active(self) -> "ApiKeyQuerySet":
        """Return keys neither revoked nor superseded by a rotation."""
        return self.filter(revoked_at=None, rotated_at=None)

    def usable(self, now=None) -> "ApiKeyQuerySet":
        """Return keys that authenticate at ``now``: not revoked, not expired (grace included)."""
        now = now or timezone.now()
        return self.filter(revoked_at=None).filter(Q(expires_at=None) | Q(expires_at__gt=now))


class ApiKey(models.Model):
    """A named, scoped, expiring credential of exactly one owner: a user or a service ID."""

    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, related_name="keys")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="api_keys",
    )
    service_id = models.ForeignKey(
        "accounts.ServiceID", null=True, blank=True, on_delete=models.CASCADE, related_name="keys"
    )
    name = models.CharField(max_length=100)
    scopes = models.JSONField(default=list)
    digest = models.BinaryField(max_length=32, unique=True, editable=False)
    hint = models.CharField(max_length=24, editable=False)
    allowed_ips = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_reason = models.CharField(max_length=200, blank=True)
    rotated_from = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="rotated_to"
    )
    rotated_at = models.DateTimeField(null=True, blank=True)
    # Set by keys_maintain once it has recorded the key's expiry (key.expired), never before.
    expired_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)

    objects = ApiKeyQuerySet.as_manager()
    audit_kind = "key"

    class Meta:
        verbose_name = "API key"
        constraints = [
            models.CheckConstraint(
                condition=(Q(user__isnull=False) & Q(service_id__isnull=True))
                | (Q(user__isnull=True) & Q(service_id__isnull=False)),
                name="apikey_exactly_one_owner",
            ),
            models.UniqueConstraint(
                fields=["tenant", "user", "name"],
                condition=Q(revoked_at=None, rotated_at=None, user__isnull=False),
                name="apikey_user_name_unique_active",
            ),
            models.UniqueConstraint(
                fields=["service_id", "name"],
                condition=Q(revoked_at=None, rotated_at=None, service_id__isnull=False),
                name="apikey_service_name_unique_active",
            ),
        ]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="apikey_tenant_created")]

    def __str__(self) -> str:
        return f"{self.name} ({self.hint})"

    def save(self, *args, **kwargs):
        # SECURITY: revocation is irreversible (as in djangorestframework-api-key).
        if self.pk is not None and self.revoked_at is None:
            previous = ApiKey.objects.filter(pk=self.pk).values_list("revoked_at", flat=True)
            if previous and previous[0] is not None:
                raise ValueError("A revoked key cannot be restored.")
        super().save(*args, **kwargs)

    @property
    def label(self) -> str:
        return f"{self.name} ({self.hint})"

    @property
    def owner(self):
        return self.user if self.user_id else self.service_id

    @property
    def is_personal(self) -> bool:
        return self.user_id is not None

    def is_expired(self, now=None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())

    def status(self, now=None) -> str:
        """Return one of revoked, expired, rotated (in grace), expiring, active."""
        now = now or timezone.now()
        if self.revoked_at is not None:
            return "revoked"
        if self.is_expired(now):
            return "expired"
        if self.rotated_at is not None:
            return "rotated"
        if self.expires_at is not None:
            # A short-lived key is "expiring" only in the last quarter of its life, so a 7-day
            # key is not flagged from the moment it is issued.
            window = min(EXPIRING_SOON, (self.expires_at - self.created_at) / 4)
            if self.expires_at - now <= window:
                return "expiring"
        return "active"
