"""Writes for tenants: creation and key policy."""

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

import audit
from accounts import roles
from accounts.models import (
    Membership,
    Tenant,
    User,
)
from accounts.principals import Principal
from common.request import RequestContext

SLUG_TAKEN = "A tenant with this slug already exists."


@transaction.atomic
def tenant_create(*, name: str, slug: str, owner_email: str, actor) -> tuple[Tenant, User]:
    """Create a tenant and its first owner (a new user gets an unusable password)."""
    if Tenant.objects.filter(slug=slug).exists():
        raise ValidationError({"slug": SLUG_TAKEN})
    tenant = Tenant(name=name, slug=slug)
    tenant.full_clean()
    tenant.save()
    owner = User.objects.filter(email__iexact=owner_email).first()
    if owner is None:
        owner = User.objects.create_user(owner_email, None)
    membership = Membership.objects.create(user=owner, tenant=tenant, role=roles.Role.OWNER)
    audit.record("tenant.created", actor=actor, tenant=tenant, target=tenant)
    audit.record(
        "member.joined",
        actor=actor,
        tenant=tenant,
        target=membership,
        metadata={"role": membership.role, "via": "tenant creation"},
    )
    return tenant, owner


POLICY_FIELDS = (
    "max_key_lifetime_days",
    "default_key_lifetime_days",
    "allow_non_expiring_keys",
    "revoke_unused_after_days",
    "leak_policy",
    "allowed_ips",
    "key_rate",
    "expiry_warning_days",
    "key_approval",
    "approval_default_scopes",
    "approval_expire_days",
)


@transaction.atomic
def tenant_policy_update(
    *, actor: Principal, context: RequestContext | None = None, **changes
) -> Tenant:
    """Change the tenant's key policy (owners only)."""
    if not roles.may(actor.role, roles.Action.POLICY_EDIT):
        raise PermissionDenied("Only owners may change the key policy.")
    tenant = Tenant.objects.select_for_update().get(pk=actor.tenant.pk)
    fields = [f for f in POLICY_FIELDS if f in changes and getattr(tenant, f) != changes[f]]
    before = {f: getattr(tenant, f) for f in fields}
    for f in fields:
        setattr(tenant, f, changes[f])
    if not fields:
        return tenant
    tenant.full_clean()
    tenant.save(update_fields=fields)
    audit.record(
        "tenant.policy_changed",
        actor=actor,
        tenant=tenant,
        target=tenant,
        context=context,
        metadata={"changed": {f: [before[f], changes[f]] for f in fields}},
    )
    return tenant
