"""Key services: every write to keys. Each enforces the tenant's policy and commits with its
audit event; issuing and rotating return ``(api_key, plaintext)`` exactly once.

- ``issue``: who may issue or manage a key, the tenant's policy, ``key_issue``;
- ``change``: ``key_revoke``, ``key_rotate``, ``key_narrow_scopes``, ``key_set_network_alert``;
- ``lifecycle``: the ``keys_maintain`` jobs (expiries, expiry warnings, unused keys);
- ``usage``: the usage rollup from the audit log, and new-network events;
- ``token_lookup``: ``key_lookup_token``, for incident response;
- ``people``: a person's keys end with their access (``member_remove``, ``keys_revoke_personal``).
"""

from keys.services.change import (
    ALREADY_REVOKED,
    GRACE_CHOICES,
    NOT_NARROWABLE,
    NOT_ROTATABLE,
    NOTHING_TO_NARROW,
    NOTHING_USED,
    key_narrow_scopes,
    key_revoke,
    key_rotate,
    key_set_network_alert,
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
