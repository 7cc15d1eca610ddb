"""Django model signals that end a person's keys when their access ends, whatever the door.

Connected in ``KeysConfig.ready()`` with a ``dispatch_uid``. Django sends them synchronously in
the deleting or saving transaction, so the revocations commit or roll back with the change.
``accounts`` knows no key, so it cannot do this itself.
"""

from django.db.models import QuerySet

from accounts.models import Membership
from audit.services import Actor
from keys.services.people import MEMBERSHIP_REMOVED, USER_DEACTIVATED, keys_revoke_personal


def _started_at_membership(origin) -> bool:
    """Return whether a deletion began with memberships, not with their user or tenant (whose
    deletion takes the keys with it: nothing is left to revoke)."""
    model = origin.model if isinstance(origin, QuerySet) else type(origin)
    return origin is None or issubclass(model, Membership)


def revoke_keys_of_removed_member(sender, instance, origin=None, **kwargs) -> None:
    """``pre_delete`` of a Membership: revoke the person's tokens in that tenant."""
    if not _started_at_membership(origin):
        return
    keys_revoke_personal(
        actor=Actor.system(),
        user=instance.user,
        tenant=instance.tenant,
        reason=MEMBERSHIP_REMOVED,
    )


def revoke_keys_of_deactivated_user(sender, instance, update_fields=None, **kwargs) -> None:
    """``post_save`` of a User: once inactive, revoke their tokens in every tenant."""
    if instance.is_active or (update_fields is not None and "is_active" not in update_fields):
        return
    keys_revoke_personal(actor=Actor.system(), user=instance, tenant=None, reason=USER_DEACTIVATED)
