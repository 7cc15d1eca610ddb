"""Audit API input and output."""

from rest_framework import serializers

from audit import cursors
from audit.actions import ACTIONS, Outcome

INVALID_CURSOR = "Not a cursor returned by this API."


class AuditEventListInputSerializer(serializers.Serializer):
    cursor = serializers.CharField(required=False, max_length=40)
    since = serializers.DateTimeField(required=False)
    action = serializers.ChoiceField(choices=sorted(ACTIONS), required=False)
    actor = serializers.CharField(required=False, max_length=200)
    key = serializers.IntegerField(required=False, min_value=1)
    outcome = serializers.ChoiceField(choices=[c for c, _ in Outcome.CHOICES], required=False)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=500, default=100)

    def validate_cursor(self, value: str) -> int:
        after = cursors.decode(value)
        if after is None:
            raise serializers.ValidationError(INVALID_CURSOR, code="invalid_cursor")
        return after


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
