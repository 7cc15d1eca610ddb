"""The OAuth endpoints (RFC 8693 exchange, RFC 7662 introspection, RFC 7009 revocation) and the
published keys (JWKS, RFC 8414 metadata) of the federation app. Each view parses its input and
calls one service. They live at the root, not under /api/v1/: ``urlpatterns`` below is included by
config/urls.py in the ``federation`` namespace, beside the trusts pages (federation/urls.py)."""

from django.urls import path, reverse
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.parsers import FormParser
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from api.base import KeywardApiView
from api.middleware import audit_unavailable
from api.parsers import JSONParser  # nested too deeply: a 400, never a 500
from api.schema import responses
from audit.services import AuditUnavailable
from common.request import context_of
from federation import services, signing
from federation.authentication import issuer_of
from federation.serializers import (
    IntrospectionOutputSerializer,
    OAuthErrorOutputSerializer,
    TokenExchangeInputSerializer,
    TokenExchangeOutputSerializer,
    TokenInputSerializer,
    validated_fields,
)
from federation.tokens import JWT_TYPE
from keys.permissions import required_scopes_for
from keys.scopes import scope_names

SERVICE_KEY_ONLY = "Only a service key (of a service ID) may introspect tokens."
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class KeywardJWTScheme(OpenApiAuthenticationExtension):
    """Document Keyward's own JWTs as a second bearer scheme of API v1."""

    target_class = "federation.authentication.KeywardJWTAuthentication"
    name = "bearerJWT"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "A JWT from POST /oauth/token with no `audience` (it is for Keyward).",
        }

    def get_security_requirement(self, auto_schema):
        return {self.name: required_scopes_for(auto_schema.view, auto_schema.method)}


def _oauth_error(error: services.OAuthError) -> Response:
    headers = dict(NO_STORE)
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    if error.status == 401:
        headers["WWW-Authenticate"] = f'Bearer error="{error.error}"'
    body = {"error": error.error, "error_description": error.description}
    return Response(body, status=error.status, headers=headers)


class _OAuthView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []
    parser_classes = [FormParser, JSONParser]
    renderer_classes = [JSONRenderer]
    metadata_class = None


class TokenExchangeApi(_OAuthView):
    """Exchange a Keyward key (or a trusted CI's ID token) for a short-lived JWT (RFC 8693)."""

    @extend_schema(
        operation_id="oauth_token",
        tags=["oauth"],
        request={"application/x-www-form-urlencoded": TokenExchangeInputSerializer},
        responses={
            200: TokenExchangeOutputSerializer,
            400: OAuthErrorOutputSerializer,
            401: OAuthErrorOutputSerializer,
            429: OAuthErrorOutputSerializer,
        },
        auth=[],
    )
    def post(self, request):
        form, first = validated_fields(TokenExchangeInputSerializer, request.data)
        if form is None:
            return _oauth_error(services.OAuthError("invalid_request", f"{first}: required."))
        if form["grant_type"] != services.GRANT_TYPE:
            return _oauth_error(
                services.OAuthError("unsupported_grant_type", services.UNSUPPORTED_GRANT)
            )
        try:
            exchanged = services.token_exchange(
                subject_token=form["subject_token"],
                subject_token_type=form["subject_token_type"],
                requested_token_type=form.get("requested_token_type"),
                scope=form.get("scope"),
                audience=form.get("audience"),
                issuer=issuer_of(request),
                context=context_of(request),
            )
        except services.OAuthError as error:
            return _oauth_error(error)
        except AuditUnavailable:
            # SECURITY: no token leaves unless its exchange is in the audit log.
            return audit_unavailable()
        body = {
            "access_token": exchanged.access_token,
            "issued_token_type": JWT_TYPE,
            "token_type": "Bearer",
            "expires_in": exchanged.expires_in,
            "scope": exchanged.scope,
        }
        return Response(body, headers=NO_STORE)


class TokenRevokeApi(_OAuthView):
    """Revoke a Keyward JWT until it expires (RFC 7009): always 200, whatever was sent."""

    @extend_schema(
        operation_id="oauth_revoke",
        tags=["oauth"],
        request={"application/x-www-form-urlencoded": TokenInputSerializer},
        responses={200: OpenApiResponse(description="Always, whatever the token was.")},
        auth=[],
    )
    def post(self, request):
        data = TokenInputSerializer(data=request.data)
        if data.is_valid():
            services.token_revoke(
                token=data.validated_data["token"],
                issuer=issuer_of(request),
                context=context_of(request),
            )
        return Response({}, headers=NO_STORE)


class TokenIntrospectApi(KeywardApiView):
    """Describe a Keyward key or JWT to a resource server of the tenant (RFC 7662); anything
    else, another tenant's token included, is ``{"active": false}``."""

    required_scopes = ["tokens:introspect"]
    parser_classes = [FormParser, JSONParser]

    @extend_schema(
        operation_id="oauth_introspect",
        tags=["oauth"],
        request={"application/x-www-form-urlencoded": TokenInputSerializer},
        responses=responses(200, IntrospectionOutputSerializer, 400),
    )
    def post(self, request):
        principal = request.auth.principal
        if principal.service_id is None:
            raise exceptions.PermissionDenied(SERVICE_KEY_ONLY)
        data = TokenInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        answer = services.token_introspect(
            token=data.validated_data["token"], tenant=principal.tenant, issuer=issuer_of(request)
        )
        return Response(answer, headers=NO_STORE)


class JwksApi(_OAuthView):
    """The public keys that verify Keyward's JWTs (the active one and those retired lately)."""

    @extend_schema(operation_id="jwks", tags=["oauth"], auth=[], responses={200: dict})
    def get(self, request):
        return Response(signing.jwks(), headers={"Cache-Control": "public, max-age=60"})


class AuthorizationServerMetadataApi(_OAuthView):
    """RFC 8414 authorization server metadata."""

    @extend_schema(operation_id="oauth_metadata", tags=["oauth"], auth=[], responses={200: dict})
    def get(self, request):
        issuer = issuer_of(request)

        def url(name: str) -> str:
            return issuer + reverse(name)

        body = {
            "issuer": issuer,
            "token_endpoint": url("federation:token"),
            "jwks_uri": url("federation:jwks"),
            "introspection_endpoint": url("federation:introspect"),
            "revocation_endpoint": url("federation:revoke"),
            "grant_types_supported": [services.GRANT_TYPE],
            "response_types_supported": [],
            "token_endpoint_auth_methods_supported": ["none"],
            "revocation_endpoint_auth_methods_supported": ["none"],
            "introspection_endpoint_auth_methods_supported": ["bearer"],
            "scopes_supported": sorted(scope_names()),
            "subject_token_types_supported": [
                "urn:ietf:params:oauth:token-type:access_token",
                "urn:ietf:params:oauth:token-type:id_token",
            ],
            "token_endpoint_auth_signing_alg_values_supported": [signing.ALGORITHM],
        }
        return Response(body, headers={"Cache-Control": "public, max-age=300"})


urlpatterns = [
    path("oauth/token", TokenExchangeApi.as_view(), name="token"),
    path("oauth/introspect", TokenIntrospectApi.as_view(), name="introspect"),
    path("oauth/revoke", TokenRevokeApi.as_view(), name="revoke"),
    path(".well-known/jwks.json", JwksApi.as_view(), name="jwks"),
    path(
        ".well-known/oauth-authorization-server",
        AuthorizationServerMetadataApi.as_view(),
        name="metadata",
    ),
]
