"""Writes for service IDs, the tenant's functional identities."""

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction

import audit
from accounts import roles
from accounts.models import (
    SERVICE_ID_NAME_CONSTRAINT,
    ServiceID,
    Tenant,
)
from accounts.principals import Principal
from accounts.services.members import NOT_ALLOWED_ROLE, _authorize_grant
from audit.services import Actor
from common.request import RequestContext

NOT_SERVICE_ID_MANAGER = "You may not manage service IDs."
SERVICE_ID_NAME_TAKEN = "A service ID named “%(name)s” already exists here (names ignore case)."
OPERATOR_CALL_NEEDS_TENANT = "An operator's actor=Actor.cli(...) needs tenant=."


def _require_service_id_manager(actor: Principal) -> None:
    if not roles.may(actor.role, roles.Action.SERVICE_IDS_MANAGE):
        raise PermissionDenied(NOT_SERVICE_ID_MANAGER)


@transaction.atomic
def service_id_create(
    *,
    actor: Principal | Actor,
    name: str,
    role: str,
    description: str = "",
    tenant: Tenant | None = None,
    context: RequestContext | None = None,
) -> ServiceID:
    """Create a service ID in the actor's tenant, with a role no higher than the actor's.

    On the API the actor is a key's principal (the key is recorded as the actor). An operator's
    command passes ``actor=Actor.cli(...)`` with ``tenant``. Records ``service_id.created`` in the
    same transaction.
    """
    if isinstance(actor, Actor):
        if tenant is None:
            raise TypeError(OPERATOR_CALL_NEEDS_TENANT)
        created_by = None
    else:
        _require_service_id_manager(actor)
        _authorize_grant(actor, role)
        tenant, created_by = actor.tenant, actor.user
    if ServiceID.objects.for_tenant(tenant).filter(name__iexact=name).exists():
        raise ValidationError({"name": SERVICE_ID_NAME_TAKEN % {"name": name}})
    service_id = ServiceID(
        tenant=tenant,
        name=name,
        role=role,
        description=description,
        created_by=created_by,
    )
    service_id.full_clean()
    try:
        with transaction.atomic():
            service_id.save()
    except IntegrityError as error:
        # Two creations raced past the check above: the loser gets the same 400, not a 500.
        if SERVICE_ID_NAME_CONSTRAINT not in str(error):
            raise
        raise ValidationError({"name": SERVICE_ID_NAME_TAKEN % {"name": name}}) from None
    audit.record(
        "service_id.created",
        actor=actor,
        tenant=tenant,
        target=service_id,
        context=context,
        metadata={"role": role},
    )
    return service_id


@transaction.atomic
def service_id_update(
    *,
    actor: Principal,
    service_id: ServiceID,
    context: RequestContext | None = None,
    **changes,
) -> ServiceID:
    """Change a service ID's description, role or active flag (on the API the key is recorded
    as the actor)."""
    _require_service_id_manager(actor)
    if service_id.tenant_id != actor.tenant.pk:
        raise PermissionDenied(NOT_SERVICE_ID_MANAGER)
    allowed = {"description", "role", "is_active"}
    fields = [f for f, v in changes.items() if f in allowed and getattr(service_id, f) != v]
    role = changes["role"] if "role" in fields else service_id.role
    if "role" in fields and not roles.can_assign(actor.role, service_id.role):
        raise PermissionDenied(NOT_ALLOWED_ROLE % {"role": service_id.role})
    if "is_active" in fields and changes["is_active"]:
        _authorize_grant(actor, role)  # enabling puts its role back in force
    elif "role" in fields:
        _authorize_grant(actor, role, current=service_id.role)
    before = {f: getattr(service_id, f) for f in fields}
    for f in fields:
        setattr(service_id, f, changes[f])
    if not fields:
        return service_id
    service_id.full_clean()
    service_id.save(update_fields=fields)
    action = "service_id.changed"
    if fields == ["is_active"]:
        action = "service_id.enabled" if service_id.is_active else "service_id.disabled"
    audit.record(
        action,
        actor=actor,
        tenant=service_id.tenant,
        target=service_id,
        context=context,
        metadata={"changed": {f: [before[f], changes[f]] for f in fields}},
    )
    return service_id
