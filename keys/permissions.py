"""Scope permission for API views (after django-oauth-toolkit's ``TokenHasScope``)."""

from collections.abc import Mapping

from django.core.exceptions import ImproperlyConfigured
from rest_framework import exceptions
from rest_framework.permissions import BasePermission

from common.request import decide
from keys.scopes import ceiling_for

MISSING_SCOPE = "This key lacks the scope %(scopes)s."
ROLE_LACKS_SCOPE = "The role of this key's owner no longer allows the scope %(scopes)s."
NO_REQUIRED_SCOPES = (
    "%(view)s uses HasScope but declares no required_scopes: set a list of scopes "
    "([] for any valid key), or a dict of HTTP method to list."
)
NO_SCOPES_FOR_METHOD = "%(view)s declares no required_scopes for %(method)s."


class InsufficientScope(exceptions.PermissionDenied):
    """403 ``insufficient_scope`` with its RFC 6750 challenge naming the scopes required."""

    default_code = "insufficient_scope"

    def __init__(self, detail: str, scopes: list[str]):
        super().__init__(detail, code=self.default_code)
        self.auth_header = (
            f'Bearer realm="api", error="insufficient_scope", scope="{" ".join(scopes)}"'
        )


def required_scopes_for(view, method: str) -> list[str]:
    """Return the scopes ``view`` requires for ``method``; raise ImproperlyConfigured if unset.

    ``required_scopes`` is a list (every method) or a dict of method to list. A method the view
    does not implement requires only a valid key: the view then answers 405.
    """
    for permission in getattr(view, "permission_classes", ()):
        if isinstance(permission, HasScope) and permission.scopes is not None:
            return list(permission.scopes)
    declared = getattr(view, "required_scopes", None)
    name = type(view).__name__
    if declared is None:
        raise ImproperlyConfigured(NO_REQUIRED_SCOPES % {"view": name})
    if not isinstance(declared, Mapping):
        return list(declared)
    method = method.upper()
    lookup = "GET" if method == "HEAD" else method
    if lookup in declared:
        return list(declared[lookup])
    if method != "OPTIONS" and hasattr(view, method.lower()):
        raise ImproperlyConfigured(NO_SCOPES_FOR_METHOD % {"view": name, "method": method})
    return []  # the view answers 405 (OPTIONS included: KeywardApiView has no metadata)


class HasScope(BasePermission):
    """Grant a request whose key holds every required scope, still within its owner's role.

    Used as a class it reads the view's ``required_scopes``; ``HasScope("audit:read")`` in
    ``permission_classes`` requires those scopes instead. Without a key DRF answers 401.
    """

    def __init__(self, *scopes: str):
        self.scopes: tuple[str, ...] | None = scopes or None

    def __call__(self) -> "HasScope":
        # DRF instantiates each entry of permission_classes; an instance stands for itself.
        return self

    def has_permission(self, request, view) -> bool:
        if self.scopes is not None:
            required = list(self.scopes)
        else:
            required = required_scopes_for(view, request.method)
        key = request.auth
        principal = getattr(key, "principal", None)
        if principal is None:
            return False
        missing = [s for s in required if s not in key.scopes]
        if missing:
            raise InsufficientScope(MISSING_SCOPE % {"scopes": ", ".join(missing)}, required)
        # SECURITY: the owner's role is re-read on every request (the authentication query), so
        # a demoted owner's keys lose the scopes the new role no longer allows at once.
        ceiling = ceiling_for(principal.role)
        beyond = [s for s in required if s not in ceiling]
        if beyond:
            raise InsufficientScope(ROLE_LACKS_SCOPE % {"scopes": ", ".join(beyond)}, required)
        # The scopes granted go into the request's audit event: keys_maintain rolls them up into
        # the scopes each key really uses (least-privilege review), at no cost per request.
        decide(request, scopes=tuple(required))
        return True
