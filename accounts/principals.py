"""Who acts on keys: a member in the portal, or a key's owner on the API."""

from dataclasses import dataclass
from typing import Any

from accounts.models import Membership, ServiceID, Tenant, User


@dataclass(frozen=True, slots=True)
class Principal:
    """A tenant-bound actor with a role: a member (portal) or a key's owner (API)."""

    tenant: Tenant
    role: str
    user: User | None = None
    service_id: ServiceID | None = None
    key: Any = None  # the ApiKey when acting through the API

    @classmethod
    def of_membership(cls, membership: Membership) -> "Principal":
        return cls(tenant=membership.tenant, role=membership.role, user=membership.user)

    @property
    def audit_actor(self):
        """Return what the audit log names as the actor: the key on the API, else the user."""
        return self.key if self.key is not None else (self.user or self.service_id)

    def owns(self, key) -> bool:
        """Return whether ``key`` is one of this principal's own (its person's or its service
        ID's)."""
        if self.user is not None:
            return key.user_id == self.user.pk
        return self.service_id is not None and key.service_id_id == self.service_id.pk
