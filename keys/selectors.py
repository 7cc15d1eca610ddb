"""Tenant-scoped reads of keys: the only code that turns a role into a key filter."""

from django.db.models import Q
from django.http import Http404

from accounts import roles
from accounts.models import ServiceID
from audit.models import AuditEvent
from keys.models import ApiKey
from keys.principals import Principal


def key_list(principal: Principal):
    """Return the keys ``principal`` may see: its own; with keys.manage_all, the tenant's."""
    keys = ApiKey.objects.for_tenant(principal.tenant).select_related("user", "service_id")
    if not roles.may(principal.role, roles.Action.KEYS_MANAGE_ALL):
        own = Q(user=principal.user) if principal.user else Q(service_id=principal.service_id)
        keys = keys.filter(own)
    return keys.order_by("-created_at", "-id")


def key_get(principal: Principal, pk) -> ApiKey:
    """Return one key ``principal`` may see, or raise Http404 (also for other tenants' keys)."""
    try:
        return key_list(principal).get(pk=pk)
    except (ApiKey.DoesNotExist, ValueError, TypeError):
        raise Http404("No such key.") from None


def key_list_for_service_id(principal: Principal, service_id: ServiceID):
    """Return a service ID's keys (the service ID must belong to the principal's tenant)."""
    if service_id.tenant_id != principal.tenant.pk:
        raise Http404("No such service ID.")
    return (
        ApiKey.objects.for_tenant(principal.tenant)
        .filter(service_id=service_id)
        .order_by("-created_at", "-id")
    )


def service_key_get(principal: Principal, service_id: ServiceID, pk) -> ApiKey:
    """Return one key of a service ID of the principal's tenant, or raise Http404."""
    try:
        return key_list_for_service_id(principal, service_id).get(pk=pk)
    except (ApiKey.DoesNotExist, ValueError, TypeError):
        raise Http404("No such key.") from None


def key_list_personal(principal: Principal):
    """Return the principal's own personal access tokens, newest first."""
    if principal.user is None:
        return ApiKey.objects.none()
    return (
        ApiKey.objects.for_tenant(principal.tenant)
        .filter(user=principal.user)
        .order_by("-created_at", "-id")
    )


def key_recent_events(principal: Principal, key: ApiKey, limit: int = 20):
    """Return the latest audit events about ``key``, newest first (Http404 for another tenant's)."""
    if key.tenant_id != principal.tenant.pk:
        raise Http404("No such key.")
    return (
        AuditEvent.objects.for_tenant(principal.tenant)
        .filter(target_kind=ApiKey.audit_kind, target_id=str(key.pk))
        .order_by("-id")[:limit]
    )
