"""Webhook reads: a tenant's endpoints and each endpoint's delivery log."""

from django.http import Http404

from accounts.principals import Principal
from webhooks.models import WebhookDelivery, WebhookEndpoint

LOG_SIZE = 50


def endpoint_list(actor: Principal):
    """Return the endpoints of the actor's tenant, oldest first."""
    return WebhookEndpoint.objects.for_tenant(actor.tenant).order_by("id")


def endpoint_get(actor: Principal, pk: int) -> WebhookEndpoint:
    """Return one endpoint of the actor's tenant, or raise Http404 (another tenant's too)."""
    endpoint = endpoint_list(actor).filter(pk=pk).first()
    if endpoint is None:
        raise Http404("No such webhook endpoint.")
    return endpoint


def delivery_log(endpoint: WebhookEndpoint, limit: int = LOG_SIZE) -> list[WebhookDelivery]:
    """Return the endpoint's latest deliveries, newest first, with their attempts."""
    return list(
        WebhookDelivery.objects.filter(endpoint=endpoint)
        .prefetch_related("attempts")
        .order_by("-id")[:limit]
    )
