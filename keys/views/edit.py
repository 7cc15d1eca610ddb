"""Edit a key: narrow it freely; widen it (scopes, networks, expiry) with a fresh second factor.

When an edit needs sudo and the verification is stale, the submitted input is kept in the
session (a key's fields hold no secret) and the form comes back filled in after the detour.
"""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode

from accounts.decorators import sudo_fresh, tenant_view
from common.request import context_of
from keys import forms, selectors, services
from keys.services.issue import _owner_role

DRAFT_SESSION_KEY = "keyward_key_edit_draft"


def _draft(request, key) -> QueryDict | None:
    """Return (and forget) the input this session submitted before its sudo detour."""
    draft = request.session.pop(DRAFT_SESSION_KEY, None)
    if not draft or draft.get("key") != key.pk:
        return None
    data = QueryDict(mutable=True)
    for name, values in draft.get("data", {}).items():
        data.setlist(name, values)
    return data


def _keep_draft(request, key) -> None:
    data = {k: v for k, v in request.POST.lists() if k != "csrfmiddlewaretoken"}
    request.session[DRAFT_SESSION_KEY] = {"key": key.pk, "data": data}


@tenant_view()
def key_edit_view(request, pk: int):
    principal = request.principal
    key = selectors.key_get(principal, pk)
    if not services.may_manage_key(principal, key):
        raise PermissionDenied(services.NOT_YOURS)
    detail = reverse("keys:detail", kwargs={"slug": request.tenant.slug, "pk": key.pk})
    if not key.is_rotatable() or key.is_pending:
        messages.error(request, services.NOT_EDITABLE)
        return redirect(detail)
    try:
        owner_role = _owner_role(request.tenant, key.owner)
    except (ValidationError, PermissionDenied) as error:
        messages.error(request, " ".join(getattr(error, "messages", [str(error)])))
        return redirect(detail)
    data = request.POST if request.method == "POST" else _draft(request, key)
    restored = request.method != "POST" and data is not None
    form = forms.KeyEditForm(data, key=key, owner_role=owner_role)
    sudo_url = None
    if request.method == "POST" and form.is_valid():
        try:
            services.key_update(
                actor=principal,
                key=key,
                values=form.values(),
                sudo=sudo_fresh(request),
                context=context_of(request),
            )
        except services.SudoRequired:
            _keep_draft(request, key)
            sudo_url = f"{reverse('accounts:sudo')}?{urlencode({'next': request.path})}"
            form.add_error(None, services.SUDO_NEEDED)
        except (ValidationError, PermissionDenied) as error:
            form.add_service_error(error)
        else:
            messages.success(request, f"Key “{key.name}” saved.")
            return redirect(detail)
    status = 400 if request.method == "POST" else 200
    context = {
        "key": key,
        "form": form,
        "sudo_url": sudo_url,
        "sudo_fresh": sudo_fresh(request),
        "restored": restored,
        "back": detail,
    }
    return render(request, "keys/apikey_edit.html", context, status=status)
