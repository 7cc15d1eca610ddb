"""API v1 views: one thin view per operation, for bots and services calling with a Bearer key.

Each view validates its input, calls one selector or service with the request's principal
(``request.auth.principal``) and returns its output serializer. Another tenant's object is a 404.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiResponse, extend_schema
from drf_spectacular.views import SpectacularSwaggerView
from rest_framework import exceptions, status
from rest_framework.response import Response

import audit
from accounts import selectors as account_selectors
from accounts import services as account_services
from audit.actions import Outcome
from audit.services import Actor
from config import ratelimit
from config.request import client_ip
from keys import leaks, selectors, services
from keys.api_base import KeywardApiView
from keys.exceptions import KeysCannotCreateKeys
from keys.serializers import (
    ErrorOutputSerializer,
    KeyOutputSerializer,
    KeyRevokeInputSerializer,
    KeyUsageOutputSerializer,
    LeakFindingOutputSerializer,
    LeakReportItemInputSerializer,
    MemberOutputSerializer,
    ServiceIdCreateInputSerializer,
    ServiceIdOutputSerializer,
    ServiceIdUpdateInputSerializer,
    WhoamiOutputSerializer,
)

API_NOT_FOUND = "No such API endpoint."

_ERRORS = {
    400: "invalid / invalid_request: the input or the request is unacceptable.",
    401: "not_authenticated / invalid_token: no key, or a key that cannot be used.",
    403: "insufficient_scope (see WWW-Authenticate) or permission_denied.",
    404: "not_found: no such object in this key's tenant.",
    413: "payload_too_large: the body is larger than the endpoint accepts.",
    415: "unsupported_media_type: send the body as application/json.",
    429: "throttled: see Retry-After.",
}


def _responses(ok_status: int, ok, *errors: int) -> dict:
    codes = sorted({401, 403, 429, *errors} - {ok_status})
    return {
        ok_status: ok,
        **{c: OpenApiResponse(ErrorOutputSerializer, description=_ERRORS[c]) for c in codes},
    }


@csrf_exempt  # no cookie authenticates on /api/; CSRF's HTML 403 would hide the JSON 404
def api_not_found(request, *args, **kwargs):
    """Answer any unknown /api/ path with the API's JSON 404, never the portal's HTML page."""
    return JsonResponse({"code": "not_found", "detail": API_NOT_FOUND}, status=404)


class WhoamiApi(KeywardApiView):
    """Describe the key making this request: its principal, tenant, role, scopes and expiry."""

    required_scopes: list[str] = []

    @extend_schema(
        operation_id="whoami", tags=["whoami"], responses=_responses(200, WhoamiOutputSerializer)
    )
    def get(self, request):
        return Response(WhoamiOutputSerializer(request.auth).data)


class KeyCreateRefusedApi(KeywardApiView):
    """Refuse to create keys: keys are issued only in the portal, behind a second factor."""

    required_scopes = {"POST": []}

    @extend_schema(
        operation_id="keys_create",
        tags=["keys"],
        request=None,
        responses=_responses(
            403, OpenApiResponse(ErrorOutputSerializer, description="keys_cannot_create_keys")
        ),
        description="Always 403 `keys_cannot_create_keys`: a key can never create another key.",
    )
    def post(self, request):
        # SECURITY: whatever its scopes, a key never mints a key (no 2FA stands behind it).
        raise KeysCannotCreateKeys()


class KeyListApi(KeyCreateRefusedApi):
    """List the keys this principal may see: its own; admins and owners: the tenant's."""

    required_scopes = {"GET": ["keys:read"], "POST": []}

    @extend_schema(
        operation_id="keys_list",
        tags=["keys"],
        responses=_responses(200, KeyOutputSerializer(many=True)),
    )
    def get(self, request):
        keys = selectors.key_list(request.auth.principal)
        return Response(KeyOutputSerializer(keys, many=True).data)


class KeyDetailApi(KeywardApiView):
    """Show one key's metadata (never its secret)."""

    required_scopes = ["keys:read"]

    @extend_schema(
        operation_id="keys_retrieve",
        tags=["keys"],
        responses=_responses(200, KeyOutputSerializer, 404),
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
        responses=_responses(200, KeyOutputSerializer, 400, 404, 415),
    )
    def post(self, request, pk: int):
        data = KeyRevokeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        principal = request.auth.principal
        key = selectors.key_get(principal, pk)
        services.key_revoke(actor=principal, key=key, request=request, **data.validated_data)
        return Response(KeyOutputSerializer(key).data)


class KeyUsageApi(KeywardApiView):
    """Show a key's requests per day (last 30 days), client addresses, used scopes and latest
    requests. Counts are rolled up by keys_maintain, every few minutes."""

    required_scopes = ["keys:read"]

    @extend_schema(
        operation_id="keys_usage",
        tags=["keys"],
        responses=_responses(200, KeyUsageOutputSerializer, 404),
    )
    def get(self, request, pk: int):
        principal = request.auth.principal
        key = selectors.key_get(principal, pk)
        uses = selectors.key_scope_uses(key)
        usage = {
            "key": key,
            "days": selectors.key_usage_days(key, today=timezone.now().date()),
            "client_ips": selectors.key_client_ips(key),
            "scopes_used": [{"scope": s, "last_used_at": at} for s, at in sorted(uses.items())],
            "recent_requests": selectors.key_recent_requests(principal, key),
        }
        return Response(KeyUsageOutputSerializer(usage).data)


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


class LeakReportApi(KeywardApiView):
    """Receive a secret scanner's report of exposed tokens; apply each tenant's leak policy.

    No Bearer key: the raw body is signed with ECDSA P-256 / SHA-256, the base64 DER signature in
    `Keyward-Signature`, the signer's key id in `Keyward-Key-Id`. The answer has one finding per
    reported token, in order, with the token's hint only.
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
        responses=_responses(200, LeakFindingOutputSerializer(many=True), 400, 413),
    )
    def post(self, request):
        length = request.META.get("CONTENT_LENGTH") or "0"
        if not length.isdigit() or int(length) > leaks.MAX_BODY_BYTES:
            raise PayloadTooLarge()
        body = request.body
        if len(body) > leaks.MAX_BODY_BYTES:
            raise PayloadTooLarge()
        try:
            signer = leaks.verify_report(
                body,
                request.headers.get(leaks.KEY_ID_HEADER),
                request.headers.get(leaks.SIGNATURE_HEADER),
            )
        except leaks.ReportRefused as refused:
            self._refuse(request, refused, len(body))
        try:
            report = leaks.parse_report(body)
        except ValidationError as error:
            code = error.code or "invalid"
            return Response({"code": code, "detail": error.messages[0]}, status=400)
        findings = leaks.key_leak_report(report=report, signer=signer, request=request)
        return Response(
            LeakFindingOutputSerializer([f.as_dict() for f in findings], many=True).data
        )

    @staticmethod
    def _refuse(request, refused: "leaks.ReportRefused", size: int):
        ip = client_ip(request)
        wait = ratelimit.hit("leak-report", ip or "unknown", settings.KEYWARD_FAILED_AUTH_RATE)
        if wait is not None:  # over the limit: refused without an event (no audit flooding)
            raise exceptions.Throttled(wait=wait)
        audit.record(
            "key.leak_report_refused",
            actor=Actor.anonymous(),
            outcome=Outcome.DENIED,
            request=request,
            metadata={"reason": refused.reason, "key_id": refused.key_id, "bytes": size},
        )
        request._keyward_denial = {
            "reason": refused.reason,
            "key": None,
            "record": False,
            "recorded": True,
        }
        raise InvalidSignature()


class ServiceIdListApi(KeywardApiView):
    """List the tenant's service IDs, or create one (never its keys)."""

    required_scopes = {"GET": ["service_ids:read"], "POST": ["service_ids:write"]}

    @extend_schema(
        operation_id="service_ids_list",
        tags=["service-ids"],
        responses=_responses(200, ServiceIdOutputSerializer(many=True)),
    )
    def get(self, request):
        service_ids = account_selectors.service_id_list(request.auth.principal)
        return Response(ServiceIdOutputSerializer(service_ids, many=True).data)

    @extend_schema(
        operation_id="service_ids_create",
        tags=["service-ids"],
        request=ServiceIdCreateInputSerializer,
        responses=_responses(201, ServiceIdOutputSerializer, 400, 415),
    )
    def post(self, request):
        data = ServiceIdCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        service_id = account_services.service_id_create(
            membership=request.auth.principal, request=request, **data.validated_data
        )
        return Response(ServiceIdOutputSerializer(service_id).data, status=status.HTTP_201_CREATED)


class ServiceIdDetailApi(KeywardApiView):
    """Show a service ID, or change its description, role or active flag."""

    required_scopes = {"GET": ["service_ids:read"], "PATCH": ["service_ids:write"]}

    @extend_schema(
        operation_id="service_ids_retrieve",
        tags=["service-ids"],
        responses=_responses(200, ServiceIdOutputSerializer, 404),
    )
    def get(self, request, pk: int):
        service_id = account_selectors.service_id_get(request.auth.principal, pk)
        return Response(ServiceIdOutputSerializer(service_id).data)

    @extend_schema(
        operation_id="service_ids_partial_update",
        tags=["service-ids"],
        request=ServiceIdUpdateInputSerializer,
        responses=_responses(200, ServiceIdOutputSerializer, 400, 404, 415),
    )
    def patch(self, request, pk: int):
        data = ServiceIdUpdateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        principal = request.auth.principal
        service_id = account_selectors.service_id_get(principal, pk)
        account_services.service_id_update(
            membership=principal, service_id=service_id, request=request, **data.validated_data
        )
        return Response(ServiceIdOutputSerializer(service_id).data)


class MemberListApi(KeywardApiView):
    """List the tenant's members and their roles."""

    required_scopes = ["members:read"]

    @extend_schema(
        operation_id="members_list",
        tags=["members"],
        responses=_responses(200, MemberOutputSerializer(many=True)),
    )
    def get(self, request):
        members = account_selectors.member_list(request.auth.principal)
        return Response(MemberOutputSerializer(members, many=True).data)


class ApiDocsView(SpectacularSwaggerView):
    """Serve Swagger UI from local sidecar assets, with no inline script or style (CSP-safe)."""

    template_name = "api/swagger_ui.html"

    @extend_schema(exclude=True)
    def get(self, request, *args, **kwargs):
        return Response(
            {"title": self.title, "schema_url": self._get_schema_url(request)},
            template_name=self.template_name,
        )
