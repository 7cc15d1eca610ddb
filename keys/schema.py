"""OpenAPI (drf-spectacular): the Bearer key scheme and each operation's required scopes."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema

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
