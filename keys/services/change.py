"""Change a key: revoke it, rotate it, narrow its scopes to those it uses, turn its new-network
alert on or off. Each locks the key row, checks who acts, and commits with its audit event."""

from datetime import datetime, timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

import audit
from accounts.principals import Principal
from audit.services import Actor
from common.request import RequestContext
from keys.lookup import forget_key
from keys.models import ApiKey
from keys.selectors import UNUSED_SCOPE_DAYS, key_observed_since, key_used_scopes
from keys.services.issue import (
    NOT_YOURS,
    _acting_user,
    _after,
    _audit_actor,
    _authorize_manage,
    _create,
    _now,
    _owner_role,
    validate_policy,
)

ALREADY_REVOKED = "This key is already revoked."
NOT_ROTATABLE = "Only an active key can be rotated."
NOT_NARROWABLE = "Only an active key can be narrowed."
NOTHING_USED = (
    "This key used none of its scopes in the last %(days)d days: narrowing would leave it "
    "with none. Revoke it instead."
)
NOTHING_TO_NARROW = "This key used every scope it holds in the last %(days)d days."
TOO_NEW_TO_NARROW = (
    "This key (with the keys it was rotated from) was issued less than %(days)d days ago: too "
    "new to judge which scopes it does not need."
)
NARROWING_CHANGED = "The key's usage changed since the preview: review the change again."
# "first_use": the old key works until the new key's first authenticated request, at most
# FIRST_USE_CAP (then it expires like any grace).
FIRST_USE = "first_use"
FIRST_USE_CAP = timedelta(days=7)
GRACE_CHOICES = {
    "now": timedelta(0),
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    FIRST_USE: FIRST_USE_CAP,
}
# revoked_reason of a predecessor retired by its successor's first use (also the refusal reason).
SUCCESSOR_USED = "rotated_successor_used"


def _lock(key: ApiKey) -> ApiKey:
    # Lock the key row only: FOR UPDATE on the join would also lock the tenant row.
    return ApiKey.objects.select_for_update(of=("self",)).select_related("tenant").get(pk=key.pk)


@transaction.atomic
def key_revoke(
    *,
    actor: Principal | Actor,
    key: ApiKey,
    reason: str = "",
    context: RequestContext | None = None,
) -> ApiKey:
    """Revoke ``key`` now, with a reason; irreversible. Records ``key.revoked``."""
    _authorize_manage(actor, key)
    locked = _lock(key)
    if locked.revoked_at is not None:
        raise ValidationError(ALREADY_REVOKED)
    locked.revoked_at = _now()
    locked.revoked_by = _acting_user(actor)
    locked.revoked_reason = (reason or "").strip()[:200]
    locked.save(update_fields=["revoked_at", "revoked_by", "revoked_reason"])
    audit.record(
        "key.revoked",
        actor=_audit_actor(actor),
        tenant=locked.tenant,
        target=locked,
        context=context,
        metadata={"reason": locked.revoked_reason},
    )
    key.revoked_at, key.revoked_by, key.revoked_reason = (
        locked.revoked_at,
        locked.revoked_by,
        locked.revoked_reason,
    )
    return locked


def _successor_expiry(old: ApiKey, now: datetime) -> datetime | None:
    """Return when the successor of ``old`` expires: after the same lifetime, within policy."""
    tenant = old.tenant
    lifetime = (old.expires_at - old.created_at) if old.expires_at else None
    expires_at = None
    if lifetime is None and not tenant.allow_non_expiring_keys:
        # The policy changed since this key was issued: rotation is how a key comes back into
        # policy, so the successor gets the tenant's default lifetime instead of failing.
        expires_at = _after(now, tenant.default_key_lifetime_days)
    elif lifetime is not None:
        expires_at = _after(now, lifetime)
    if expires_at is not None:
        expires_at = min(expires_at, _after(now, tenant.max_key_lifetime_days))
    return expires_at


def _retire(old: ApiKey, *, grace: str, actor: Principal | Actor, now: datetime) -> None:
    """Mark ``old`` rotated: it works until the grace ends (or its own expiry), or not at all."""
    old.rotated_at = now
    fields = ["rotated_at"]
    if GRACE_CHOICES[grace]:
        grace_end = now + GRACE_CHOICES[grace]
        if old.expires_at is None or grace_end < old.expires_at:
            old.expires_at = grace_end
            fields.append("expires_at")
    else:
        old.revoked_at = now
        old.revoked_reason = "rotated"
        old.revoked_by = _acting_user(actor)
        fields += ["revoked_at", "revoked_reason", "revoked_by"]
    old.save(update_fields=fields)


@transaction.atomic
def key_rotate(
    *,
    actor: Principal | Actor,
    key: ApiKey,
    grace: str = "now",
    context: RequestContext | None = None,
    now: datetime | None = None,
) -> tuple[ApiKey, str]:
    """Issue a successor with the same name, scopes and networks; the old key keeps working
    for ``grace`` (now, 1h, 24h, 7d, or first_use: until the successor's first authenticated
    request, at most 7 days). Records ``key.rotated``."""
    now = now or _now()
    if grace not in GRACE_CHOICES:
        raise ValidationError({"grace": [f"Choose one of {', '.join(GRACE_CHOICES)}."]})
    _authorize_manage(actor, key)
    if isinstance(actor, Principal) and actor.key is not None:
        raise PermissionDenied(NOT_YOURS)  # SECURITY: a key never creates another key
    old = _lock(key)
    if not old.is_rotatable(now):
        raise ValidationError(NOT_ROTATABLE)
    tenant = old.tenant
    owner = old.service_id if old.service_id_id else old.user
    owner_role = _owner_role(tenant, owner)
    expires_at = _successor_expiry(old, now)
    clean_scopes, networks = validate_policy(
        tenant=tenant,
        owner_role=owner_role,
        scopes=old.scopes,
        expires_at=expires_at,
        allowed_ips=old.allowed_ips,
        now=now,
    )
    _retire(old, grace=grace, actor=actor, now=now)
    new, plaintext = _create(
        tenant=tenant,
        owner=owner,
        name=old.name,
        scopes=clean_scopes,
        networks=networks,
        expires_at=expires_at,
        created_by=_acting_user(actor),
        rotated_from=old,
        alert_on_new_network=old.alert_on_new_network,
        description=old.description,
        rate=old.rate,
        completes_rotation_on_use=grace == FIRST_USE,
    )
    audit.record(
        "key.rotated",
        actor=_audit_actor(actor),
        tenant=tenant,
        target=new,
        context=context,
        metadata={
            "previous_key": old.pk,
            "previous_hint": old.hint,
            "grace": grace,
            **({"until_first_use": True} if grace == FIRST_USE else {}),
            "previous_works_until": old.revoked_at.isoformat()
            if old.revoked_at
            else old.expires_at.isoformat(),
        },
    )
    return new, plaintext


@transaction.atomic
def key_narrow_scopes(
    *,
    actor: Principal | Actor,
    key: ApiKey,
    context: RequestContext | None = None,
    now: datetime | None = None,
    expected: list[str] | None = None,
) -> ApiKey:
    """Narrow ``key``'s scopes to those it (or the keys it was rotated from) used in the last
    UNUSED_SCOPE_DAYS days. Records ``key.scopes_narrowed`` with the scopes before and after.

    ``expected``: the scopes a preview showed would be kept; if usage changed since, nothing
    is narrowed (ValidationError), so what was confirmed is what happens.

    Raises PermissionDenied (actor may not manage the key) or ValidationError (not active, not
    observed for the whole window (too new to judge), nothing used: never narrows to nothing,
    nothing to remove, or not what the preview showed).
    """
    now = now or _now()
    _authorize_manage(actor, key)
    locked = _lock(key)
    if not locked.is_rotatable(now):
        raise ValidationError(NOT_NARROWABLE)
    since = now - timedelta(days=UNUSED_SCOPE_DAYS)
    if key_observed_since(locked) > since:
        raise ValidationError(TOO_NEW_TO_NARROW % {"days": UNUSED_SCOPE_DAYS})
    used = key_used_scopes(locked, since=since)
    after = [scope for scope in locked.scopes if scope in used]
    if not after:
        raise ValidationError(NOTHING_USED % {"days": UNUSED_SCOPE_DAYS})
    if after == list(locked.scopes):
        raise ValidationError(NOTHING_TO_NARROW % {"days": UNUSED_SCOPE_DAYS})
    if expected is not None and after != expected:
        raise ValidationError(NARROWING_CHANGED)
    before = list(locked.scopes)
    locked.scopes = after
    locked.save(update_fields=["scopes"])
    audit.record(
        "key.scopes_narrowed",
        actor=_audit_actor(actor),
        tenant=locked.tenant,
        target=locked,
        context=context,
        metadata={
            "before": before,
            "after": after,
            "removed": [scope for scope in before if scope not in after],
            "unused_days": UNUSED_SCOPE_DAYS,
        },
    )
    key.scopes = after
    return locked


@transaction.atomic
def key_set_network_alert(
    *, actor: Principal | Actor, key: ApiKey, enabled: bool, context: RequestContext | None = None
) -> ApiKey:
    """Turn the key's new-network e-mail alert on or off. Records ``key.network_alert_changed``
    (nothing when it already is as asked)."""
    _authorize_manage(actor, key)
    locked = _lock(key)
    if locked.revoked_at is not None:
        raise ValidationError(ALREADY_REVOKED)
    if locked.alert_on_new_network == enabled:
        return locked
    locked.alert_on_new_network = enabled
    locked.save(update_fields=["alert_on_new_network"])
    audit.record(
        "key.network_alert_changed",
        actor=_audit_actor(actor),
        tenant=locked.tenant,
        target=locked,
        context=context,
        metadata={"enabled": enabled},
    )
    key.alert_on_new_network = enabled
    return locked


def key_complete_rotation(
    *, key: ApiKey, context: RequestContext | None = None, now: datetime | None = None
) -> ApiKey | None:
    """On the first authenticated request of ``key`` (rotated with grace ``first_use``), revoke
    its predecessor (reason ``rotated_successor_used``) and record ``key.rotation_completed``;
    return the predecessor, or None when another request completed it first or the
    predecessor no longer works. Called by the authentication class; the flag is claimed with
    one conditional UPDATE, so concurrent first requests retire the predecessor once."""
    now = now or _now()
    key.completes_rotation_on_use = False
    with transaction.atomic():
        claimed = ApiKey.objects.filter(pk=key.pk, completes_rotation_on_use=True).update(
            completes_rotation_on_use=False
        )
        if not claimed or key.rotated_from_id is None:
            return None
        old = (
            ApiKey.objects.select_for_update(of=("self",))
            .select_related("tenant")
            .filter(pk=key.rotated_from_id)
            .first()
        )
        if old is None or old.revoked_at is not None or old.is_expired(now):
            return None
        old.revoked_at = now
        old.revoked_reason = SUCCESSOR_USED
        old.save(update_fields=["revoked_at", "revoked_reason"])
        audit.record(
            "key.rotation_completed",
            actor=key,
            tenant=old.tenant,
            target=old,
            context=context,
            metadata={"reason": SUCCESSOR_USED, "successor": key.pk, "successor_hint": key.hint},
        )
        digest = bytes(old.digest)
    # SECURITY: this process forgets the retired key at once; another process that kept it
    # serves it nothing, since its request event is written only while the key is unchanged.
    forget_key(digest)
    return old
