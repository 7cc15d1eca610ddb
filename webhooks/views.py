"""Portal pages of webhooks: owners and admins add endpoints (sudo), read each one's delivery
log, send a test event, rotate the secret (sudo), enable again or delete."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts import roles
from accounts.decorators import sudo_detour, sudo_fresh, tenant_view
from accounts.forms import add_errors
from common.request import context_of
from webhooks import selectors, services
from webhooks.events import EVENTS
from webhooks.forms import EndpointForm

MANAGE = roles.Action.KEYS_MANAGE_ALL


def _secret_page(request, endpoint, secret: str, *, rotated: bool):
    response = render(
        request,
        "webhooks/webhookendpoint_secret.html",
        {"endpoint": endpoint, "secret": secret, "rotated": rotated},
    )
    response["Cache-Control"] = "no-store"
    return response


@tenant_view(MANAGE)
def endpoint_list_view(request):
    form = EndpointForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if not sudo_fresh(request):
            return sudo_detour(request)  # the new secret is shown on the answer
        if form.is_valid():
            try:
                endpoint, secret = services.endpoint_create(
                    actor=request.principal, context=context_of(request), **form.cleaned_data
                )
            except ValidationError as error:
                add_errors(form, error)
            else:
                return _secret_page(request, endpoint, secret, rotated=False)
        status = 400
    context = {"endpoints": selectors.endpoint_list(request.principal), "form": form}
    return render(request, "webhooks/webhookendpoint_list.html", context, status=status)


@tenant_view(MANAGE)
def endpoint_detail_view(request, pk: int):
    endpoint = selectors.endpoint_get(request.principal, pk)
    context = {
        "endpoint": endpoint,
        "events": [(name, EVENTS[name]) for name in endpoint.events if name in EVENTS],
        "deliveries": selectors.delivery_log(endpoint),
    }
    return render(request, "webhooks/webhookendpoint_detail.html", context)


def _back(request, endpoint):
    return redirect("webhooks:detail", slug=request.tenant.slug, pk=endpoint.pk)


@require_POST
@tenant_view(MANAGE)
def endpoint_test_view(request, pk: int):
    endpoint = selectors.endpoint_get(request.principal, pk)
    services.endpoint_send_test(
        actor=request.principal, endpoint=endpoint, context=context_of(request)
    )
    messages.success(request, "Test event queued: its delivery appears in the log below.")
    return _back(request, endpoint)


@require_POST
@tenant_view(MANAGE)
def endpoint_rotate_view(request, pk: int):
    endpoint = selectors.endpoint_get(request.principal, pk)
    if not sudo_fresh(request):
        return sudo_detour(request)
    secret = services.endpoint_rotate_secret(
        actor=request.principal, endpoint=endpoint, context=context_of(request)
    )
    endpoint.refresh_from_db()
    return _secret_page(request, endpoint, secret, rotated=True)


@require_POST
@tenant_view(MANAGE)
def endpoint_enable_view(request, pk: int):
    endpoint = selectors.endpoint_get(request.principal, pk)
    if not sudo_fresh(request):
        return sudo_detour(request)
    services.endpoint_enable(
        actor=request.principal, endpoint=endpoint, context=context_of(request)
    )
    messages.success(request, "Endpoint enabled: new events are delivered to it again.")
    return _back(request, endpoint)


@require_POST
@tenant_view(MANAGE)
def endpoint_delete_view(request, pk: int):
    endpoint = selectors.endpoint_get(request.principal, pk)
    services.endpoint_delete(
        actor=request.principal, endpoint=endpoint, context=context_of(request)
    )
    messages.success(request, f"Endpoint {endpoint.url} deleted.")
    return redirect("webhooks:list", slug=request.tenant.slug)
