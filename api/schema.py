"""OpenAPI (drf-spectacular): the Bearer key scheme, each operation's required scopes and
error responses, and the offline Swagger UI."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse, extend_schema
from drf_spectacular.views import SpectacularSwaggerView
from rest_framework import serializers
from rest_framework.response import Response

from api.errors import ERRORS
from keys import conf
from keys.permissions import required_scopes_for

SCHEME_NAME = "bearerKey"


def _scopes_text(scopes: list[str]) -> str:
    if not scopes:
        return "**Required scope:** none (any valid key)."
    return "**Required scope:** " + ", ".join(f"`{s}`" for s in scopes) + "."


class KeywardAutoSchema(AutoSchema):
    """Name each operation's required scopes in its description and as ``x-required-scopes``."""

    def get_operation(self, *args, **kwargs):
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        if not getattr(self.view, "authentication_classes", True):
            return operation  # authenticated otherwise (a signed leak report): no key, no scope
        scopes = required_scopes_for(self.view, self.method)
        description = operation.get("description", "").strip()
        operation["description"] = f"{description}\n\n{_scopes_text(scopes)}".strip()
        operation["x-required-scopes"] = scopes
        return operation


class BearerKeyScheme(OpenApiAuthenticationExtension):
    """Document ``BearerKeyAuthentication`` as HTTP bearer, with scopes per operation."""

    target_class = "keys.authentication.BearerKeyAuthentication"
    name = SCHEME_NAME

    def get_security_definition(self, auto_schema):
        prefix = conf.settings.TOKEN_PREFIX
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "Keyward key",
            "description": (
                "A Keyward key in `Authorization: Bearer <key>` (RFC 6750), never in the URL. "
                f"Personal access tokens start with `{prefix}p_`, service keys with `{prefix}s_`. "
                "Keys are issued in the portal, behind a second factor."
            ),
        }

    def get_security_requirement(self, auto_schema):
        # OpenAPI 3.1 lets non-OAuth schemes list the roles (here: scopes) an operation needs.
        return {self.name: required_scopes_for(auto_schema.view, auto_schema.method)}


class ErrorOutputSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable machine-readable code, e.g. invalid_token.")
    detail = serializers.CharField(help_text="Human-readable explanation.")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Validation errors by field (400 invalid only).",
    )


def responses(ok_status: int, ok, *errors: int) -> dict:
    """Return an operation's documented responses: ``ok`` and the JSON errors it may answer."""
    codes = sorted({401, 403, 429, *errors} - {ok_status})
    return {
        ok_status: ok,
        **{c: OpenApiResponse(ErrorOutputSerializer, description=ERRORS[c]) for c in codes},
    }


class ApiDocsView(SpectacularSwaggerView):
    """Serve Swagger UI from local sidecar assets, with no inline script or style (CSP-safe)."""

    template_name = "api/swagger_ui.html"

    @extend_schema(exclude=True)
    def get(self, request, *args, **kwargs):
        return Response(
            {"title": self.title, "schema_url": self._get_schema_url(request)},
            template_name=self.template_name,
        )
