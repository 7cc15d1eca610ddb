"""The key inventory as CSV, streamed in constant memory: rows come from ``.iterator()`` and go
out one line at a time, so exporting a million keys holds one chunk of rows at once."""

import csv
from collections.abc import Iterable, Iterator
from datetime import datetime

from django.db import transaction
from django.utils import timezone

import audit
from accounts import roles
from accounts.principals import Principal
from audit.services import Actor
from common.request import RequestContext
from keys.models import ApiKey

COLUMNS = (
    "id",
    "name",
    "hint",
    "owner",
    "kind",
    "scopes",
    "created_at",
    "expires_at",
    "last_used_at",
    "last_used_ip",
    "status",
    "tenant",
)
CHUNK = 1000
EXPORT_DENIED = "Only the tenant's owners and admins export its keys."
# Spreadsheet programs run a cell that starts with one of these as a formula.
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


class _Line:
    """A file-like object whose ``write`` hands back what it was given (Django's CSV example)."""

    def write(self, value: str) -> str:
        return value


def _cell(value) -> str:
    text = "" if value is None else str(value)
    # SECURITY: a key named "=HYPERLINK(…)" must not run in whoever opens the export.
    return "'" + text if text.startswith(_FORMULA) else text


def _when(moment: datetime | None) -> str:
    return moment.isoformat() if moment else ""


def inventory_lines(keys: Iterable[ApiKey], *, now: datetime | None = None) -> Iterator[str]:
    """Yield the CSV header, then one line per key (owner, kind, scopes, dates, last IP,
    status); never a digest or a token."""
    now = now or timezone.now()
    writer = csv.writer(_Line())
    yield writer.writerow(COLUMNS)
    for key in keys:
        owner = key.user.email if key.user_id else f"service:{key.service_id.name}"
        yield writer.writerow(
            [
                key.pk,
                _cell(key.name),
                key.hint,
                _cell(owner),
                "personal" if key.user_id else "service",
                " ".join(key.scopes),
                _when(key.created_at),
                _when(key.expires_at),
                _when(key.last_used_at),
                key.last_used_ip or "",
                key.status(now),
                key.tenant.slug,
            ]
        )


def inventory_queryset(queryset):
    """Return ``queryset`` ready to stream: the joins the lines need, in id order, in chunks."""
    return (
        queryset.select_related("tenant", "user", "service_id")
        .defer("digest")
        .order_by("id")
        .iterator(chunk_size=CHUNK)
    )


@transaction.atomic
def key_inventory_export(
    *, actor: Principal | Actor, tenant=None, queryset=None, context: RequestContext | None = None
) -> Iterator[str]:
    """Record ``key.inventory_exported`` and return the CSV lines of the tenant's keys (an
    operator: of ``queryset``). Raises PermissionDenied unless an owner or admin."""
    if isinstance(actor, Principal):
        if actor.key is not None or not roles.may(actor.role, roles.Action.KEYS_MANAGE_ALL):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied(EXPORT_DENIED)
        tenant = actor.tenant
        queryset = ApiKey.objects.for_tenant(tenant)
    audit.record(
        "key.inventory_exported",
        actor=actor,
        tenant=tenant,
        target=tenant,
        context=context,
        metadata={"format": "csv", "scope": "tenant" if tenant else "selection"},
    )
    return inventory_lines(inventory_queryset(queryset))
