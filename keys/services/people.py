"""A person's keys end with their access: a member removed, a user deactivated.

``member_remove`` is the door the portal uses, so the revocations name who removed the person
and the request. The receivers in ``keys/receivers.py`` catch every other door (the admin, a
bulk delete, the shell) through Django's model signals, inside the deleting transaction.
"""

from datetime import datetime

from django.db import transaction

from accounts import services as account_services
from accounts.models import Membership, Tenant, User
from accounts.principals import Principal
from audit.services import Actor
from common.request import RequestContext
from keys.models import ApiKey
from keys.services.change import key_revoke
from keys.services.issue import _now

MEMBERSHIP_REMOVED = "membership removed"
USER_DEACTIVATED = "user deactivated"


@transaction.atomic
def keys_revoke_personal(
    *,
    actor: Principal | Actor,
    user: User,
    tenant: Tenant | None,
    reason: str,
    context: RequestContext | None = None,
    now: datetime | None = None,
) -> list[ApiKey]:
    """Revoke ``user``'s personal access tokens that still work, in ``tenant`` (None: in every
    tenant); return them. Records ``key.revoked`` with ``reason`` for each, in one transaction.

    Service keys stay: they belong to their service ID, not to the person who issued them.
    """
    keys = ApiKey.objects.usable(now or _now()).filter(user=user)
    if tenant is not None:
        keys = keys.for_tenant(tenant)
    locked = list(keys.select_for_update(of=("self",)).select_related("tenant").order_by("id"))
    return [key_revoke(actor=actor, key=key, reason=reason, context=context) for key in locked]


@transaction.atomic
def member_remove(
    *, actor: Principal, target: Membership, context: RequestContext | None = None
) -> list[ApiKey]:
    """Remove ``target`` from the tenant and revoke their personal access tokens there; return
    the keys revoked.

    One transaction: ``key.revoked`` (reason "membership removed", by ``actor``) for each key,
    then ``member.removed``. Raises what ``membership_remove`` raises, and then nothing is
    revoked.
    """
    revoked = keys_revoke_personal(
        actor=actor,
        user=target.user,
        tenant=target.tenant,
        reason=MEMBERSHIP_REMOVED,
        context=context,
    )
    account_services.membership_remove(actor=actor, target=target, context=context)
    return revoked
