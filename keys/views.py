"""Portal pages for keys: list, issue (one-time page), detail, revoke, rotate; tenant key policy."""

from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts import roles
from accounts import selectors as account_selectors
from accounts import services as account_services
from accounts.decorators import sudo_required, tenant_view
from accounts.principals import Principal
from common.http import no_store
from common.request import context_of
from keys import forms, selectors, services
from keys.charts import usage_chart
from keys.scopes import describe

ALL_KEYS_PER_PAGE = 50
# The key page announces an inactivity revocation this long before it happens.
INACTIVITY_NOTICE_DAYS = 30
API_EXAMPLE_PATH = "/api/v1/whoami/"


def _posted(request):
    # Not ``request.POST or None``: an empty POST (a revoke without a reason) is still a POST.
    return request.POST if request.method == "POST" else None


def _principal(request) -> Principal:
    return Principal.of_membership(request.membership)


def _url(name: str, request, **kwargs) -> str:
    return reverse(name, kwargs={"slug": request.tenant.slug, **kwargs})


def _scopes(key) -> list[tuple[str, str]]:
    return [(scope, describe(scope)) for scope in key.scopes]


def _created_page(request, key, token: str, *, previous=None, back: str):
    """Render the only response that ever holds ``token``; nothing else stores it."""
    context = {
        "key": key,
        "token": token,
        "scopes": _scopes(key),
        "previous": previous,
        "back": back,
        "api_example_url": settings.KEYWARD_BASE_URL.rstrip("/") + API_EXAMPLE_PATH,
    }
    return no_store(render(request, "keys/apikey_created.html", context))


# --- Personal access tokens -----------------------------------------------------------------


@tenant_view(roles.Action.KEYS_OWN)
def key_list_view(request):
    principal = _principal(request)
    manage_all = roles.may(principal.role, roles.Action.KEYS_MANAGE_ALL)
    all_keys = None
    if manage_all:
        all_keys = Paginator(selectors.key_list(principal), ALL_KEYS_PER_PAGE).get_page(
            request.GET.get("page")
        )
    return render(
        request,
        "keys/apikey_list.html",
        {
            "own_keys": selectors.key_list_personal(principal),
            "all_keys": all_keys,
            "may_review": selectors.may_review_keys(principal),
        },
    )


def _issue(request, *, owner, owner_role: str, back: str, service_id=None):
    """Show the issue form; on a valid POST issue the key and answer with the one-time page."""
    form = forms.KeyIssueForm(_posted(request), tenant=request.tenant, owner_role=owner_role)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            try:
                key, token = services.key_issue(
                    actor=_principal(request),
                    tenant=request.tenant,
                    owner=owner,
                    name=data["name"],
                    scopes=data["scopes"],
                    expires_at=data["expires_at"],
                    allowed_ips=data["allowed_ips"],
                    alert_on_new_network=data["alert_on_new_network"],
                    context=context_of(request),
                )
            except (ValidationError, PermissionDenied) as error:
                form.add_service_error(error)
            else:
                return _created_page(request, key, token, back=back)
    context = {"form": form, "service_id": service_id, "back": back}
    return no_store(render(request, "keys/apikey_form.html", context, status=status))


@tenant_view(roles.Action.KEYS_OWN)
@sudo_required
def key_issue_view(request):
    return _issue(
        request,
        owner=request.user,
        owner_role=request.membership.role,
        back=_url("keys:list", request),
    )


@tenant_view(roles.Action.SERVICE_IDS_MANAGE)
@sudo_required
def service_key_issue_view(request, sid: int):
    service_id = account_selectors.service_id_get(request.principal, sid)
    return _issue(
        request,
        owner=service_id,
        owner_role=service_id.role,
        service_id=service_id,
        back=_url("keys:service_id_detail", request, pk=service_id.pk),
    )


def _successor(key):
    try:
        return key.rotated_to
    except ObjectDoesNotExist:
        return None


def _scope_rows(key, now) -> tuple[list[dict], bool]:
    """Return each scope with its description and last use, and whether narrowing would help
    (some scopes used in the review window, some not)."""
    uses = selectors.key_scope_uses(key)
    used = selectors.key_used_scopes(key, since=now - timedelta(days=selectors.UNUSED_SCOPE_DAYS))
    rows = [
        {
            "scope": scope,
            "description": describe(scope),
            "last_used_at": uses.get(scope),
            "recently_used": scope in used,
        }
        for scope in key.scopes
    ]
    recent = [row for row in rows if row["recently_used"]]
    return rows, 0 < len(recent) < len(rows)


@tenant_view()
def key_detail_view(request, pk: int):
    principal = _principal(request)
    key = selectors.key_get(principal, pk)
    now = timezone.now()
    scope_rows, narrowable = _scope_rows(key, now)
    revoke_at = key.inactivity_revocation_at(now)
    if revoke_at is not None and revoke_at - now > timedelta(days=INACTIVITY_NOTICE_DAYS):
        revoke_at = None
    can_manage = services.may_manage_key(principal, key)
    context = {
        "key": key,
        "scopes": _scopes(key),
        "scope_rows": scope_rows,
        "unused_scope_days": selectors.UNUSED_SCOPE_DAYS,
        "can_narrow": can_manage and narrowable and key.status(now) in ("active", "expiring"),
        "can_manage": can_manage and key.revoked_at is None,
        "inactivity_revocation_at": revoke_at,
        "successor": _successor(key),
        "events": selectors.key_recent_events(principal, key),
        "chart": usage_chart(selectors.key_usage_days(key, today=now.date())),
        "client_ips": selectors.key_client_ips(key),
        "requests": selectors.key_recent_requests(principal, key),
    }
    return render(request, "keys/apikey_detail.html", context)


@tenant_view()
def key_review_view(request):
    principal = _principal(request)
    review = selectors.key_review(principal)
    context = {
        "review": review,
        "unused_scope_days": selectors.UNUSED_SCOPE_DAYS,
        "can_narrow": roles.may(principal.role, roles.Action.KEYS_MANAGE_ALL),
        # Auditors read the review, but another person's key page is not theirs to open.
        "nolink": not roles.may(principal.role, roles.Action.KEYS_MANAGE_ALL),
    }
    return render(request, "keys/apikey_review.html", context)


def _back_to(request, key):
    if request.POST.get("next") == "review":
        return redirect("keys:review", slug=request.tenant.slug)
    return redirect("keys:detail", slug=request.tenant.slug, pk=key.pk)


@tenant_view()
@require_POST
@sudo_required
def key_narrow_view(request, pk: int):
    key = selectors.key_get(_principal(request), pk)
    before = list(key.scopes)
    try:
        services.key_narrow_scopes(actor=_principal(request), key=key, context=context_of(request))
    except (ValidationError, PermissionDenied) as error:
        messages.error(request, " ".join(getattr(error, "messages", [str(error)])))
    else:
        removed = ", ".join(s for s in before if s not in key.scopes)
        messages.success(request, f"Key “{key.name}” narrowed: removed {removed}.")
    return _back_to(request, key)


@tenant_view()
@require_POST
@sudo_required
def key_network_alert_view(request, pk: int):
    key = selectors.key_get(_principal(request), pk)
    enabled = request.POST.get("enabled") == "on"
    try:
        services.key_set_network_alert(
            actor=_principal(request), key=key, enabled=enabled, context=context_of(request)
        )
    except (ValidationError, PermissionDenied) as error:
        messages.error(request, " ".join(getattr(error, "messages", [str(error)])))
    else:
        state = "on" if enabled else "off"
        messages.success(request, f"New-network alerts for “{key.name}” are {state}.")
    return _back_to(request, key)


@tenant_view()
def key_revoke_view(request, pk: int):
    key = selectors.key_get(_principal(request), pk)
    if key.revoked_at is not None:
        messages.error(request, services.ALREADY_REVOKED)
        return redirect("keys:detail", slug=request.tenant.slug, pk=key.pk)
    form = forms.KeyRevokeForm(_posted(request))
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                services.key_revoke(
                    actor=_principal(request),
                    key=key,
                    reason=form.cleaned_data["reason"],
                    context=context_of(request),
                )
            except ValidationError as error:
                messages.error(request, error.messages[0])
            else:
                messages.success(request, f"Key “{key.name}” ({key.hint}) revoked.")
            return redirect("keys:detail", slug=request.tenant.slug, pk=key.pk)
    return render(
        request, "keys/apikey_confirm_revoke.html", {"key": key, "form": form}, status=status
    )


@tenant_view()
@sudo_required
def key_rotate_view(request, pk: int):
    key = selectors.key_get(_principal(request), pk)
    form = forms.KeyRotateForm(_posted(request))
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                new, token = services.key_rotate(
                    actor=_principal(request),
                    key=key,
                    grace=form.cleaned_data["grace"],
                    context=context_of(request),
                )
            except (ValidationError, PermissionDenied) as error:
                form.add_service_error(error)
            else:
                return _created_page(
                    request,
                    new,
                    token,
                    previous=new.rotated_from,
                    back=_back_to_owner(request, new),
                )
    context = {"key": key, "form": form, "rotatable": key.status() in ("active", "expiring")}
    return render(request, "keys/apikey_rotate.html", context, status=status)


def _back_to_owner(request, key) -> str:
    if key.service_id_id:
        return _url("keys:service_id_detail", request, pk=key.service_id_id)
    return _url("keys:list", request)


# --- Tenant policy --------------------------------------------------------------------------


@tenant_view(roles.Action.POLICY_EDIT)
@sudo_required
def tenant_policy_view(request):
    initial = forms.TenantPolicyForm.initial_for(request.tenant)
    form = forms.TenantPolicyForm(_posted(request), initial=initial)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                account_services.tenant_policy_update(
                    actor=request.principal, context=context_of(request), **form.cleaned_data
                )
            except (ValidationError, PermissionDenied) as error:
                form.add_service_error(error)
            else:
                messages.success(request, "Key policy saved.")
                return redirect("keys:policy", slug=request.tenant.slug)
    return render(request, "keys/tenant_policy.html", {"form": form}, status=status)


@tenant_view(roles.Action.SERVICE_IDS_READ)
def service_id_detail_view(request, pk: int):
    service_id = account_selectors.service_id_get(request.principal, pk)
    return render(
        request,
        "keys/serviceid_detail.html",
        {
            "service_id": service_id,
            "can_manage": roles.may(request.principal.role, roles.Action.SERVICE_IDS_MANAGE),
            "keys": selectors.key_list_for_service_id(request.principal, service_id),
        },
    )
