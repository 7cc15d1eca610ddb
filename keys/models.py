"""API keys: personal access tokens and service keys, stored only as a SHA-256 digest."""

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

EXPIRING_SOON = timedelta(days=7)


class KeyStatus(models.TextChoices):
    """What ``ApiKey.status()`` answers: the values of the API's and the portal's ``status``."""

    ACTIVE = "active"
    EXPIRING = "expiring"  # in the last EXPIRING_SOON (or quarter) of its life
    ROTATED = "rotated"  # superseded by a rotation, still working in its grace period
    EXPIRED = "expired"
    REVOKED = "revoked"
    PENDING = "pending"  # waiting for a second person's approval (tenant policy)


class Approval(models.TextChoices):
    """Where a key stands with the tenant's approval policy ("" : it needed none)."""

    NOT_REQUIRED = "", "Not required"
    PENDING = "pending", "Pending approval"
    APPROVED = "approved", "Approved"
    DENIED = "denied", "Denied"


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
    # Set by keys.lookup.key_by_digest: the fingerprint of the state the key was found in.
    state_fingerprint = ""

    name = models.CharField(max_length=100)
    description = models.CharField(max_length=500, blank=True)
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
    # E-mail the owner when keys_maintain sees the key used from a network it never used before.
    alert_on_new_network = models.BooleanField(default=False)
    # Per-key request rate (e.g. 100/min), never above the tenant's; empty: the tenant's rate.
    rate = models.CharField(max_length=20, blank=True)
    # A successor issued with the grace "until the new key is first used": its first
    # authenticated request revokes its predecessor (key.rotation_completed), then this is False.
    completes_rotation_on_use = models.BooleanField(default=False)
    # The tenant's approval policy: a pending key answers 401 pending_approval until approved.
    approval = models.CharField(max_length=10, choices=Approval.choices, default="", blank=True)
    approval_decided_at = models.DateTimeField(null=True, blank=True)
    approval_decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approval_reason = models.CharField(max_length=200, blank=True)
    # Lead time in days (7, then 1) of the last expiry warning keys_maintain sent; set in the same
    # transaction as its key.expiry_warning_sent event, so each warning goes out once.
    expiry_warning_days = models.PositiveSmallIntegerField(null=True, blank=True, editable=False)

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
        indexes = [
            models.Index(fields=["tenant", "-created_at"], name="apikey_tenant_created"),
            models.Index(
                fields=["tenant", "created_at"],
                condition=Q(approval="pending"),
                name="apikey_pending_approval",
            ),
        ]

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
    def owner_description(self) -> str:
        """Return the owner's e-mail address, or "service ID <name>"."""
        return self.user.email if self.user_id else f"service ID {self.service_id.name}"

    @property
    def is_personal(self) -> bool:
        return self.user_id is not None

    def is_expired(self, now=None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())

    def inactivity_revocation_at(self, now=None):
        """Return when keys_maintain revokes this key for inactivity under its tenant's policy,
        or None (policy off, key no longer usable, or it expires first)."""
        days = self.tenant.revoke_unused_after_days
        now = now or timezone.now()
        if days is None or self.revoked_at is not None or self.is_expired(now):
            return None
        try:
            at = (self.last_used_at or self.created_at) + timedelta(days=days)
        except OverflowError:
            return None
        if self.expires_at is not None and self.expires_at <= at:
            return None
        return at

    def status(self, now=None) -> KeyStatus:
        """Return one of revoked, expired, rotated (in grace), expiring, active."""
        now = now or timezone.now()
        if self.revoked_at is not None:
            return KeyStatus.REVOKED
        if self.approval == Approval.PENDING:
            return KeyStatus.PENDING
        if self.is_expired(now):
            return KeyStatus.EXPIRED
        if self.rotated_at is not None:
            return KeyStatus.ROTATED
        if self.expires_at is not None:
            # A short-lived key is "expiring" only in the last quarter of its life, so a 7-day
            # key is not flagged from the moment it is issued.
            window = min(EXPIRING_SOON, (self.expires_at - self.created_at) / 4)
            if self.expires_at - now <= window:
                return KeyStatus.EXPIRING
        return KeyStatus.ACTIVE

    @property
    def is_pending(self) -> bool:
        return self.approval == Approval.PENDING

    def is_rotatable(self, now=None) -> bool:
        """Return whether the key may be rotated or narrowed: it is active or expiring."""
        return self.status(now) in (KeyStatus.ACTIVE, KeyStatus.EXPIRING)


# --- Usage, rolled up from the audit log by keys_maintain (never written on the request path) ---


class KeyUsageDay(models.Model):
    """Requests made with one key on one UTC day: every request, and how many were denied."""

    key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="usage_days")
    day = models.DateField()
    requests = models.PositiveIntegerField(default=0)
    denied = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["key", "day"], name="keyusageday_key_day_unique")
        ]

    def __str__(self) -> str:
        return f"{self.key_id} {self.day}: {self.requests}"


class KeyClientIP(models.Model):
    """A client address a key was presented from, with when it was first and last seen."""

    key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="client_ips")
    ip = models.GenericIPAddressField()
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    requests = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["key", "ip"], name="keyclientip_key_ip_unique")
        ]

    def __str__(self) -> str:
        return f"{self.key_id} {self.ip}"


class KeyNetwork(models.Model):
    """A network (/24 for IPv4, /64 for IPv6) a key was presented from: a new one is an event."""

    key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="networks")
    network = models.CharField(max_length=50)
    first_seen_at = models.DateTimeField()
    first_ip = models.GenericIPAddressField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["key", "network"], name="keynetwork_key_network_unique")
        ]

    def __str__(self) -> str:
        return f"{self.key_id} {self.network}"


class KeyScopeUse(models.Model):
    """A scope a key's requests needed and were granted, with when it was first and last used."""

    key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="scope_uses")
    scope = models.CharField(max_length=64)
    first_used_at = models.DateTimeField()
    last_used_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["key", "scope"], name="keyscopeuse_key_scope_unique")
        ]

    def __str__(self) -> str:
        return f"{self.key_id} {self.scope}"


class RollupState(models.Model):
    """How far a rollup has read the audit log: the last event id it has counted."""

    name = models.CharField(max_length=32, unique=True)
    last_event_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.name} @ {self.last_event_id}"


class WarningKind(models.TextChoices):
    EXPIRY = "expiry", "Expiry"
    UNUSED = "unused", "Revocation for inactivity"


class KeyWarning(models.Model):
    """A warning sent about a key: before its expiry (``days`` before, one of the tenant's
    ``expiry_warning_days``) or before its revocation for inactivity. Unique per key, kind and
    days, so each warning goes out once; an inactivity warning is sent again (``sent_at``
    moves) only after the key was used since."""

    key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="warnings")
    kind = models.CharField(max_length=10, choices=WarningKind.choices)
    days = models.PositiveSmallIntegerField()
    sent_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["key", "kind", "days"], name="keywarning_key_kind_days_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.key_id} {self.kind} {self.days}d"
