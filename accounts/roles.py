"""The one place that maps a role to what it may do and to the scopes its keys may hold.

Nothing else in Keyward spells a role name: views ask ``may(role, action)`` and key services ask
``scope_ceiling(role)``.
"""

from django.db import models


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"
    AUDITOR = "auditor", "Auditor"


class Action(models.TextChoices):
    """Portal and API actions that depend on a role."""

    KEYS_OWN = "keys.own", "Manage own personal access tokens"
    KEYS_MANAGE_ALL = "keys.manage_all", "See and revoke every key of the tenant"
    SERVICE_IDS_READ = "service_ids.read", "See service IDs"
    SERVICE_IDS_MANAGE = (
        "service_ids.manage",
        "Create, change and disable service IDs and their keys",
    )
    MEMBERS_READ = "members.read", "See members and roles"
    MEMBERS_MANAGE = "members.manage", "Invite, change and remove members"
    OWNERS_MANAGE = "owners.manage", "Grant, change or remove the owner role"
    POLICY_EDIT = "policy.edit", "Edit the tenant's key policy"
    AUDIT_READ = "audit.read", "Read the tenant's audit log"


_ACTIONS: dict[str, frozenset[str]] = {
    Role.OWNER: frozenset(Action.values),
    Role.ADMIN: frozenset(Action.values) - {Action.OWNERS_MANAGE, Action.POLICY_EDIT},
    Role.MEMBER: frozenset({Action.KEYS_OWN, Action.SERVICE_IDS_READ, Action.MEMBERS_READ}),
    Role.AUDITOR: frozenset(
        {
            Action.KEYS_OWN,
            Action.SERVICE_IDS_READ,
            Action.MEMBERS_READ,
            Action.AUDIT_READ,
        }
    ),
}

# Scope ceilings. "*" stands for every scope in the registry (keys/scopes.py), including scopes an
# installation adds through settings.
_READ_SCOPES = frozenset({"keys:read", "service_ids:read", "members:read"})
_CEILINGS: dict[str, frozenset[str]] = {
    Role.OWNER: frozenset({"*"}),
    Role.ADMIN: frozenset({"*"}),
    Role.MEMBER: _READ_SCOPES | {"keys:revoke"},
    Role.AUDITOR: _READ_SCOPES | {"keys:revoke", "audit:read"},
}

# Roles that may be granted by someone who may manage members but not owners.
ASSIGNABLE_WITHOUT_OWNERSHIP = (Role.ADMIN, Role.MEMBER, Role.AUDITOR)


def describe(role: str) -> str:
    """Return what ``role`` may do, in words (from its actions), for the invite form."""
    allowed = _ACTIONS.get(role, frozenset())
    if allowed == frozenset(Action.values):
        return "Everything, including owners and the tenant's key policy."
    words = [label for value, label in Action.choices if value in allowed]
    return "; ".join([words[0], *(w[0].lower() + w[1:] for w in words[1:])]) + "."


def may(role: str, action: str) -> bool:
    """Return whether ``role`` is allowed to perform ``action``."""
    return action in _ACTIONS.get(role, frozenset())


def scope_ceiling(role: str, all_scopes: frozenset[str] | set[str]) -> frozenset[str]:
    """Return the scopes a key owned by someone with ``role`` may hold."""
    ceiling = _CEILINGS.get(role, frozenset())
    if "*" in ceiling:
        return frozenset(all_scopes)
    return frozenset(ceiling) & frozenset(all_scopes)


def _ceiling_within(role: str, other: str) -> bool:
    ceiling, other_ceiling = _CEILINGS.get(role, frozenset()), _CEILINGS.get(other, frozenset())
    return "*" in other_ceiling or ("*" not in ceiling and ceiling <= other_ceiling)


def at_most(role: str, other: str) -> bool:
    """Return whether ``role`` is no higher than ``other``: it may do no action and hold no
    scope that ``other`` may not.

    Both count: owner and admin share the "every scope" ceiling, and only the actions tell
    them apart. Unknown roles are no lower than anything.
    """
    if role not in _ACTIONS or other not in _ACTIONS:
        return False
    return _ACTIONS[role] <= _ACTIONS[other] and _ceiling_within(role, other)


def lowest() -> str:
    """Return the role at or below every other role: the only one an API key may hand out."""
    return next(r for r in Role.values if all(at_most(r, other) for other in Role.values))


def is_owner(role: str) -> bool:
    """Return whether ``role`` is the tenant-owning role (a tenant keeps at least one)."""
    return role == Role.OWNER


def can_assign(actor_role: str, role: str) -> bool:
    """Return whether someone with ``actor_role`` may grant or remove ``role``."""
    if not may(actor_role, Action.MEMBERS_MANAGE):
        return False
    return may(actor_role, Action.OWNERS_MANAGE) or role in ASSIGNABLE_WITHOUT_OWNERSHIP
