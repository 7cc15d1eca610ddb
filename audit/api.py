"""GET /api/v1/audit-events/: the tenant's events for SIEM pulls, oldest first, keyset paginated."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from audit import cursors
from audit.selectors import event_page_ascending
from audit.serializers import AuditEventListInputSerializer, AuditEventPageOutputSerializer
from audit.services import event_as_dict
from keys.api import _responses
from keys.api_base import KeywardApiView


class AuditEventListApi(KeywardApiView):
    """List the tenant's audit events, oldest first, after ``cursor``.

    Events newer than KEYWARD_AUDIT_API_LAG seconds are held back, so an event whose id was
    taken before a slower transaction committed is never skipped by a cursor that moved past it.
    """

    required_scopes = ["audit:read"]

    @extend_schema(
        operation_id="audit_events_list",
        tags=["audit"],
        parameters=[AuditEventListInputSerializer],
        responses=_responses(200, AuditEventPageOutputSerializer, 400),
    )
    def get(self, request):
        query = AuditEventListInputSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        filters = dict(query.validated_data)
        limit = filters.pop("limit")
        after = filters.pop("cursor", None)
        horizon = timezone.now() - timedelta(seconds=settings.KEYWARD_AUDIT_API_LAG)
        events = list(
            event_page_ascending(
                request.auth.principal, after=after, horizon=horizon, limit=limit + 1, **filters
            )
        )
        has_more = len(events) > limit
        events = events[:limit]
        last = events[-1].pk if events else after
        return Response(
            {
                "results": [event_as_dict(e) for e in events],
                "next_cursor": cursors.encode(last) if last is not None else None,
                "has_more": has_more,
            }
        )
