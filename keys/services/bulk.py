"""Revoke many keys at once (the keys list's bulk action): all of them or none."""

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from accounts import roles
from accounts.principals import Principal
from common.request import RequestContext
from keys.models import ApiKey
from keys.services.change import key_revoke

NOTHING_SELECTED = "Select at least one key that still works."
BULK_DENIED = "Only the tenant's owners and admins revoke keys in bulk."
MAX_BULK = 500


@transaction.atomic
def keys_revoke_bulk(
    *,
    actor: Principal,
    keys: list[ApiKey],
    reason: str = "",
    context: RequestContext | None = None,
) -> list[ApiKey]:
    """Revoke every key of ``keys`` not yet revoked, in one transaction, with one ``key.revoked``
    event per key; return those revoked. Raises PermissionDenied (not an owner or admin, or a
    key of another tenant: nothing is revoked) or ValidationError (nothing left to revoke)."""
    if actor.key is not None or not roles.may(actor.role, roles.Action.KEYS_MANAGE_ALL):
        raise PermissionDenied(BULK_DENIED)
    live = [key for key in keys if key.revoked_at is None]
    if not live or len(live) > MAX_BULK:
        raise ValidationError(NOTHING_SELECTED)
    # key_revoke checks each key's tenant and locks its row; any refusal rolls back them all.
    return [
        key_revoke(actor=actor, key=key, reason=reason, context=context)
        for key in sorted(live, key=lambda k: k.pk)
    ]
