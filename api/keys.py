"""API v1 for keys: one thin view per operation, for bots and services calling with a Bearer key,
and the signed leak reports of secret scanners.

Each view validates its input, calls one selector or service with the request's principal
(``request.auth.principal``) and returns its output serializer. Another tenant's object is a 404.
Serializers are module-level and uniquely named (one OpenAPI component each); none ever reads a
key's digest.
"""

from django.core.exceptions import ValidationError
from django.utils import timezone
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_field,
)
from rest_framework import exceptions, serializers
from rest_framework.response import Response

import audit
from api.base import KeywardApiView
from api.errors import KeysCannotCreateKeys
from api.schema import ErrorOutputSerializer, responses
from audit.actions import Outcome
from audit.services import Actor
from common import ratelimit
from common.request import context_of, decide
from keys import conf as keys_conf
from keys import leaks, selectors, services
from keys.models import KeyStatus
from keys.scopes import ceiling_for

KEY_KINDS = ["personal", "service"]
KEY_STATUSES = KeyStatus.values
PRINCIPAL_KINDS = ["user", "service_id"]


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


class GithubLeakFeedbackOutputSerializer(serializers.Serializer):
    """GitHub's secret scanning feedback, for a report signed with GitHub's headers."""

    token_hash = serializers.CharField(help_text="SHA-256 of the token, hex (what Keyward stores).")
    token_type = serializers.CharField(help_text="The type the token was reported as.")
    label = serializers.ChoiceField(choices=["true_positive", "false_positive"])


def _leak_signature_headers() -> list:
    return [
        OpenApiParameter(name, str, OpenApiParameter.HEADER, required=False, description=text)
        for name, text in (
            (leaks.KEY_ID_HEADER, "Keyward format: the signer's key id."),
            (leaks.SIGNATURE_HEADER, "Keyward format: base64 DER ECDSA P-256 signature."),
            (leaks.GITHUB_KEY_ID_HEADER, "GitHub format: key_identifier of GitHub's signer."),
            (leaks.GITHUB_SIGNATURE_HEADER, "GitHub format: base64 DER ECDSA P-256 signature."),
        )
    ]


class WhoamiApi(KeywardApiView):
    """Describe the key making this request: its principal, tenant, role, scopes and expiry."""

    required_scopes: list[str] = []

    @extend_schema(
        operation_id="whoami", tags=["whoami"], responses=responses(200, WhoamiOutputSerializer)
    )
    def get(self, request):
        return Response(whoami_data(request.auth))


_DATETIME = serializers.DateTimeField()


def whoami_data(key) -> dict:
    """What ``WhoamiOutputSerializer(key).data`` gives (the schema), built directly: a bot may
    call whoami on every start, and the nested serializers cost more than the rest of the view
    (tests/api/test_keys.py holds the two equal)."""
    principal = key.principal
    owner = principal.user or principal.service_id
    ceiling = ceiling_for(principal.role)
    return {
        "principal": {
            "kind": "user" if principal.user is not None else "service_id",
            "id": owner.pk,
            "label": owner.label,
        },
        "tenant": key.tenant.slug,
        "role": principal.role,
        "key": {
            "id": key.pk,
            "name": key.name,
            "hint": key.hint,
            "scopes": [str(scope) for scope in key.scopes],
            "effective_scopes": [scope for scope in key.scopes if scope in ceiling],
            "expires_at": _DATETIME.to_representation(key.expires_at) if key.expires_at else None,
        },
    }


class KeyCreateRefusedApi(KeywardApiView):
    """Refuse to create keys: keys are issued only in the portal, behind a second factor."""

    required_scopes = {"POST": []}

    @extend_schema(
        operation_id="keys_create",
        tags=["keys"],
        request=None,
        responses=responses(
            403, OpenApiResponse(ErrorOutputSerializer, description="keys_cannot_create_keys")
        ),
        description="Always 403 `keys_cannot_create_keys`: a key can never create another key.",
    )
    def post(self, request):
        # SECURITY: whatever its scopes, a key never mints a key (no 2FA stands behind it).
        raise KeysCannotCreateKeys()


class KeyListFilterInputSerializer(serializers.Serializer):
    """The keys list's query parameters (each optional; all given must hold)."""

    state = serializers.ChoiceField(
        choices=KEY_STATUSES, required=False, help_text="Keys in this state (as `status`)."
    )
    last_used_before = serializers.DateTimeField(
        required=False,
        help_text="Keys last used before this moment (ISO 8601); never-used keys are left out.",
    )
    expires_before = serializers.DateTimeField(
        required=False,
        help_text="Keys that expire (or expired) before this moment (ISO 8601).",
    )


class KeyListApi(KeyCreateRefusedApi):
    """List the keys this principal may see: its own; admins and owners: the tenant's.
    Filter with `state`, `last_used_before` and `expires_before`; bad values are a 400."""

    required_scopes = {"GET": ["keys:read"], "POST": []}

    @extend_schema(
        operation_id="keys_list",
        tags=["keys"],
        parameters=[KeyListFilterInputSerializer],
        responses=responses(200, KeyOutputSerializer(many=True), 400),
    )
    def get(self, request):
        filters = KeyListFilterInputSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        keys = selectors.key_list_filtered(request.auth.principal, **filters.validated_data)
        return Response(KeyOutputSerializer(keys, many=True).data)


class KeyDetailApi(KeywardApiView):
    """Show one key's metadata (never its secret)."""

    required_scopes = ["keys:read"]

    @extend_schema(
        operation_id="keys_retrieve",
        tags=["keys"],
        responses=responses(200, KeyOutputSerializer, 404),
    )
    def get(self, request, pk: int):
        key = selectors.key_get(request.auth.principal, pk)
        return Response(KeyOutputSerializer(key).data)


class KeyRevokeApi(KeywardApiView):
    """Revoke a key now, irreversibly (own keys; admins and owners: any key of the tenant)."""

    required_scopes = ["keys:revoke"]

    @extend_schema(
        operation_id="keys_revoke",
        tags=["keys"],
        request=KeyRevokeInputSerializer,
        responses=responses(200, KeyOutputSerializer, 400, 404, 415),
    )
    def post(self, request, pk: int):
        data = KeyRevokeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        principal = request.auth.principal
        key = selectors.key_get(principal, pk)
        services.key_revoke(
            actor=principal, key=key, context=context_of(request), **data.validated_data
        )
        return Response(KeyOutputSerializer(key).data)


class KeyUsageApi(KeywardApiView):
    """Show a key's requests per day (last 30 days), client addresses, used scopes and latest
    requests. Counts are rolled up by keys_maintain, every few minutes."""

    required_scopes = ["keys:read"]

    @extend_schema(
        operation_id="keys_usage",
        tags=["keys"],
        responses=responses(200, KeyUsageOutputSerializer, 404),
    )
    def get(self, request, pk: int):
        key = selectors.key_get(request.auth.principal, pk)
        return Response(KeyUsageOutputSerializer(_usage(request.auth.principal, key)).data)


def _usage(principal, key) -> dict:
    uses = selectors.key_scope_uses(key)
    return {
        "key": key,
        "days": selectors.key_usage_days(key, today=timezone.now().date()),
        "client_ips": selectors.key_client_ips(key),
        "scopes_used": [{"scope": s, "last_used_at": at} for s, at in sorted(uses.items())],
        "recent_requests": selectors.key_recent_requests(principal, key),
    }


LEAK_REFUSED = "The report is not signed by a configured leak-report key."


class InvalidSignature(exceptions.APIException):
    """401 ``invalid_signature``: unsigned, badly signed, or signed by an unknown key id."""

    status_code = 401
    default_detail = LEAK_REFUSED
    default_code = "invalid_signature"
    auth_header = f'{leaks.SIGNATURE_HEADER} realm="leaks"'


class PayloadTooLarge(exceptions.APIException):
    status_code = 413
    default_detail = leaks.TOO_LARGE
    default_code = "payload_too_large"


class InvalidReport(exceptions.APIException):
    """400: a signed report that is not a list of tokens (the code says why)."""

    status_code = 400
    default_code = "invalid"


def _signed_body(request) -> bytes:
    """Return the request's body; refuse one larger than a leak report may be (413)."""
    length = request.META.get("CONTENT_LENGTH") or "0"
    if not length.isdigit() or int(length) > leaks.MAX_BODY_BYTES:
        raise PayloadTooLarge()
    body = request.body
    if len(body) > leaks.MAX_BODY_BYTES:
        raise PayloadTooLarge()
    return body


def _parse_report(body: bytes) -> list[dict]:
    try:
        return leaks.parse_report(body)
    except ValidationError as error:
        raise InvalidReport(error.messages[0], code=error.code or "invalid") from None


def _github_format(request) -> bool:
    """A report in GitHub's format: it carries either of GitHub's signature headers."""
    return (
        leaks.GITHUB_KEY_ID_HEADER in request.headers
        or leaks.GITHUB_SIGNATURE_HEADER in request.headers
    )


class LeakReportApi(KeywardApiView):
    """Receive a secret scanner's report of exposed tokens; apply each tenant's leak policy.

    No Bearer key: the raw body is signed with ECDSA P-256 / SHA-256, the base64 DER signature in
    `Keyward-Signature`, the signer's key id in `Keyward-Key-Id`. The answer has one finding per
    reported token, in order, with the token's hint only.

    GitHub's secret scanning partner format: the same body and signature in
    `Github-Public-Key-Signature`, GitHub's key id in `Github-Public-Key-Identifier` (keys from
    KEYWARD_LEAK_REPORT_GITHUB_KEYS); the answer is then GitHub's feedback array
    (schema `GithubLeakFeedbackOutput`): `token_hash`, `token_type`, `label`.
    """

    # SECURITY: authenticated by the report's signature instead of a key; refused reports are
    # audited and throttled per client address like failed key authentications.
    authentication_classes: list = []
    permission_classes: list = []
    throttle_classes: list = []
    required_scopes: list[str] = []

    @extend_schema(
        operation_id="leaks_report",
        tags=["leaks"],
        auth=[],
        request=LeakReportItemInputSerializer(many=True),
        parameters=_leak_signature_headers(),
        responses=responses(
            200,
            OpenApiResponse(
                PolymorphicProxySerializer(
                    component_name="LeakReportAnswer",
                    serializers=[LeakFindingOutputSerializer, GithubLeakFeedbackOutputSerializer],
                    resource_type_field_name=None,
                    many=True,
                ),
                description="Keyward findings; GitHub's feedback for a report in its format.",
            ),
            400,
            413,
        ),
    )
    def post(self, request):
        body = _signed_body(request)
        github = _github_format(request)
        signer = self._verify(request, body, github)
        report = _parse_report(body)
        findings = leaks.key_leak_report(report=report, signer=signer, context=context_of(request))
        if github:
            return Response(leaks.github_feedback(report, findings))
        return Response(
            LeakFindingOutputSerializer([f.as_dict() for f in findings], many=True).data
        )

    @classmethod
    def _verify(cls, request, body: bytes, github: bool) -> str:
        """Return the report's signer; refuse (401, audited) a report it did not sign."""
        try:
            if github:
                return leaks.verify_github_report(
                    body,
                    request.headers.get(leaks.GITHUB_KEY_ID_HEADER),
                    request.headers.get(leaks.GITHUB_SIGNATURE_HEADER),
                )
            return leaks.verify_report(
                body,
                request.headers.get(leaks.KEY_ID_HEADER),
                request.headers.get(leaks.SIGNATURE_HEADER),
            )
        except leaks.ReportRefused as refused:
            cls._refuse(request, refused, len(body), github)

    @staticmethod
    def _refuse(request, refused: "leaks.ReportRefused", size: int, github: bool = False):
        ip = context_of(request).ip
        wait = ratelimit.hit("leak-report", ip or "unknown", keys_conf.settings.FAILED_AUTH_RATE)
        if wait is not None:  # over the limit: refused without an event (no audit flooding)
            raise exceptions.Throttled(wait=wait)
        audit.record(
            "key.leak_report_refused",
            actor=Actor.anonymous(),
            outcome=Outcome.DENIED,
            context=context_of(request),
            metadata={
                "reason": refused.reason,
                "key_id": refused.key_id,
                "bytes": size,
                "format": "github" if github else "keyward",
            },
        )
        decide(request, reason=refused.reason, record=False, recorded=True)
        raise InvalidSignature()
