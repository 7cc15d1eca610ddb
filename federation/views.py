"""Portal: the workload identity trusts of a service ID (keyless CI). Owners add and remove
them behind a fresh second factor; every change is audited."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts import roles, selectors
from accounts.decorators import sudo_detour, sudo_fresh, tenant_view
from accounts.forms import add_errors
from common.request import context_of
from federation import trusts
from federation.forms import WorkloadTrustForm


@tenant_view(roles.Action.SERVICE_IDS_READ)
def trust_list_view(request, pk: int):
    service_id = selectors.service_id_get(request.principal, pk)
    can_manage = roles.may(request.membership.role, roles.Action.POLICY_EDIT)
    form = WorkloadTrustForm(request.POST or None, service_id=service_id) if can_manage else None
    status = 200
    if request.method == "POST":
        if not can_manage:
            raise PermissionDenied(trusts.OWNERS_ONLY)
        if not sudo_fresh(request):
            return sudo_detour(request)  # a trust lets a CI act for the service ID
        if form.is_valid():
            try:
                trusts.trust_add(
                    actor=request.principal,
                    service_id=service_id,
                    context=context_of(request),
                    **form.cleaned_data,
                )
            except ValidationError as error:
                add_errors(form, error)
            else:
                messages.success(request, f"{service_id.name} now trusts that workload.")
                return redirect("federation:trusts", slug=request.tenant.slug, pk=service_id.pk)
        status = 400
    context = {
        "service_id": service_id,
        "trusts": trusts.trust_list(request.principal, service_id),
        "form": form,
        "can_manage": can_manage,
    }
    return render(request, "federation/workloadtrust_list.html", context, status=status)


@require_POST
@tenant_view(roles.Action.POLICY_EDIT)
def trust_remove_view(request, pk: int, trust_pk: int):
    trust = trusts.trust_get(request.principal, trust_pk)
    if trust.service_id_id != pk:
        trust = trusts.trust_get(request.principal, -1)  # 404
    try:
        trusts.trust_remove(actor=request.principal, trust=trust, context=context_of(request))
    except ValidationError:
        pass  # removed meanwhile: the page says so
    messages.success(request, "Trust removed: that workload can no longer get tokens.")
    return redirect("federation:trusts", slug=request.tenant.slug, pk=pk)
