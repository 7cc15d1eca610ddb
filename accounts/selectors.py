"""Reads: tenant-scoped (the only code that turns a role into a filter), and a person's own."""

from datetime import timedelta

from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404
from django.utils import timezone
from django_otp_webauthn.models import WebAuthnCredential

from accounts import roles
from accounts.models import (
    AuthenticatorDevice,
    BackupCodeDevice,
    Invitation,
    Membership,
    ServiceID,
    User,
)
from accounts.principals import Principal
from audit.models import AuditEvent

NOT_ALLOWED = "Your role does not allow this."


def membership_get(user: User, slug: str) -> Membership:
    """Return the user's membership of the active tenant ``slug``, or raise Http404."""
    membership = (
        Membership.objects.select_related("tenant", "user")
        .filter(user=user, tenant__slug=slug, tenant__is_active=True)
        .first()
    )
    if membership is None:
        raise Http404("No such tenant.")
    return membership


def user_memberships(user: User) -> list[Membership]:
    """Return the user's memberships of active tenants, by tenant name."""
    return list(
        Membership.objects.select_related("tenant")
        .filter(user=user, tenant__is_active=True)
        .order_by("tenant__name")
    )


def _require(actor: Principal, action: str) -> None:
    if not roles.may(actor.role, action):
        raise PermissionDenied(NOT_ALLOWED)


def member_list(actor: Principal):
    """Return the tenant's memberships with their users."""
    _require(actor, roles.Action.MEMBERS_READ)
    return (
        Membership.objects.for_tenant(actor.tenant).select_related("user").order_by("user__email")
    )


def member_get(actor: Principal, pk: int) -> Membership:
    """Return one membership of the same tenant, or raise Http404."""
    _require(actor, roles.Action.MEMBERS_READ)
    try:
        return member_list(actor).get(pk=pk)
    except (Membership.DoesNotExist, ValueError, TypeError):
        raise Http404("No such member.") from None


def invitation_list(actor: Principal):
    """Return the tenant's pending invitations (members managers only)."""
    _require(actor, roles.Action.MEMBERS_MANAGE)
    return Invitation.objects.for_tenant(actor.tenant).pending().order_by("-created_at")


def invitation_get(actor: Principal, pk: int) -> Invitation:
    """Return a pending invitation of the tenant, or raise Http404."""
    try:
        return invitation_list(actor).get(pk=pk)
    except (Invitation.DoesNotExist, ValueError, TypeError):
        raise Http404("No such invitation.") from None


def service_id_list(actor: Principal):
    """Return the tenant's service IDs."""
    _require(actor, roles.Action.SERVICE_IDS_READ)
    return ServiceID.objects.for_tenant(actor.tenant).order_by("name")


def service_id_get(actor: Principal, pk: int) -> ServiceID:
    """Return one service ID of the tenant, or raise Http404."""
    try:
        return service_id_list(actor).get(pk=pk)
    except (ServiceID.DoesNotExist, ValueError, TypeError):
        raise Http404("No such service ID.") from None


def authenticator_list(user: User):
    """Return the user's confirmed authenticator apps, oldest first."""
    return AuthenticatorDevice.objects.filter(user=user, confirmed=True).order_by("created_at")


def authenticator_get(user: User, pk: int) -> AuthenticatorDevice:
    """Return one of the user's confirmed authenticator apps, or raise Http404."""
    device = authenticator_list(user).filter(pk=pk).first()
    if device is None:
        raise Http404("No such authenticator.")
    return device


def backup_codes_remaining(user: User) -> int:
    """Return how many of the user's backup codes are unused (0 if none were made)."""
    return backup_codes_left(user)[0]


def backup_codes_left(user: User) -> tuple[int, int]:
    """Return (unused, made) of the user's current backup codes: "7 of 10"."""
    device = BackupCodeDevice.objects.filter(user=user).first()
    if device is None:
        return 0, 0
    return device.remaining, device.codes.count()


SECURITY_LOG_DAYS = 90
SECURITY_LOG_LIMIT = 200


SECURITY_LOG_KEY_ACTIONS = ("key.issued", "key.rotated", "key.revoked", "key.updated")


def security_log(user: User, now=None):
    """Return the person's own security events of the last SECURITY_LOG_DAYS, newest first (at
    most SECURITY_LOG_LIMIT): sign-ins and failures, factor, password and session changes (the
    installation-wide events about them), and the keys they issued, rotated, edited or revoked
    in their tenants. Both halves are index scans (``audit_tenant_target``,
    ``audit_tenant_action_id``); requests made with keys are left out."""
    now = now or timezone.now()
    pk = str(user.pk)
    about_them = Q(tenant__isnull=True, target_kind="user", target_id=pk)
    their_keys = Q(
        tenant__in=Membership.objects.filter(user=user).values("tenant_id"),
        action__in=SECURITY_LOG_KEY_ACTIONS,
        actor_kind="user",
        actor_id=pk,
    )
    return (
        AuditEvent.objects.filter(
            about_them | their_keys, occurred_at__gte=now - timedelta(days=SECURITY_LOG_DAYS)
        )
        .select_related("tenant")
        .order_by("-occurred_at", "-id")[:SECURITY_LOG_LIMIT]
    )


def passkey_list(user: User):
    """Return the user's passkeys, oldest first."""
    return WebAuthnCredential.objects.filter(user=user, confirmed=True).order_by("created_at", "pk")


def passkey_get(user: User, pk: int) -> WebAuthnCredential:
    """Return one of the user's passkeys, or raise Http404 (also for another person's)."""
    device = passkey_list(user).filter(pk=pk).first()
    if device is None:
        raise Http404("No such passkey.")
    return device


def members_without_passkey(actor: Principal) -> int:
    """Return how many active members of the actor's tenant hold no passkey."""
    with_passkey = WebAuthnCredential.objects.filter(confirmed=True).values("user_id")
    return (
        Membership.objects.for_tenant(actor.tenant)
        .filter(user__is_active=True)
        .exclude(user_id__in=with_passkey)
        .count()
    )
