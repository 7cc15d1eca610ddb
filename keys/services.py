"""Issue, revoke and rotate keys. Each service enforces the tenant's policy and commits with its
audit event; issuing and rotating return ``(api_key, plaintext)`` exactly once."""

from datetime import UTC, datetime, timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

import audit
from accounts import roles
from accounts.models import Membership, ServiceID, User
from accounts.principals import Principal
from audit.services import Actor
from common.request import RequestContext
from keys import scopes as scope_registry
from keys import tokens
from keys.models import ApiKey
from keys.networks import parse_cidrs

NAME_REQUIRED = "Give the key a name."
NAME_TAKEN = "An active key named “%(name)s” already exists for this owner: choose another name."
EXPIRY_REQUIRED = "This tenant requires every key to expire: choose an expiry date."
EXPIRY_PAST = "The expiry must be in the future."
EXPIRY_TOO_LONG = "This tenant allows keys to live at most %(days)d days."
SCOPE_ABOVE_CEILING = "The owner's role does not allow the scope %(scope)s."
NOT_A_MEMBER = "The owner is not a member of this tenant."
SERVICE_ID_DISABLED = "This service ID is disabled: enable it before issuing keys."
ALREADY_REVOKED = "This key is already revoked."
NOT_ROTATABLE = "Only an active key can be rotated."
NO_PERSON_TOKENS_HERE = "Personal access tokens are issued only by their owner, in the portal."
NOT_YOURS = "You may not manage this key."
GRACE_CHOICES = {
    "now": timedelta(0),
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
}


def _now() -> datetime:
    return timezone.now()


def _after(moment: datetime, lifetime: timedelta | int) -> datetime:
    """Return ``moment`` plus ``lifetime`` (a timedelta or days), or the last representable
    moment when that lies past year 9999: an operator may set a policy of up to 2**31 - 1 days
    in the admin, and date arithmetic must never turn that into a 500."""
    try:
        delta = lifetime if isinstance(lifetime, timedelta) else timedelta(days=lifetime)
        return moment + delta
    except OverflowError:
        return datetime.max.replace(tzinfo=UTC)


def _owner_role(tenant, owner: User | ServiceID) -> str:
    if isinstance(owner, ServiceID):
        if owner.tenant_id != tenant.pk:
            raise PermissionDenied(NOT_A_MEMBER)
        if not owner.is_active:
            raise ValidationError(SERVICE_ID_DISABLED)
        return owner.role
    membership = Membership.objects.filter(user=owner, tenant=tenant).first()
    if membership is None:
        raise PermissionDenied(NOT_A_MEMBER)
    return membership.role


def _authorize_issue(actor: Principal | Actor, tenant, owner) -> None:
    """Only a person mints their own token; service keys need the right to manage service IDs."""
    if isinstance(actor, Actor):  # command line: service keys only
        if not isinstance(owner, ServiceID):
            raise PermissionDenied(NO_PERSON_TOKENS_HERE)
        return
    # SECURITY: a key never creates another key.
    if actor.key is not None or actor.tenant.pk != tenant.pk:
        raise PermissionDenied(NOT_YOURS)
    if isinstance(owner, ServiceID):
        if not roles.may(actor.role, roles.Action.SERVICE_IDS_MANAGE):
            raise PermissionDenied(NOT_YOURS)
    elif actor.user is None or owner.pk != actor.user.pk:
        raise PermissionDenied(NO_PERSON_TOKENS_HERE)
    elif not roles.may(actor.role, roles.Action.KEYS_OWN):
        raise PermissionDenied(NOT_YOURS)


def _authorize_manage(actor: Principal | Actor, key: ApiKey) -> None:
    """Owners manage their keys; keys.manage_all any key; service IDs' managers service keys."""
    if isinstance(actor, Actor):
        return
    if actor.tenant.pk != key.tenant_id:
        raise PermissionDenied(NOT_YOURS)
    if actor.owns(key) or roles.may(actor.role, roles.Action.KEYS_MANAGE_ALL):
        return
    if key.service_id_id and roles.may(actor.role, roles.Action.SERVICE_IDS_MANAGE):
        return
    raise PermissionDenied(NOT_YOURS)


def may_manage_key(actor: Principal | Actor, key: ApiKey) -> bool:
    """Return whether ``actor`` may revoke, rotate, narrow or change ``key``."""
    try:
        _authorize_manage(actor, key)
    except PermissionDenied:
        return False
    return True


def validate_policy(
    *, tenant, owner_role: str, scopes, expires_at: datetime | None, allowed_ips, now: datetime
) -> tuple[list[str], list[str]]:
    """Check scopes, expiry and networks against the tenant policy; return the clean scopes
    and networks. Raises ValidationError keyed by field."""
    errors: dict[str, list] = {}
    clean_scopes: list[str] = []
    try:
        clean_scopes = scope_registry.parse_scopes(scopes)
    except ValidationError as error:
        errors["scopes"] = error.messages
    else:
        ceiling = scope_registry.ceiling_for(owner_role)
        above = [s for s in clean_scopes if s not in ceiling]
        if above:
            errors["scopes"] = [SCOPE_ABOVE_CEILING % {"scope": s} for s in above]
    if expires_at is None:
        if not tenant.allow_non_expiring_keys:
            errors["expires_at"] = [EXPIRY_REQUIRED]
    elif expires_at <= now:
        errors["expires_at"] = [EXPIRY_PAST]
    elif expires_at > _after(_after(now, tenant.max_key_lifetime_days), timedelta(minutes=5)):
        errors["expires_at"] = [EXPIRY_TOO_LONG % {"days": tenant.max_key_lifetime_days}]
    networks: list[str] = []
    try:
        networks = parse_cidrs(allowed_ips or [])
    except ValidationError as error:
        errors["allowed_ips"] = error.messages
    if errors:
        raise ValidationError(errors)
    return clean_scopes, networks


def _check_name(tenant, owner, name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": [NAME_REQUIRED]})
    if len(name) > 100:
        raise ValidationError({"name": ["At most 100 characters."]})
    owner_filter = {"service_id": owner} if isinstance(owner, ServiceID) else {"user": owner}
    if ApiKey.objects.for_tenant(tenant).active().filter(name=name, **owner_filter).exists():
        raise ValidationError({"name": [NAME_TAKEN % {"name": name}]})
    return name


def _audit_actor(actor: Principal | Actor):
    return actor if isinstance(actor, Actor) else actor.audit_actor


def _create(
    *,
    tenant,
    owner,
    name,
    scopes,
    networks,
    expires_at,
    created_by,
    rotated_from=None,
    alert_on_new_network=False,
):
    kind = tokens.Kind.SERVICE if isinstance(owner, ServiceID) else tokens.Kind.PERSONAL
    plaintext = tokens.generate(kind)
    key = ApiKey(
        tenant=tenant,
        user=owner if kind is tokens.Kind.PERSONAL else None,
        service_id=owner if kind is tokens.Kind.SERVICE else None,
        name=name,
        scopes=scopes,
        allowed_ips=networks,
        digest=tokens.digest(plaintext),
        hint=tokens.hint(plaintext),
        expires_at=expires_at,
        created_by=created_by,
        rotated_from=rotated_from,
        alert_on_new_network=alert_on_new_network,
    )
    key.save()
    return key, plaintext


@transaction.atomic
def key_issue(
    *,
    actor: Principal | Actor,
    tenant,
    owner: User | ServiceID,
    name: str,
    scopes,
    expires_at: datetime | None,
    allowed_ips=(),
    context: RequestContext | None = None,
    now: datetime | None = None,
    alert_on_new_network: bool = False,
) -> tuple[ApiKey, str]:
    """Issue a key for ``owner`` within the tenant policy; return it and its plaintext, once.

    Raises PermissionDenied (actor may not) or ValidationError (policy, keyed by field).
    Records ``key.issued`` in the same transaction.
    """
    now = now or _now()
    _authorize_issue(actor, tenant, owner)
    owner_role = _owner_role(tenant, owner)
    name = _check_name(tenant, owner, name)
    clean_scopes, networks = validate_policy(
        tenant=tenant,
        owner_role=owner_role,
        scopes=scopes,
        expires_at=expires_at,
        allowed_ips=allowed_ips,
        now=now,
    )
    created_by = None if isinstance(actor, Actor) else actor.user
    key, plaintext = _create(
        tenant=tenant,
        owner=owner,
        name=name,
        scopes=clean_scopes,
        networks=networks,
        expires_at=expires_at,
        created_by=created_by,
        alert_on_new_network=alert_on_new_network,
    )
    audit.record(
        "key.issued",
        actor=_audit_actor(actor),
        tenant=tenant,
        target=key,
        context=context,
        metadata={
            "owner": owner.label,
            "scopes": clean_scopes,
            "expires_at": expires_at.isoformat() if expires_at else None,
            "allowed_ips": networks,
            **({"alert_on_new_network": True} if alert_on_new_network else {}),
        },
    )
    return key, plaintext


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
    locked = ApiKey.objects.select_for_update(of=("self",)).select_related("tenant").get(pk=key.pk)
    if locked.revoked_at is not None:
        raise ValidationError(ALREADY_REVOKED)
    locked.revoked_at = _now()
    locked.revoked_by = None if isinstance(actor, Actor) else actor.user
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
    for ``grace`` (now, 1h, 24h, 7d). Records ``key.rotated``."""
    now = now or _now()
    if grace not in GRACE_CHOICES:
        raise ValidationError({"grace": [f"Choose one of {', '.join(GRACE_CHOICES)}."]})
    _authorize_manage(actor, key)
    if isinstance(actor, Principal) and actor.key is not None:
        raise PermissionDenied(NOT_YOURS)  # SECURITY: a key never creates another key
    # Lock the key row only: FOR UPDATE on the join would also lock the tenant row.
    old = ApiKey.objects.select_for_update(of=("self",)).select_related("tenant").get(pk=key.pk)
    if old.status(now) not in ("active", "expiring"):
        raise ValidationError(NOT_ROTATABLE)
    tenant = old.tenant
    owner = old.service_id if old.service_id_id else old.user
    owner_role = _owner_role(tenant, owner)
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
    clean_scopes, networks = validate_policy(
        tenant=tenant,
        owner_role=owner_role,
        scopes=old.scopes,
        expires_at=expires_at,
        allowed_ips=old.allowed_ips,
        now=now,
    )
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
        old.revoked_by = None if isinstance(actor, Actor) else actor.user
        fields += ["revoked_at", "revoked_reason", "revoked_by"]
    old.save(update_fields=fields)
    new, plaintext = _create(
        tenant=tenant,
        owner=owner,
        name=old.name,
        scopes=clean_scopes,
        networks=networks,
        expires_at=expires_at,
        created_by=None if isinstance(actor, Actor) else actor.user,
        rotated_from=old,
        alert_on_new_network=old.alert_on_new_network,
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
            "previous_works_until": old.revoked_at.isoformat()
            if old.revoked_at
            else old.expires_at.isoformat(),
        },
    )
    return new, plaintext


# --- Lifecycle: least privilege, alerts, operator look-ups (issue 8) ---------------------------

NOTHING_USED = (
    "This key used none of its scopes in the last %(days)d days: narrowing would leave it "
    "with none. Revoke it instead."
)
NOTHING_TO_NARROW = "This key used every scope it holds in the last %(days)d days."
NOT_NARROWABLE = "Only an active key can be narrowed."
UNUSED_SCOPE_DAYS = 90


@transaction.atomic
def key_narrow_scopes(
    *,
    actor: Principal | Actor,
    key: ApiKey,
    context: RequestContext | None = None,
    now: datetime | None = None,
) -> ApiKey:
    """Narrow ``key``'s scopes to those it (or the keys it was rotated from) used in the last
    UNUSED_SCOPE_DAYS days. Records ``key.scopes_narrowed`` with the scopes before and after.

    Raises PermissionDenied (actor may not manage the key) or ValidationError (not active,
    nothing used: never narrows to nothing, or nothing to remove).
    """
    from keys.selectors import key_used_scopes

    now = now or _now()
    _authorize_manage(actor, key)
    locked = ApiKey.objects.select_for_update(of=("self",)).select_related("tenant").get(pk=key.pk)
    if locked.status(now) not in ("active", "expiring"):
        raise ValidationError(NOT_NARROWABLE)
    used = key_used_scopes(locked, since=now - timedelta(days=UNUSED_SCOPE_DAYS))
    after = [scope for scope in locked.scopes if scope in used]
    if not after:
        raise ValidationError(NOTHING_USED % {"days": UNUSED_SCOPE_DAYS})
    if after == list(locked.scopes):
        raise ValidationError(NOTHING_TO_NARROW % {"days": UNUSED_SCOPE_DAYS})
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
    locked = ApiKey.objects.select_for_update(of=("self",)).select_related("tenant").get(pk=key.pk)
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


class LookupResult:
    """What an operator's look-up found: ``key`` (or None) and ``outcome``."""

    NOT_A_KEY = "not_a_keyward_key"
    NO_SUCH_KEY = "no_such_key"
    FOUND = "found"

    def __init__(self, outcome: str, key: ApiKey | None = None, hint: str = "") -> None:
        self.outcome, self.key, self.hint = outcome, key, hint

    @property
    def message(self) -> str:
        if self.outcome == self.NOT_A_KEY:
            return "not a Keyward key (its format or checksum is wrong)"
        if self.outcome == self.NO_SUCH_KEY:
            return f"no such key ({self.hint}): well-formed, but Keyward never issued it"
        return f"{self.key.name} ({self.hint})"

    def facts(self, now: datetime | None = None) -> list[tuple[str, str]]:
        """Return (label, value) lines describing the key found (none if nothing was found)."""
        key = self.key
        if key is None:
            return []

        def when(moment) -> str:
            return f"{moment:%Y-%m-%d %H:%M:%S} UTC" if moment else "never"

        last = when(key.last_used_at)
        if key.last_used_at and key.last_used_ip:
            last += f" from {key.last_used_ip}"
        facts = [
            ("Key", f"{key.name} ({key.hint}), id {key.pk}"),
            ("Kind", "personal access token" if key.is_personal else "service key"),
            ("Tenant", f"{key.tenant.slug} ({key.tenant.name})"),
            ("Owner", key.user.email if key.user_id else f"service ID {key.service_id.name}"),
            ("Status", key.status(now)),
            ("Scopes", ", ".join(key.scopes) or "none"),
            ("Created", when(key.created_at)),
            ("Expires", when(key.expires_at)),
            ("Last used", last),
        ]
        if key.revoked_at:
            reason = f": {key.revoked_reason}" if key.revoked_reason else ""
            facts.append(("Revoked", when(key.revoked_at) + reason))
        return facts


@transaction.atomic
def key_lookup_token(
    *, actor: Actor, token: str, context: RequestContext | None = None
) -> LookupResult:
    """Find the key a plaintext token belongs to, for incident response. Records
    ``key.looked_up`` (with the token's hint, never the token) whatever the outcome.

    A string that fails the format or checksum is "not a Keyward key" with no key query.
    """
    parsed = tokens.parse(token.strip())
    if parsed is None:
        result = LookupResult(LookupResult.NOT_A_KEY)
    else:
        key = (
            ApiKey.objects.select_related("tenant", "user", "service_id")
            .filter(digest=tokens.digest(parsed.token))
            .first()
        )
        outcome = LookupResult.FOUND if key is not None else LookupResult.NO_SUCH_KEY
        result = LookupResult(outcome, key, parsed.hint)
    audit.record(
        "key.looked_up",
        actor=actor,
        tenant=result.key.tenant if result.key else None,
        target=result.key,
        outcome="success" if result.key else "failure",
        context=context,
        metadata={"result": result.outcome, "hint": result.hint},
    )
    return result
