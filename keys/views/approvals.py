"""Key approvals: the queue of keys waiting for an owner's or admin's decision, and the decision
page (sudo, a reason, and someone other than the person who asked)."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render

from accounts import roles
from accounts.decorators import sudo_required, tenant_view
from common.request import context_of
from keys import forms, selectors, services


@tenant_view(roles.Action.KEYS_MANAGE_ALL)
def approval_queue_view(request):
    principal = request.principal
    keys = list(selectors.key_list_pending(principal))
    for key in keys:
        key.is_own_request = principal.user.pk in {key.created_by_id, key.user_id}
    context = {"keys": keys, "expire_days": request.tenant.approval_expire_days}
    return render(request, "keys/apikey_approvals.html", context)


@tenant_view(roles.Action.KEYS_MANAGE_ALL)
@sudo_required
def approval_decide_view(request, pk: int):
    principal = request.principal
    key = selectors.key_get(principal, pk)  # another tenant's: 404
    if not key.is_pending or key.revoked_at is not None:
        messages.info(request, services.NOT_PENDING)  # decided meanwhile, or never asked
        return redirect("keys:detail", slug=request.tenant.slug, pk=key.pk)
    form = forms.KeyDecisionForm(request.POST if request.method == "POST" else None)
    if form.is_bound and form.is_valid():
        decide = (
            services.key_approve
            if form.cleaned_data["decision"] == "approve"
            else services.key_deny
        )
        try:
            decide(
                actor=principal,
                key=key,
                reason=form.cleaned_data["reason"],
                context=context_of(request),
            )
        except (ValidationError, PermissionDenied) as error:
            form.add_service_error(error)
        else:
            verdict = "approved" if key.approval == "approved" else "denied and revoked"
            messages.success(request, f"Key “{key.name}” ({key.hint}) {verdict}.")
            return redirect("keys:approvals", slug=request.tenant.slug)
    own = principal.user.pk in {key.created_by_id, key.user_id}
    status = 400 if form.is_bound else 200
    return render(
        request,
        "keys/apikey_decide.html",
        {"key": key, "form": form, "own_request": own},
        status=status,
    )
