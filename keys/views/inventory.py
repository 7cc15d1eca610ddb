"""The tenant's key inventory as a CSV download, streamed (owners and admins)."""

from django.http import StreamingHttpResponse
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts import roles
from accounts.decorators import tenant_view
from common.request import context_of
from keys.services.inventory import key_inventory_export


def csv_response(lines, filename: str) -> StreamingHttpResponse:
    """Return ``lines`` as a streamed CSV attachment that no cache keeps."""
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


@tenant_view(roles.Action.KEYS_MANAGE_ALL)
@require_POST
def key_export_view(request):
    """POST (CSRF-protected, and it records ``key.inventory_exported``): the CSV download."""
    lines = key_inventory_export(actor=request.principal, context=context_of(request))
    day = timezone.now().strftime("%Y-%m-%d")
    return csv_response(lines, f"keys-{request.tenant.slug}-{day}.csv")
