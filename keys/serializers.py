"""API v1 input and output. Module-level, uniquely named serializers (one OpenAPI component
each). No serializer ever reads a key's digest."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.roles import Role
from keys.scopes import ceiling_for

KEY_KINDS = ["personal", "service"]
KEY_STATUSES = ["active", "expiring", "rotated", "expired", "revoked"]
PRINCIPAL_KINDS = ["user", "service_id"]


class ErrorOutputSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable machine-readable code, e.g. invalid_token.")
    detail = serializers.CharField(help_text="Human-readable explanation.")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Validation errors by field (400 invalid only).",
    )


class KeyOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.SerializerMethodField()
    owner = serializers.SerializerMethodField()
    scopes = serializers.ListField(child=serializers.CharField())
    hint = serializers.CharField()
    status = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)
    last_used_at = serializers.DateTimeField(allow_null=True)
    last_used_ip = serializers.IPAddressField(allow_null=True)
    allowed_ips = serializers.ListField(child=serializers.CharField())

    @extend_schema_field(serializers.ChoiceField(choices=KEY_KINDS))
    def get_kind(self, key) -> str:
        return "personal" if key.is_personal else "service"

    def get_owner(self, key) -> str:
        return key.owner.label

    @extend_schema_field(serializers.ChoiceField(choices=KEY_STATUSES))
    def get_status(self, key) -> str:
        return key.status()


class KeyRevokeInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class PrincipalOutputSerializer(serializers.Serializer):
    kind = serializers.SerializerMethodField()
    id = serializers.SerializerMethodField()
    label = serializers.SerializerMethodField()

    @extend_schema_field(serializers.ChoiceField(choices=PRINCIPAL_KINDS))
    def get_kind(self, principal) -> str:
        return "user" if principal.user is not None else "service_id"

    def get_id(self, principal) -> int:
        return (principal.user or principal.service_id).pk

    def get_label(self, principal) -> str:
        return (principal.user or principal.service_id).label


class WhoamiKeyOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    hint = serializers.CharField()
    scopes = serializers.ListField(child=serializers.CharField())
    effective_scopes = serializers.SerializerMethodField(
        help_text="The key's scopes that its owner's current role still allows."
    )
    expires_at = serializers.DateTimeField(allow_null=True)

    def get_effective_scopes(self, key) -> list[str]:
        ceiling = ceiling_for(key.principal.role)
        return [s for s in key.scopes if s in ceiling]


class WhoamiOutputSerializer(serializers.Serializer):
    """Built from the request's key, which carries its principal."""

    principal = PrincipalOutputSerializer()
    tenant = serializers.CharField(source="tenant.slug")
    role = serializers.CharField(source="principal.role")
    key = WhoamiKeyOutputSerializer(source="*")


class ServiceIdOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    role = serializers.ChoiceField(choices=Role.choices)
    is_active = serializers.BooleanField()
    created_at = serializers.DateTimeField()


class ServiceIdCreateInputSerializer(serializers.Serializer):
    name = serializers.SlugField(max_length=64)
    role = serializers.ChoiceField(choices=Role.choices)
    description = serializers.CharField(max_length=300, required=False, allow_blank=True)


class ServiceIdUpdateInputSerializer(serializers.Serializer):
    description = serializers.CharField(max_length=300, required=False, allow_blank=True)
    role = serializers.ChoiceField(choices=Role.choices, required=False)
    is_active = serializers.BooleanField(required=False)


class MemberOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField(source="user.email")
    full_name = serializers.CharField(source="user.full_name")
    role = serializers.ChoiceField(choices=Role.choices)
    created_at = serializers.DateTimeField()


class KeyUsageDayOutputSerializer(serializers.Serializer):
    day = serializers.DateField()
    requests = serializers.IntegerField(help_text="Requests made with the key, denied included.")
    denied = serializers.IntegerField()


class KeyClientIpOutputSerializer(serializers.Serializer):
    ip = serializers.IPAddressField()
    first_seen_at = serializers.DateTimeField()
    last_seen_at = serializers.DateTimeField()
    requests = serializers.IntegerField()


class KeyScopeUseOutputSerializer(serializers.Serializer):
    scope = serializers.CharField()
    last_used_at = serializers.DateTimeField()


class KeyRequestOutputSerializer(serializers.Serializer):
    """One API request made with the key, from the audit log."""

    id = serializers.IntegerField()
    occurred_at = serializers.DateTimeField()
    action = serializers.CharField()
    outcome = serializers.CharField()
    method = serializers.CharField(source="metadata.method", default="")
    path = serializers.CharField(source="metadata.path", default="")
    status = serializers.IntegerField(source="metadata.status", default=None, allow_null=True)
    reason = serializers.CharField(source="metadata.reason", default="")
    ip = serializers.IPAddressField(allow_null=True)
    request_id = serializers.CharField()


class KeyUsageOutputSerializer(serializers.Serializer):
    """Counts come from the daily rollup (keys_maintain); requests from the audit log."""

    key = serializers.IntegerField(source="key.pk")
    days = KeyUsageDayOutputSerializer(many=True, help_text="The last 30 days (UTC), oldest first.")
    client_ips = KeyClientIpOutputSerializer(many=True)
    scopes_used = KeyScopeUseOutputSerializer(many=True)
    recent_requests = KeyRequestOutputSerializer(
        many=True, help_text="The latest 50, newest first."
    )


class LeakReportItemInputSerializer(serializers.Serializer):
    """One exposed token, as secret scanners report it."""

    token = serializers.CharField(help_text="The exposed token.")
    type = serializers.CharField(required=False, help_text="The scanner's name for its kind.")
    url = serializers.CharField(required=False, help_text="Where it was found.")
    source = serializers.CharField(required=False, help_text="e.g. content, commit, gist.")


class LeakFindingOutputSerializer(serializers.Serializer):
    token_hint = serializers.CharField(
        allow_null=True, help_text="The token's hint (never the token); null if not a Keyward key."
    )
    is_true_positive = serializers.BooleanField(help_text="The token is a key Keyward issued.")
    action = serializers.ChoiceField(
        choices=["revoked", "notified", "revoked_and_notified", "none"],
        help_text="What the tenant's leak policy did (none: not a key, or no longer usable).",
    )
