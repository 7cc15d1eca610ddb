"""A tenant's service IDs: the list with its create form, and enabling or disabling one.

A service ID's own page lists its keys, so it lives in ``keys`` (``keys:service_id_detail``).
"""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts import roles, selectors, services
from accounts.decorators import sudo_detour, sudo_fresh, tenant_view
from accounts.forms import ServiceIDForm, add_errors
from accounts.models import ServiceID
from common.request import context_of


def _detail_redirect(request, service_id: ServiceID):
    return redirect("keys:service_id_detail", slug=request.tenant.slug, pk=service_id.pk)


@tenant_view(roles.Action.SERVICE_IDS_READ)
def service_id_list_view(request):
    role = request.membership.role
    can_manage = roles.may(role, roles.Action.SERVICE_IDS_MANAGE)
    form = ServiceIDForm(request.POST or None, actor_role=role) if can_manage else None
    status = 200
    if request.method == "POST":
        if not can_manage:
            raise PermissionDenied(selectors.NOT_ALLOWED)
        if not sudo_fresh(request):
            return sudo_detour(request)  # a new service ID is granted a role
        service_id = _create(request, form) if form.is_valid() else None
        if service_id is not None:
            messages.success(request, f"Service ID {service_id.name} created.")
            return _detail_redirect(request, service_id)
        status = 400
    context = {
        "service_ids": selectors.service_id_list(request.principal),
        "form": form,
        "can_manage": can_manage,
    }
    return render(request, "accounts/serviceid_list.html", context, status=status)


def _create(request, form) -> ServiceID | None:
    try:
        return services.service_id_create(
            actor=request.principal, context=context_of(request), **form.cleaned_data
        )
    except ValidationError as error:
        add_errors(form, error)
        return None


@require_POST
@tenant_view(roles.Action.SERVICE_IDS_MANAGE)
def service_id_toggle_view(request, pk: int):
    service_id = selectors.service_id_get(request.principal, pk)
    if not service_id.is_active and not sudo_fresh(request):
        # Enabling puts the service ID's role back in force; disabling needs no detour.
        return sudo_detour(request)
    services.service_id_update(
        actor=request.principal,
        service_id=service_id,
        is_active=not service_id.is_active,
        context=context_of(request),
    )
    state = "enabled" if service_id.is_active else "disabled: its keys stop working now"
    messages.success(request, f"Service ID {service_id.name} {state}.")
    return _detail_redirect(request, service_id)
