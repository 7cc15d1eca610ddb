"""Writes for members: invitations, roles, removal; who may grant which role."""

import hashlib
import secrets
from datetime import timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

import audit
from accounts import roles
from accounts.models import (
    Invitation,
    Membership,
    Tenant,
    User,
)
from accounts.principals import Principal
from accounts.services.users import absolute_url
from common import mail
from common.request import RequestContext

INVITATION_LIFETIME = timedelta(days=7)
LAST_OWNER = "A tenant keeps at least one owner: make someone else owner first."
NOT_ALLOWED_ROLE = "You may not grant or remove the %(role)s role."
ALREADY_MEMBER = "%(email)s is already a member of this tenant."
INVALID_EMAIL = "Enter a valid e-mail address."
ALREADY_INVITED = "%(email)s already has a pending invitation."
INVITATION_INVALID = "This invitation link is invalid, expired or already used."
INVITATION_OTHER_USER = "This invitation is for another e-mail address."
ROLE_ABOVE_OWN = "You may not grant a role above your own."
KEY_CANNOT_RAISE_ROLE = (
    "An API key may lower a role, never raise one: raise it in the portal, behind a fresh "
    "second factor."
)
KEY_GRANTS_ONLY_LOWEST_ROLE = (
    "An API key may grant only the %(role)s role, to a new or re-enabled identity: grant more "
    "in the portal, behind a fresh second factor."
)


def _authorize_grant(actor: Principal, role: str, *, current: str | None = None) -> None:
    """Refuse to give ``role`` (to someone holding ``current``, or None: no role in force yet)
    unless ``actor`` may.

    SECURITY: no one grants a role above their own; a key (``actor.key``) never raises a role:
    it may lower or keep one, and give a new or re-enabled identity only the lowest role. The
    portal asks for a fresh second factor before it calls here (``sudo_required``); a key has
    no second factor to show.
    """
    if not roles.can_assign(actor.role, role):
        raise PermissionDenied(NOT_ALLOWED_ROLE % {"role": role})
    if not roles.at_most(role, actor.role):
        raise PermissionDenied(ROLE_ABOVE_OWN)
    if actor.key is None:
        return
    if current is None and not roles.at_most(role, roles.lowest()):
        raise PermissionDenied(KEY_GRANTS_ONLY_LOWEST_ROLE % {"role": roles.lowest()})
    if current is not None and not roles.at_most(role, current):
        raise PermissionDenied(KEY_CANNOT_RAISE_ROLE)


def _invitation_digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


@transaction.atomic
def invitation_create(
    *, actor: Principal, email: str, role: str, context: RequestContext | None = None
) -> tuple[Invitation, str]:
    """Invite ``email`` with ``role``; e-mail the one-time link and return it once."""
    tenant = actor.tenant
    _authorize_grant(actor, role)
    email = User.objects.normalize_email(email).lower()
    # SECURITY: check the address before it reaches a query (PostgreSQL refuses a NUL byte with
    # a DataError, a 500); the model's full_clean() below comes too late for that.
    try:
        validate_email(email)
    except ValidationError:
        raise ValidationError({"email": INVALID_EMAIL}) from None
    if Membership.objects.for_tenant(tenant).filter(user__email__iexact=email).exists():
        raise ValidationError({"email": ALREADY_MEMBER % {"email": email}})
    if Invitation.objects.for_tenant(tenant).pending().filter(email__iexact=email).exists():
        raise ValidationError({"email": ALREADY_INVITED % {"email": email}})
    secret = secrets.token_urlsafe(32)
    invitation = Invitation(
        tenant=tenant,
        email=email,
        role=role,
        digest=_invitation_digest(secret),
        invited_by=actor.user,
        expires_at=timezone.now() + INVITATION_LIFETIME,
    )
    invitation.full_clean(exclude=["digest"])
    invitation.save()
    audit.record(
        "member.invited",
        actor=actor,
        tenant=tenant,
        target=invitation,
        context=context,
        metadata={"role": role},
    )
    link = absolute_url(reverse("accounts:invitation", kwargs={"secret": secret}))
    mail.send_on_commit(
        f"You are invited to {tenant.name} on Keyward",
        f"{actor.user.get_full_name()} invited you to join {tenant.name} as {role}.\n\n"
        f"Accept within {INVITATION_LIFETIME.days} days: {link}\n\n"
        "If you did not expect this, ignore this e-mail.",
        [email],
        what="an invitation",
    )
    return invitation, link


def invitation_find(secret: str) -> Invitation | None:
    """Return the pending invitation for a link secret, or None."""
    if not secret or len(secret) > 100:
        return None
    return (
        Invitation.objects.pending()
        .select_related("tenant")
        .filter(digest=_invitation_digest(secret), tenant__is_active=True)
        .first()
    )


@transaction.atomic
def invitation_revoke(
    *, actor: Principal, invitation: Invitation, context: RequestContext | None = None
) -> None:
    """Revoke a pending invitation."""
    if not roles.can_assign(actor.role, invitation.role):
        raise PermissionDenied(NOT_ALLOWED_ROLE % {"role": invitation.role})
    invitation.revoked_at = timezone.now()
    invitation.save(update_fields=["revoked_at"])
    audit.record(
        "member.invitation_revoked",
        actor=actor,
        tenant=invitation.tenant,
        target=invitation,
        context=context,
    )


@transaction.atomic
def invitation_accept(
    *,
    invitation_id: int,
    user: User | None,
    full_name: str = "",
    password: str = "",
    context: RequestContext | None = None,
) -> Membership:
    """Accept an invitation: as the signed-in user of that e-mail, or as a new user."""
    invitation = Invitation.objects.pending().select_for_update().filter(pk=invitation_id).first()
    if invitation is None:
        raise ValidationError(INVITATION_INVALID)
    if user is None:
        if User.objects.filter(email__iexact=invitation.email).exists():
            raise ValidationError(INVITATION_OTHER_USER)
        user = User.objects.create_user(invitation.email, password, full_name=full_name)
    elif user.email.lower() != invitation.email.lower():
        raise ValidationError(INVITATION_OTHER_USER)
    membership, created = Membership.objects.get_or_create(
        user=user, tenant=invitation.tenant, defaults={"role": invitation.role}
    )
    invitation.accepted_at = timezone.now()
    invitation.save(update_fields=["accepted_at"])
    audit.record(
        "member.joined",
        actor=user,
        tenant=invitation.tenant,
        target=membership,
        context=context,
        metadata={"role": membership.role, "invitation": invitation.pk},
    )
    return membership


def _lock_owners(tenant: Tenant) -> int:
    owners = Membership.objects.select_for_update().filter(tenant=tenant, role=roles.Role.OWNER)
    return len(list(owners))


@transaction.atomic
def membership_change_role(
    *, actor: Principal, target: Membership, role: str, context: RequestContext | None = None
) -> Membership:
    """Give ``target`` a new role; a tenant always keeps one owner."""
    if role not in roles.Role.values:
        raise ValidationError({"role": f"Unknown role {role!r}."})
    if not roles.can_assign(actor.role, target.role):
        raise PermissionDenied(NOT_ALLOWED_ROLE % {"role": target.role})
    _authorize_grant(actor, role, current=target.role)
    if roles.is_owner(target.role) and not roles.is_owner(role):
        if _lock_owners(target.tenant) <= 1:
            raise ValidationError(LAST_OWNER)
    old = target.role
    target.role = role
    target.save(update_fields=["role"])
    audit.record(
        "member.role_changed",
        actor=actor,
        tenant=target.tenant,
        target=target,
        context=context,
        metadata={"from": old, "to": role},
    )
    return target


@transaction.atomic
def membership_remove(
    *, actor: Principal, target: Membership, context: RequestContext | None = None
) -> None:
    """Remove ``target`` from the tenant; their access ends at once."""
    if target.user_id != actor.user.pk and not roles.can_assign(actor.role, target.role):
        raise PermissionDenied(NOT_ALLOWED_ROLE % {"role": target.role})
    if roles.is_owner(target.role) and _lock_owners(target.tenant) <= 1:
        raise ValidationError(LAST_OWNER)
    label = target.label
    audit.record(
        "member.removed",
        actor=actor,
        tenant=target.tenant,
        target=target,
        context=context,
        metadata={"role": target.role, "member": label},
    )
    target.delete()
