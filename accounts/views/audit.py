"""The tenant's audit log in the portal: filtered, keyset-paginated list, event detail,
streamed exports."""

import csv
import json

from django.http import StreamingHttpResponse
from django.shortcuts import render
from django.utils.http import urlencode

from accounts import roles
from accounts.decorators import tenant_view
from audit.forms import AuditFilterForm
from audit.selectors import event_get, event_list
from audit.stream import event_as_dict

PAGE_SIZE = 50
EXPORT_COLUMNS = [
    "id",
    "occurred_at",
    "tenant",
    "actor_kind",
    "actor_id",
    "actor_label",
    "action",
    "target_kind",
    "target_id",
    "target_label",
    "outcome",
    "ip",
    "user_agent",
    "request_id",
    "metadata",
]


def _filtered(request):
    form = AuditFilterForm(request.GET or None)
    filters = form.filters() if form.is_valid() else {}
    return form, filters


@tenant_view(roles.Action.AUDIT_READ)
def event_list_view(request):
    form, filters = _filtered(request)
    status = 400 if form.is_bound and not form.is_valid() else 200
    page = list(event_list(request.tenant, **filters)[: PAGE_SIZE + 1])
    older = None
    if len(page) > PAGE_SIZE:
        page = page[:PAGE_SIZE]
        query = {k: v for k, v in request.GET.items() if k != "before"}
        older = urlencode({**query, "before": page[-1].pk})
    export_query = urlencode({k: v for k, v in request.GET.items() if k != "before"})
    return render(
        request,
        "audit/auditevent_list.html",
        {"form": form, "events": page, "older": older, "export_query": export_query},
        status=status,
    )


@tenant_view(roles.Action.AUDIT_READ)
def event_detail_view(request, pk: int):
    event = event_get(request.tenant, pk)
    return render(
        request,
        "audit/auditevent_detail.html",
        {"event": event, "metadata": json.dumps(event.metadata, indent=2, sort_keys=True)},
    )


class _Echo:
    def write(self, value):
        return value


def _rows(tenant, filters):
    # Constant memory: a server-side cursor (PostgreSQL) streams rows in chunks.
    events = event_list(tenant, **filters).select_related("tenant").iterator(chunk_size=2000)
    for event in events:
        yield event_as_dict(event)


def _csv_safe(value):
    # SECURITY: a cell starting with = + - @ would run as a formula in a spreadsheet.
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv_lines(rows):
    writer = csv.writer(_Echo())
    yield writer.writerow(EXPORT_COLUMNS)
    for row in rows:
        flat = {
            **row,
            "actor_kind": row["actor"]["kind"],
            "actor_id": row["actor"]["id"],
            "actor_label": row["actor"]["label"],
            "target_kind": row["target"]["kind"],
            "target_id": row["target"]["id"],
            "target_label": row["target"]["label"],
            "metadata": json.dumps(row["metadata"], sort_keys=True),
        }
        yield writer.writerow([_csv_safe(flat[c]) for c in EXPORT_COLUMNS])


def _json_lines(rows):
    return (json.dumps(row, default=str) + "\n" for row in rows)


EXPORTS = {  # the URL's format (and file extension): (lines of rows, content type)
    "csv": (_csv_lines, "text/csv; charset=utf-8"),
    "jsonl": (_json_lines, "application/x-ndjson"),
}


@tenant_view(roles.Action.AUDIT_READ)
def event_export_view(request, fmt: str):
    _, filters = _filtered(request)
    filters.pop("before", None)
    lines, content_type = EXPORTS[fmt]
    rows = _rows(request.tenant, filters)
    response = StreamingHttpResponse(lines(rows), content_type=content_type)
    name = f"keyward-audit-{request.tenant.slug}.{fmt}"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "no-store"
    return response
