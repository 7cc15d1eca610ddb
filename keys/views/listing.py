"""The keys list (GitHub's and GitLab's token pages): search, filters, sort, Active / Inactive
tabs, relative "last used", pages without a count; bulk revoke for owners and admins."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.utils.http import urlencode

from accounts import roles
from accounts.decorators import sudo_required, tenant_view
from common.request import context_of
from keys import forms, selectors, services
from keys.services import bulk


def _link(params: dict, **changes) -> str:
    """Return the list's query string with ``changes`` (None drops a parameter)."""
    merged = {k: v for k, v in {**params, **changes}.items() if v not in (None, "")}
    return "?" + urlencode(merged) if merged else "?"


@tenant_view(roles.Action.KEYS_OWN)
def key_list_view(request):
    principal = request.principal
    manage_all = roles.may(principal.role, roles.Action.KEYS_MANAGE_ALL)
    owners = selectors.key_owner_choices(principal)
    form = forms.KeyListForm(request.GET, owners=owners)
    params = {k: v for k, v in request.GET.items() if k in form.fields and k != "page"}
    status = 200
    if form.is_valid():
        query = form.query()
        page = selectors.key_page(principal, query)
    else:
        query, status = selectors.KeyQuery(), 400
        page = selectors.KeyPage([], 1, False)
    filtered = any(params.get(k) for k in ("q", "status", "owner", "scope", "expiring"))
    context = {
        "form": form,
        "page": page,
        "query": query,
        "manage_all": manage_all,
        "filtered": filtered,
        "tabs": [
            (tab, label, _link(params, tab=None if tab == "active" else tab), query.tab == tab)
            for tab, label in (("active", "Active"), ("inactive", "Inactive"))
        ],
        "previous_link": _link(params, page=page.number - 1 if page.number > 2 else None),
        "next_link": _link(params, page=page.number + 1),
        "may_review": selectors.may_review_keys(principal),
        "pending_count": selectors.key_pending_count(principal),
    }
    return render(request, "keys/apikey_list.html", context, status=status)


@tenant_view(roles.Action.KEYS_MANAGE_ALL)
@sudo_required
def key_bulk_revoke_view(request):
    """POST the keys chosen on the list: a confirmation page lists them; POST ``confirm``
    revokes them all in one transaction, one ``key.revoked`` event each."""
    if request.method != "POST":
        return redirect("keys:list", slug=request.tenant.slug)
    principal = request.principal
    form = forms.KeyBulkRevokeForm(request.POST)
    if not form.is_valid():
        messages.error(request, bulk.NOTHING_SELECTED)
        return redirect("keys:list", slug=request.tenant.slug)
    keys = selectors.key_list_by_ids(principal, form.cleaned_data["keys"])
    live = [key for key in keys if key.revoked_at is None]
    if not live:
        messages.error(request, bulk.NOTHING_SELECTED)
        return redirect("keys:list", slug=request.tenant.slug)
    if request.POST.get("confirm") == "yes":
        try:
            revoked = services.keys_revoke_bulk(
                actor=principal,
                keys=live,
                reason=form.cleaned_data["reason"],
                context=context_of(request),
            )
        except (ValidationError, PermissionDenied) as error:
            messages.error(request, " ".join(getattr(error, "messages", [str(error)])))
        else:
            messages.success(request, f"{len(revoked)} key(s) revoked.")
        return redirect("keys:list", slug=request.tenant.slug)
    return render(request, "keys/apikey_confirm_bulk_revoke.html", {"keys": live, "form": form})
