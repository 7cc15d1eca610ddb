"""Writes for tenants, members, invitations and service IDs. Each commits with its audit event.

One module per entity; this package re-exports them, so ``from accounts import services`` keeps
working.
"""

from accounts.services.members import (  # noqa: F401
    ALREADY_INVITED,
    ALREADY_MEMBER,
    INVALID_EMAIL,
    INVITATION_INVALID,
    INVITATION_LIFETIME,
    INVITATION_OTHER_USER,
    KEY_CANNOT_RAISE_ROLE,
    KEY_GRANTS_ONLY_LOWEST_ROLE,
    LAST_OWNER,
    NOT_ALLOWED_ROLE,
    ROLE_ABOVE_OWN,
    invitation_accept,
    invitation_create,
    invitation_find,
    invitation_revoke,
    membership_change_role,
    membership_remove,
)
from accounts.services.service_ids import (  # noqa: F401
    NOT_SERVICE_ID_MANAGER,
    OPERATOR_CALL_NEEDS_TENANT,
    SERVICE_ID_NAME_TAKEN,
    service_id_create,
    service_id_update,
)
from accounts.services.tenants import (  # noqa: F401
    POLICY_FIELDS,
    SLUG_TAKEN,
    tenant_create,
    tenant_policy_update,
)
from accounts.services.users import (  # noqa: F401
    absolute_url,
    set_password_link,
    user_password_set,
)
