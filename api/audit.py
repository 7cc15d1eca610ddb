"""API v1 for the audit log: GET /api/v1/audit-events/, the tenant's events for SIEM pulls,
in commit order, keyset paginated, each event exactly once."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from api.base import KeywardApiView
from api.schema import responses
from audit import cursors
from audit.actions import ACTIONS, Outcome
from audit.selectors import event_feed, position_of
from audit.stream import event_as_dict

INVALID_CURSOR = "Not a cursor returned by this API."


class AuditEventListInputSerializer(serializers.Serializer):
    cursor = serializers.CharField(required=False, max_length=60)
    since = serializers.DateTimeField(required=False)
    action = serializers.ChoiceField(choices=sorted(ACTIONS), required=False)
    actor = serializers.CharField(required=False, max_length=200)
    key = serializers.IntegerField(required=False, min_value=1)
    outcome = serializers.ChoiceField(choices=[c for c, _ in Outcome.CHOICES], required=False)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=500, default=100)

    def validate_cursor(self, value: str) -> tuple[int, int]:
        position = cursors.decode(value)
        if position is not None and position[0] is None:  # a version 1 cursor: an event id
            position = position_of(position[1])
        if position is None:
            raise serializers.ValidationError(INVALID_CURSOR, code="invalid_cursor")
        return position


class AuditActorOutputSerializer(serializers.Serializer):
    kind = serializers.CharField()
    id = serializers.CharField()
    label = serializers.CharField()


class AuditEventOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    occurred_at = serializers.DateTimeField()
    tenant = serializers.CharField(allow_null=True)
    actor = AuditActorOutputSerializer()
    action = serializers.CharField()
    target = AuditActorOutputSerializer()
    outcome = serializers.CharField()
    ip = serializers.CharField(allow_null=True)
    user_agent = serializers.CharField()
    request_id = serializers.CharField()
    metadata = serializers.DictField()


class AuditEventPageOutputSerializer(serializers.Serializer):
    results = AuditEventOutputSerializer(many=True)
    next_cursor = serializers.CharField(
        allow_null=True,
        help_text="Pass as `cursor` to continue after the last event returned (or to poll for "
        "new ones when `has_more` is false). Null only when nothing has been returned yet.",
    )
    has_more = serializers.BooleanField()


class AuditEventListApi(KeywardApiView):
    """List the tenant's audit events in commit order, after ``cursor``.

    Each event is delivered exactly once to a client that follows ``next_cursor``: the feed
    hands out only events whose transaction has ended before any still open began, so no event
    can later commit behind the cursor.
    """

    required_scopes = ["audit:read"]

    @extend_schema(
        operation_id="audit_events_list",
        tags=["audit"],
        parameters=[AuditEventListInputSerializer],
        responses=responses(200, AuditEventPageOutputSerializer, 400),
    )
    def get(self, request):
        query = AuditEventListInputSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        page = event_feed(request.auth.tenant, **query.validated_data)
        cursor = cursors.encode(page.last) if page.last is not None else None
        results = [event_as_dict(e) for e in page.events]
        return Response({"results": results, "next_cursor": cursor, "has_more": page.has_more})
