"""People, tenants, memberships, service IDs, invitations, authenticators and backup codes."""

import secrets
import time
from base64 import b32encode
from urllib.parse import quote, urlencode

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.validators import MinValueValidator
from django.db import models, transaction
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac
from django_otp.models import Device, ThrottlingMixin, TimestampMixin
from django_otp.oath import TOTP

from accounts import crypto
from accounts.roles import Role


class TenantOwnedQuerySet(models.QuerySet):
    def for_tenant(self, tenant: "Tenant") -> "TenantOwnedQuerySet":
        """Return the rows that belong to ``tenant``."""
        return self.filter(tenant=tenant)


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra) -> "User":
        if not email:
            raise ValueError("An e-mail address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)  # None gives an unusable password
        user.full_clean(exclude=["password"])
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra) -> "User":
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra) -> "User":
        extra.update(is_staff=True, is_superuser=True)
        return self._create_user(email, password, **extra)

    def get_by_natural_key(self, email: str) -> "User":
        return self.get(email__iexact=email)


class User(AbstractBaseUser, PermissionsMixin):
    """A person. The e-mail address is the login; ``is_staff`` makes an operator."""

    email = models.EmailField("e-mail address", unique=True)
    full_name = models.CharField(max_length=150, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField("operator", default=False)
    date_joined = models.DateTimeField(default=timezone.now)
    # Account-wide failure counter across the password and every second-factor device.
    failed_auth_count = models.PositiveIntegerField(default=0)
    last_failed_auth_at = models.DateTimeField(null=True, blank=True)
    locked_at = models.DateTimeField(null=True, blank=True)

    objects = UserManager()
    audit_kind = "user"

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        constraints = [models.UniqueConstraint(Lower("email"), name="user_email_ci_unique")]

    def __str__(self) -> str:
        return self.email

    def get_full_name(self) -> str:
        return self.full_name or self.email

    def get_short_name(self) -> str:
        return self.full_name.split(" ")[0] if self.full_name else self.email

    @property
    def label(self) -> str:
        return self.email


class LeakPolicy(models.TextChoices):
    REVOKE = "revoke", "Revoke the key"
    NOTIFY = "notify", "Notify only"
    REVOKE_AND_NOTIFY = "revoke_and_notify", "Revoke and notify"


class Tenant(models.Model):
    """An organisation, with its key policy."""

    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=50, unique=True)
    max_key_lifetime_days = models.PositiveIntegerField(
        default=365, validators=[MinValueValidator(1)]
    )
    allow_non_expiring_keys = models.BooleanField(default=False)
    default_key_lifetime_days = models.PositiveIntegerField(
        default=30, validators=[MinValueValidator(1)]
    )
    revoke_unused_after_days = models.PositiveIntegerField(
        null=True, blank=True, default=365, help_text="Empty: never revoke unused keys."
    )
    leak_policy = models.CharField(
        max_length=20, choices=LeakPolicy.choices, default=LeakPolicy.REVOKE
    )
    allowed_ips = models.JSONField(
        default=list, blank=True, help_text="CIDR ranges every key of this tenant must call from."
    )
    key_rate = models.CharField(
        max_length=20, blank=True, help_text="Per-key request rate, e.g. 600/min (empty: default)."
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    audit_kind = "tenant"

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(
                    default_key_lifetime_days__lte=models.F("max_key_lifetime_days")
                ),
                name="tenant_default_lifetime_within_max",
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def label(self) -> str:
        return self.slug


class Membership(models.Model):
    """A user's role in a tenant."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(default=timezone.now)

    objects = TenantOwnedQuerySet.as_manager()
    audit_kind = "membership"

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "tenant"], name="membership_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.tenant} ({self.role})"

    @property
    def label(self) -> str:
        return f"{self.user.email}@{self.tenant.slug}"


SERVICE_ID_NAME_CONSTRAINT = "service_id_name_ci_unique"


class ServiceID(models.Model):
    """A functional identity of a tenant: owns service keys, outlives people, never logs in."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="service_ids")
    name = models.SlugField(max_length=64, help_text="Letters, digits, - and _.")
    description = models.CharField(max_length=300, blank=True)
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = TenantOwnedQuerySet.as_manager()
    audit_kind = "service_id"

    class Meta:
        verbose_name = "service ID"
        constraints = [
            # "Deploy-Bot" and "deploy-bot" would read as one identity in the audit log.
            models.UniqueConstraint(
                Lower("name"),
                "tenant",
                name=SERVICE_ID_NAME_CONSTRAINT,
                violation_error_message="A service ID with this name already exists here.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.tenant.slug})"

    @property
    def label(self) -> str:
        return f"service:{self.name}"

    # A ServiceID acts as a DRF principal: it is authenticated, never anonymous, never staff.
    is_authenticated = True
    is_anonymous = False
    is_staff = False


class InvitationQuerySet(TenantOwnedQuerySet):
    def pending(self, now=None) -> "InvitationQuerySet":
        """Return invitations neither accepted, revoked nor expired."""
        now = now or timezone.now()
        return self.filter(accepted_at=None, revoked_at=None, expires_at__gt=now)


class Invitation(models.Model):
    """A one-time invitation to join a tenant; the link's secret is stored only as a digest."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    digest = models.BinaryField(max_length=32, unique=True, editable=False)
    invited_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = InvitationQuerySet.as_manager()
    audit_kind = "invitation"

    def __str__(self) -> str:
        return f"{self.email} → {self.tenant.slug}"

    @property
    def label(self) -> str:
        return self.email


SEED_BYTES = 20  # as django-otp's TOTPDevice (160 bits, RFC 4226's recommendation)


class AuthenticatorDevice(TimestampMixin, ThrottlingMixin, Device):
    """A TOTP authenticator app whose seed is stored encrypted (``accounts/crypto.py``).

    Same behaviour as django-otp's ``TOTPDevice`` (step 30 s, t0 0, 6 digits, tolerance 1, drift
    tracking, a code accepted once, throttling, ``config_url``), except that the seed column
    holds only a sealed value, bound to the device's user.
    """

    sealed_seed = models.TextField(editable=False)
    step = models.PositiveSmallIntegerField(default=30, help_text="The time step in seconds.")
    t0 = models.BigIntegerField(
        default=0, help_text="The Unix time at which to begin counting steps."
    )
    digits = models.PositiveSmallIntegerField(
        choices=[(6, 6), (8, 8)], default=6, help_text="The number of digits in a code."
    )
    tolerance = models.PositiveSmallIntegerField(
        default=1, help_text="The number of time steps in the past or future to allow."
    )
    drift = models.SmallIntegerField(
        default=0,
        help_text="The number of time steps the prover is known to deviate from our clock.",
    )
    last_t = models.BigIntegerField(
        default=-1,
        help_text="The time step of the latest verified code; the next must be at a later one.",
    )

    class Meta(Device.Meta):
        verbose_name = "authenticator app"

    def _seal_context(self) -> bytes:
        if self.user_id is None:
            raise ValueError("an authenticator's seed is bound to its user: set the user first")
        return f"keyward.totp-seed:user:{self.user_id}".encode()

    def set_seed(self, seed: bytes) -> None:
        """Replace the seed (stored sealed); the caller saves."""
        self.sealed_seed = crypto.seal(seed, context=self._seal_context())

    @property
    def bin_key(self) -> bytes:
        """The seed, unsealed (never stored in clear)."""
        return crypto.unseal(self.sealed_seed, context=self._seal_context())

    def save(self, *args, **kwargs):
        if not self.sealed_seed:
            self.set_seed(secrets.token_bytes(SEED_BYTES))
        super().save(*args, **kwargs)

    # The next three: django-otp's TOTPDevice (django_otp/plugins/otp_totp/models.py, 1.7).

    def verify_token(self, token) -> bool:
        sync = getattr(settings, "OTP_TOTP_SYNC", True)
        verify_allowed, _ = self.verify_is_allowed()
        if not verify_allowed:
            return False
        try:
            token = int(token)
        except Exception:
            verified = False
        else:
            totp = TOTP(self.bin_key, self.step, self.t0, self.digits, self.drift)
            totp.time = time.time()
            verified = totp.verify(token, self.tolerance, self.last_t + 1)
            if verified:
                self.last_t = totp.t()
                if sync:
                    self.drift = totp.drift
                self.throttle_reset(commit=False)
                self.set_last_used_timestamp(commit=False)
                self.save()
        if not verified:
            self.throttle_increment(commit=True)
        return verified

    def get_throttle_factor(self) -> int:
        return getattr(settings, "OTP_TOTP_THROTTLE_FACTOR", 1)

    @property
    def config_url(self) -> str:
        """The otpauth:// URL for the authenticator app (Key Uri Format), issuer OTP_TOTP_ISSUER."""
        label = str(self.user.get_username())
        params = urlencode(
            {
                "secret": b32encode(self.bin_key),
                "algorithm": "SHA1",
                "digits": self.digits,
                "period": self.step,
            }
        )
        issuer = self._read_str_from_settings("OTP_TOTP_ISSUER")
        if issuer:
            issuer = issuer.replace(":", "")
            label = f"{issuer}:{label}"
            params += f"&issuer={quote(issuer)}"  # RFC 3986, not quote_plus
        image = self._read_str_from_settings("OTP_TOTP_IMAGE")
        if image:
            params += "&image={}".format(quote(image, safe=":/"))
        return f"otpauth://totp/{quote(label)}?{params}"

    def _read_str_from_settings(self, key: str) -> str | None:
        value = getattr(settings, key, None)
        if callable(value):
            value = value(self)
        return value if isinstance(value, str) and value != "" else None


# 10 characters from a 32-letter alphabet without look-alikes: 50 bits, typed as xxxxx-xxxxx.
BACKUP_CODE_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # 32 symbols: no l, o, 0, 1
BACKUP_CODE_LENGTH = 10


def normalize_backup_code(code: str) -> str:
    return "".join(ch for ch in code.lower() if ch in BACKUP_CODE_ALPHABET)


class BackupCodeDevice(TimestampMixin, ThrottlingMixin, Device):
    """Single-use backup codes, stored only as keyed digests (unlike django-otp's static ones)."""

    def get_throttle_factor(self) -> int:
        return 1

    def digest_of(self, code: str) -> str:
        """Return the stored form of ``code``."""
        # SECURITY: a keyed digest (HMAC with the SECRET_KEY), so a stolen table cannot be
        # brute-forced offline; the user id binds a code to its owner.
        return salted_hmac(
            "keyward.backup-code",
            f"{self.user_id}:{normalize_backup_code(code)}",
            algorithm="sha256",
        ).hexdigest()

    def use_code(self, code: str) -> bool:
        """Consume ``code`` if it is one of this device's unused codes; return whether it was."""
        if len(normalize_backup_code(code)) != BACKUP_CODE_LENGTH:
            return False
        digest = self.digest_of(code)
        with transaction.atomic():
            match = (
                BackupCode.objects.select_for_update()
                .filter(device=self, used_at=None, digest=digest)
                .first()
            )
            if match is None or not constant_time_compare(match.digest, digest):
                return False
            match.used_at = timezone.now()
            match.save(update_fields=["used_at"])
        return True

    def verify_token(self, token) -> bool:
        verify_allowed, _ = self.verify_is_allowed()
        if not verify_allowed:
            return False
        used = self.use_code(str(token))
        if used:
            self.throttle_reset(commit=False)
            self.set_last_used_timestamp(commit=False)
            self.save()
        else:
            self.throttle_increment()
        return used

    @property
    def remaining(self) -> int:
        return self.codes.filter(used_at=None).count()


class BackupCode(models.Model):
    device = models.ForeignKey(BackupCodeDevice, on_delete=models.CASCADE, related_name="codes")
    digest = models.CharField(max_length=64)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["device", "digest"], name="backup_code_unique"),
        ]

    def __str__(self) -> str:
        return f"backup code of {self.device.user_id} ({'used' if self.used_at else 'unused'})"
