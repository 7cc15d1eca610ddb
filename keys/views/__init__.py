"""Portal pages for keys: list, issue (one-time page), detail, revoke, rotate; tenant key policy;
a service ID's page and a member's removal, which list the keys concerned."""

import secrets
from datetime import timedelta

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
from accounts.decorators import restore_posted_form, sudo_required, tenant_view
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
        "api_example_url": account_services.absolute_url(API_EXAMPLE_PATH),
    }
    return no_store(render(request, "keys/apikey_created.html", context))


def _submit(form, service) -> tuple[bool, object]:
    """Return ``(True, service())`` for a valid bound form, else ``(False, None)``: a GET, or
    input that the form or the service refused (a service's refusal becomes form errors)."""
    if not form.is_bound or not form.is_valid():
        return False, None
    try:
        return True, service()
    except (ValidationError, PermissionDenied) as error:
        form.add_service_error(error)
        return False, None


def _form_page(request, template: str, context: dict):
    """Render a form page: 400 when it answers a POST (the input was refused), else 200."""
    status = 400 if request.method == "POST" else 200
    return render(request, template, context, status=status)


# --- Personal access tokens -----------------------------------------------------------------


@tenant_view(roles.Action.KEYS_OWN)
def key_list_view(request):
    principal = request.principal
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


# A form that creates a token carries a random "once" value; the session keeps which key each
# one created (never the token), so that reloading the one-time page, which posts the form again,
# answers "this token was shown once" instead of a refused form.
SHOWN_ONCE_SESSION_KEY = "keyward_shown_once"
SHOWN_ONCE_KEPT = 20


def _once(request) -> str:
    posted = request.POST.get("once", "") if request.method == "POST" else ""
    return posted[:64] or secrets.token_urlsafe(16)


def _already_shown(request, once: str):
    """Return the page for a form posted again after its token was shown, or None."""
    if request.method != "POST":
        return None
    pk = request.session.get(SHOWN_ONCE_SESSION_KEY, {}).get(once)
    if pk is None:
        return None
    key = selectors.key_list(request.principal).filter(pk=pk).first()
    return no_store(render(request, "keys/apikey_shown_once.html", {"key": key}))


def _remember_shown(request, once: str, key) -> None:
    shown = dict(request.session.get(SHOWN_ONCE_SESSION_KEY, {}))
    shown[once] = key.pk
    request.session[SHOWN_ONCE_SESSION_KEY] = dict(list(shown.items())[-SHOWN_ONCE_KEPT:])


def _issue(request, *, owner, owner_role: str, back: str, service_id=None):
    """Show the issue form; on a valid POST issue the key and answer with the one-time page."""
    once = _once(request)
    if (shown := _already_shown(request, once)) is not None:
        return shown
    form = forms.KeyIssueForm(
        _posted(request),
        initial=restore_posted_form(request, forms.KeyIssueForm),
        tenant=request.tenant,
        owner_role=owner_role,
    )
    issued, result = _submit(
        form,
        lambda: services.key_issue(
            actor=request.principal,
            tenant=request.tenant,
            owner=owner,
            context=context_of(request),
            **form.key_arguments(),
        ),
    )
    if issued:
        key, token = result
        _remember_shown(request, once, key)
        return _created_page(request, key, token, back=back)
    context = {"form": form, "service_id": service_id, "back": back, "once": once}
    return no_store(_form_page(request, "keys/apikey_form.html", context))


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


def _inactivity_notice(key, now):
    """Return when ``key`` is revoked for inactivity if the key page should announce it yet."""
    revoke_at = key.inactivity_revocation_at(now)
    if revoke_at is not None and revoke_at - now > timedelta(days=INACTIVITY_NOTICE_DAYS):
        return None
    return revoke_at


@tenant_view()
def key_detail_view(request, pk: int):
    principal = request.principal
    key = selectors.key_get(principal, pk)
    now = timezone.now()
    scope_use = selectors.key_scope_use(key, now=now)
    can_manage = services.may_manage_key(principal, key)
    context = {
        "key": key,
        "scopes": _scopes(key),
        "scope_rows": scope_use.rows,
        "scope_use": scope_use,
        "unused_scope_days": selectors.UNUSED_SCOPE_DAYS,
        "can_narrow": can_manage and scope_use.narrowable and key.is_rotatable(now),
        "can_manage": can_manage and key.revoked_at is None,
        "inactivity_revocation_at": _inactivity_notice(key, now),
        "successor": _successor(key),
        "events": selectors.key_recent_events(principal, key),
        "chart": usage_chart(selectors.key_usage_days(key, today=now.date())),
        "client_ips": selectors.key_client_ips(key),
        "requests": selectors.key_recent_requests(principal, key),
    }
    return render(request, "keys/apikey_detail.html", context)


@tenant_view()
def key_review_view(request):
    principal = request.principal
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
@sudo_required
def key_narrow_view(request, pk: int):
    """GET: preview what narrowing keeps and removes (before → after). POST: narrow, if usage
    still gives what the preview showed (the scopes to keep are posted back)."""
    key = selectors.key_get(request.principal, pk)
    if not services.may_manage_key(request.principal, key):
        raise PermissionDenied(services.NOT_YOURS)
    if request.method == "POST":
        try:
            services.key_narrow_scopes(
                actor=request.principal,
                key=key,
                context=context_of(request),
                expected=request.POST.getlist("keep"),
            )
        except (ValidationError, PermissionDenied) as error:
            messages.error(request, " ".join(getattr(error, "messages", [str(error)])))
        else:
            messages.success(request, f"Key “{key.name}” narrowed to {', '.join(key.scopes)}.")
        return _back_to(request, key)
    scope_use = selectors.key_scope_use(key, now=timezone.now())
    context = {
        "key": key,
        "scope_use": scope_use,
        "removed": [row for row in scope_use.rows if not row["recently_used"]],
        "kept": [row for row in scope_use.rows if row["recently_used"]],
        "next": "review" if request.GET.get("next") == "review" else "",
        "unused_scope_days": selectors.UNUSED_SCOPE_DAYS,
        "rotatable": key.is_rotatable(),
    }
    return render(request, "keys/apikey_confirm_narrow.html", context)


@tenant_view()
@require_POST
@sudo_required
def key_network_alert_view(request, pk: int):
    key = selectors.key_get(request.principal, pk)
    enabled = request.POST.get("enabled") == "on"
    try:
        services.key_set_network_alert(
            actor=request.principal, key=key, enabled=enabled, context=context_of(request)
        )
    except (ValidationError, PermissionDenied) as error:
        messages.error(request, " ".join(getattr(error, "messages", [str(error)])))
    else:
        state = "on" if enabled else "off"
        messages.success(request, f"New-network alerts for “{key.name}” are {state}.")
    return _back_to(request, key)


@tenant_view()
def key_revoke_view(request, pk: int):
    key = selectors.key_get(request.principal, pk)
    if key.revoked_at is not None:
        messages.error(request, services.ALREADY_REVOKED)
        return redirect("keys:detail", slug=request.tenant.slug, pk=key.pk)
    form = forms.KeyRevokeForm(_posted(request))
    if form.is_bound and form.is_valid():
        try:
            services.key_revoke(
                actor=request.principal,
                key=key,
                reason=form.cleaned_data["reason"],
                context=context_of(request),
            )
        except ValidationError as error:
            messages.error(request, error.messages[0])
        else:
            messages.success(request, f"Key “{key.name}” ({key.hint}) revoked.")
        return redirect("keys:detail", slug=request.tenant.slug, pk=key.pk)
    return _form_page(request, "keys/apikey_confirm_revoke.html", {"key": key, "form": form})


@tenant_view()
@sudo_required
def key_rotate_view(request, pk: int):
    key = selectors.key_get(request.principal, pk)
    once = _once(request)
    if (shown := _already_shown(request, once)) is not None:
        return shown
    form = forms.KeyRotateForm(
        _posted(request), initial=restore_posted_form(request, forms.KeyRotateForm)
    )
    rotated, result = _submit(
        form,
        lambda: services.key_rotate(
            actor=request.principal,
            key=key,
            grace=form.cleaned_data["grace"],
            context=context_of(request),
        ),
    )
    if rotated:
        new, token = result
        _remember_shown(request, once, new)
        back = _back_to_owner(request, new)
        return _created_page(request, new, token, previous=new.rotated_from, back=back)
    context = {"key": key, "form": form, "rotatable": key.is_rotatable(), "once": once}
    return _form_page(request, "keys/apikey_rotate.html", context)


def _back_to_owner(request, key) -> str:
    if key.service_id_id:
        return _url("keys:service_id_detail", request, pk=key.service_id_id)
    return _url("keys:list", request)


# --- Tenant policy --------------------------------------------------------------------------


@tenant_view(roles.Action.POLICY_EDIT)
@sudo_required
def tenant_policy_view(request):
    initial = forms.TenantPolicyForm.initial_for(request.tenant)
    initial.update(restore_posted_form(request, forms.TenantPolicyForm) or {})
    form = forms.TenantPolicyForm(_posted(request), initial=initial)
    saved, _ = _submit(
        form,
        lambda: account_services.tenant_policy_update(
            actor=request.principal, context=context_of(request), **form.cleaned_data
        ),
    )
    if saved:
        messages.success(request, "Key policy saved.")
        return redirect("keys:policy", slug=request.tenant.slug)
    return _form_page(request, "keys/tenant_policy.html", {"form": form})


@tenant_view(roles.Action.MEMBERS_MANAGE)
@sudo_required
def member_remove_view(request, pk: int):
    """GET: confirm, listing the personal keys removal revokes. POST: remove, revoke them."""
    principal = request.principal
    target = account_selectors.member_get(principal, pk)
    if request.method != "POST":
        if not roles.can_assign(principal.role, target.role):
            raise PermissionDenied(account_services.NOT_ALLOWED_ROLE % {"role": target.role})
        keys = selectors.key_list_for_member(principal, target)
        return render(
            request, "keys/membership_confirm_remove.html", {"target": target, "keys": keys}
        )
    try:
        revoked = services.member_remove(
            actor=principal, target=target, context=context_of(request)
        )
    except ValidationError as error:
        messages.error(request, error.messages[0])
    else:
        messages.success(
            request,
            f"{target.user.email} no longer has access to this tenant; "
            f"{len(revoked)} personal key(s) revoked.",
        )
    return redirect("accounts:members", slug=request.tenant.slug)


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
