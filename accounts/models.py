"""People, tenants, memberships, service IDs, invitations, authenticators and backup codes."""

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

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


class KeyApproval(models.TextChoices):
    """Which new keys wait for a second person's approval before they work."""

    NONE = "none", "No key needs approval"
    SERVICE = "service", "Service keys"
    OUTSIDE_DEFAULT = "outside_default", "Keys with scopes outside the default set"
    ALL = "all", "Every key"


def default_expiry_warning_days() -> list[int]:
    return [30, 7, 1]


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
    require_phishing_resistant_mfa = models.BooleanField(
        default=False,
        help_text="Members must hold a passkey; a one-time code alone no longer grants sudo.",
    )
    max_token_lifetime_minutes = models.PositiveIntegerField(
        default=15,
        validators=[MinValueValidator(1), MaxValueValidator(15)],
        help_text="Lifetime of short-lived signed tokens exchanged for this tenant's keys.",
    )
    expiry_warning_days = models.JSONField(
        default=default_expiry_warning_days,
        blank=True,
        help_text="Days before a key expires on which its owner is warned, e.g. [30, 7, 1].",
    )
    key_approval = models.CharField(
        max_length=20, choices=KeyApproval.choices, default=KeyApproval.NONE
    )
    approval_default_scopes = models.JSONField(
        default=list,
        blank=True,
        help_text="Scopes a key may hold without approval when approval covers other scopes.",
    )
    approval_expire_days = models.PositiveIntegerField(
        default=7,
        validators=[MinValueValidator(1)],
        help_text="A key still pending after this many days is denied.",
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


class UserSession(models.Model):
    """A signed-in browser of a person, for the account security page: where from, on what,
    when last seen. ``stored_key`` is what ``django_session`` holds for it (a digest of the
    session key, ``common/sessions.py``), never the key; the session keeps this row's id."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="portal_sessions")
    stored_key = models.CharField(max_length=40, unique=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)

    audit_kind = "session"

    class Meta:
        indexes = [models.Index(fields=["user", "-last_seen_at"], name="user_session_seen")]

    def __str__(self) -> str:
        return f"session of {self.user_id} from {self.ip or '-'}"

    @property
    def label(self) -> str:
        return f"session {self.pk}"


# Second-factor devices live in accounts/devices.py; the app's models are all importable here.
from accounts.devices import (  # noqa: E402, F401
    BACKUP_CODE_ALPHABET,
    BACKUP_CODE_LENGTH,
    SEED_BYTES,
    AuthenticatorDevice,
    BackupCode,
    BackupCodeDevice,
    normalize_backup_code,
)
