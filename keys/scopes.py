"""The scope registry: every scope a key may hold, built in or added through settings.

Scopes are ``resource:action``. An installation adds its own with ``KEYWARD_EXTRA_SCOPES``
(name -> description); ``keys.checks`` rejects malformed ones at start-up.
"""

import re
from collections.abc import Iterable
from types import MappingProxyType

from django.core.exceptions import ValidationError

from accounts.roles import scope_ceiling
from keys import conf

UNKNOWN_SCOPE = "Unknown scope: %(scope)s."
NO_SCOPES = "Choose at least one scope."

SCOPE_NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]*:[a-z][a-z0-9_]*")

BUILTIN_SCOPES = MappingProxyType(
    {
        "keys:read": "Read key metadata (own keys; admins: the tenant's)",
        "keys:revoke": "Revoke keys (own; admins: any in the tenant)",
        "service_ids:read": "Read the tenant's service IDs",
        "service_ids:write": "Create, change and disable service IDs (not their keys)",
        "members:read": "Read the tenant's members and their roles",
        "audit:read": "Read the tenant's audit events",
        "tokens:introspect": "Introspect the tenant's keys and JWTs (RFC 7662; service keys)",
    }
)


def all_scopes() -> dict[str, str]:
    """Return every scope name with its description, built-ins first."""
    extra = conf.settings.EXTRA_SCOPES
    return {**BUILTIN_SCOPES, **{k: v for k, v in extra.items() if k not in BUILTIN_SCOPES}}


def scope_names() -> frozenset[str]:
    """Return the names of every registered scope."""
    return frozenset(all_scopes())


def describe(scope: str) -> str:
    """Return the description of ``scope``, or ``""`` if it is not (or no longer) registered."""
    return all_scopes().get(scope, "")


def parse_scopes(value: str | Iterable[str]) -> list[str]:
    """Return the sorted, deduplicated scope names in ``value``.

    ``value`` is a comma- or space-separated string or an iterable of names. Raise
    ``ValidationError`` if it names no scope or an unregistered one.
    """
    if isinstance(value, str):
        names = value.replace(",", " ").split()
    else:
        names = [str(name).strip() for name in value]
    chosen = sorted({name for name in names if name})
    if not chosen:
        raise ValidationError(NO_SCOPES, code="no_scopes")
    known = scope_names()
    unknown = [n for n in chosen if n not in known or not SCOPE_NAME_PATTERN.fullmatch(n)]
    if unknown:
        raise ValidationError(
            [
                ValidationError(UNKNOWN_SCOPE, code="unknown_scope", params={"scope": name})
                for name in unknown
            ]
        )
    return chosen


def ceiling_for(role: str) -> frozenset[str]:
    """Return the registered scopes a key owned by someone with ``role`` may hold."""
    return scope_ceiling(role, scope_names())
