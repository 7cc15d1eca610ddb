"""Key services: every write to keys. Each enforces the tenant's policy and commits with its
audit event; issuing and rotating return ``(api_key, plaintext)`` exactly once.

- ``issue``: who may issue or manage a key, the tenant's policy, ``key_issue``;
- ``change``: ``key_revoke``, ``key_rotate`` (and ``key_complete_rotation``),
  ``key_narrow_scopes``, ``key_set_network_alert``;
- ``edit``: ``key_update`` (narrow freely, widen with sudo within the ceiling and policy);
- ``approvals``: the tenant's approval policy, ``key_approve``, ``key_deny``, the digest;
- ``bulk``: ``keys_revoke_bulk``;
- ``lifecycle``: the ``keys_maintain`` jobs (expiries, expiry warnings, unused keys);
- ``usage``: the usage rollup from the audit log, and new-network events;
- ``token_lookup``: ``key_lookup_token``, for incident response;
- ``people``: a person's keys end with their access (``member_remove``, ``keys_revoke_personal``).
"""

from keys.services.approvals import (
    FOUR_EYES,
    NOT_AN_APPROVER,
    NOT_PENDING,
    REASON_REQUIRED,
    approval_needed,
    key_approve,
    key_deny,
    keys_approval_digest,
    keys_deny_stale_approvals,
    may_approve,
)
from keys.services.bulk import keys_revoke_bulk
from keys.services.change import (
    ALREADY_REVOKED,
    FIRST_USE,
    GRACE_CHOICES,
    NOT_NARROWABLE,
    NOT_ROTATABLE,
    NOTHING_TO_NARROW,
    NOTHING_USED,
    SUCCESSOR_USED,
    key_complete_rotation,
    key_narrow_scopes,
    key_revoke,
    key_rotate,
    key_set_network_alert,
)
from keys.services.edit import (
    NOT_EDITABLE,
    SUDO_NEEDED,
    WIDEN_NEEDS_APPROVAL,
    SudoRequired,
    key_changes,
    key_update,
)
from keys.services.issue import (
    EXPIRY_PAST,
    EXPIRY_REQUIRED,
    EXPIRY_TOO_LONG,
    NAME_REQUIRED,
    NAME_TAKEN,
    NO_PERSON_TOKENS_HERE,
    NOT_A_MEMBER,
    NOT_YOURS,
    SCOPE_ABOVE_CEILING,
    SERVICE_ID_DISABLED,
    key_issue,
    may_manage_key,
    validate_policy,
)
from keys.services.lifecycle import (
    MaintenanceReport,
    keys_expire,
    keys_maintain,
    keys_revoke_unused,
    keys_warn_expiring,
)
from keys.services.people import (
    MEMBERSHIP_REMOVED,
    USER_DEACTIVATED,
    keys_revoke_personal,
    member_remove,
)
from keys.services.token_lookup import LookupResult, key_lookup_token
from keys.services.usage import keys_usage_rollup, network_of

__all__ = [
    "FIRST_USE",
    "FOUR_EYES",
    "NOT_AN_APPROVER",
    "NOT_EDITABLE",
    "NOT_PENDING",
    "REASON_REQUIRED",
    "SUCCESSOR_USED",
    "SUDO_NEEDED",
    "WIDEN_NEEDS_APPROVAL",
    "SudoRequired",
    "approval_needed",
    "key_approve",
    "key_changes",
    "key_complete_rotation",
    "key_deny",
    "key_update",
    "keys_approval_digest",
    "keys_deny_stale_approvals",
    "keys_revoke_bulk",
    "may_approve",
    "ALREADY_REVOKED",
    "EXPIRY_PAST",
    "EXPIRY_REQUIRED",
    "EXPIRY_TOO_LONG",
    "GRACE_CHOICES",
    "MEMBERSHIP_REMOVED",
    "NAME_REQUIRED",
    "NAME_TAKEN",
    "NOTHING_TO_NARROW",
    "NOTHING_USED",
    "NOT_A_MEMBER",
    "NOT_NARROWABLE",
    "NOT_ROTATABLE",
    "NOT_YOURS",
    "NO_PERSON_TOKENS_HERE",
    "SCOPE_ABOVE_CEILING",
    "SERVICE_ID_DISABLED",
    "USER_DEACTIVATED",
    "LookupResult",
    "MaintenanceReport",
    "key_issue",
    "key_lookup_token",
    "key_narrow_scopes",
    "key_revoke",
    "key_rotate",
    "key_set_network_alert",
    "keys_expire",
    "keys_maintain",
    "keys_revoke_personal",
    "keys_revoke_unused",
    "keys_usage_rollup",
    "keys_warn_expiring",
    "may_manage_key",
    "member_remove",
    "network_of",
    "validate_policy",
]
