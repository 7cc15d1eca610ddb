"""API v1 views: one thin view per operation, for bots and services calling with a Bearer key.

Each view validates its input, calls one selector or service with the request's principal
(``request.auth.principal``) and returns its output serializer. Another tenant's object is a 404.
"""

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiResponse, extend_schema
from drf_spectacular.views import SpectacularSwaggerView
from rest_framework import status
from rest_framework.response import Response

from accounts import selectors as account_selectors
from accounts import services as account_services
from keys import selectors, services
from keys.api_base import KeywardApiView
from keys.exceptions import KeysCannotCreateKeys
from keys.serializers import (
    ErrorOutputSerializer,
    KeyOutputSerializer,
    KeyRevokeInputSerializer,
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
        responses=_responses(200, KeyOutputSerializer, 400, 404),
    )
    def post(self, request, pk: int):
        data = KeyRevokeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        principal = request.auth.principal
        key = selectors.key_get(principal, pk)
        services.key_revoke(actor=principal, key=key, request=request, **data.validated_data)
        return Response(KeyOutputSerializer(key).data)


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
        responses=_responses(201, ServiceIdOutputSerializer, 400),
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
        responses=_responses(200, ServiceIdOutputSerializer, 400, 404),
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
