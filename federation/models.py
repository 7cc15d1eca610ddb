"""Signing keys of Keyward's JWTs, JWTs revoked before they expire, and the workload trusts
(keyless CI) of service IDs."""

from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import ServiceID, Tenant, User

ONE_ACTIVE_SIGNING_KEY = "federation_one_active_signing_key"


class SigningKey(models.Model):
    """A key pair that signs Keyward's JWTs. The private key is stored sealed (AES-256-GCM,
    ``accounts.crypto``); the public key is published in the JWKS while it may still verify a
    token: while active, then for the longest lifetime of a token after it retired."""

    kid = models.CharField(max_length=64, unique=True)
    algorithm = models.CharField(max_length=10, default="ES256")
    public_jwk = models.JSONField()
    sealed_private_key = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    retired_at = models.DateTimeField(null=True, blank=True)

    audit_kind = "signing_key"

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["algorithm"], condition=Q(retired_at=None), name=ONE_ACTIVE_SIGNING_KEY
            )
        ]

    def __str__(self) -> str:
        return self.kid

    @property
    def label(self) -> str:
        return f"signing key {self.kid}"


class RevokedTokenQuerySet(models.QuerySet):
    def for_tenant(self, tenant) -> "RevokedTokenQuerySet":
        """Return the revoked tokens of ``tenant``."""
        return self.filter(tenant=tenant)

    def unexpired(self, now=None) -> "RevokedTokenQuerySet":
        """Return the revocations of tokens that have not expired yet."""
        return self.filter(expires_at__gt=now or timezone.now())


class RevokedToken(models.Model):
    """A JWT revoked (RFC 7009) before it expired: its ``jti`` until its ``exp``. The source of
    truth for introspection; Redis and each process keep copies for the API's hot path."""

    jti = models.CharField(max_length=64, unique=True)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    key_id = models.BigIntegerField(null=True, blank=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(default=timezone.now)

    objects = RevokedTokenQuerySet.as_manager()
    audit_kind = "token"

    def __str__(self) -> str:
        return self.jti

    @property
    def label(self) -> str:
        return f"jwt {self.jti}"


class WorkloadTrustQuerySet(models.QuerySet):
    def for_tenant(self, tenant) -> "WorkloadTrustQuerySet":
        """Return the trusts of ``tenant``'s service IDs."""
        return self.filter(tenant=tenant)

    def active(self) -> "WorkloadTrustQuerySet":
        """Return the trusts not removed, of active service IDs."""
        return self.filter(removed_at=None, service_id__is_active=True)


class WorkloadTrust(models.Model):
    """Keyless CI: ID tokens from ``issuer`` for ``audience`` whose ``sub`` matches
    ``subject_pattern`` (``*`` matches any run of characters) are exchanged for a JWT acting for
    ``service_id``, with at most ``scopes``."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    service_id = models.ForeignKey(ServiceID, on_delete=models.CASCADE, related_name="+")
    issuer = models.URLField(max_length=300)
    audience = models.CharField(max_length=300)
    subject_pattern = models.CharField(max_length=300)
    scopes = models.JSONField(default=list)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    removed_at = models.DateTimeField(null=True, blank=True)

    objects = WorkloadTrustQuerySet.as_manager()
    audit_kind = "workload_trust"

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        return f"{self.issuer} {self.subject_pattern}"[:200]
