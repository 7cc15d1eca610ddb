"""Issue keys: who may issue or manage a key, the tenant's policy for a key, and ``key_issue``."""

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
NO_PERSON_TOKENS_HERE = "Personal access tokens are issued only by their owner, in the portal."
NOT_YOURS = "You may not manage this key."


def _now() -> datetime:
    """The clock of the key services (one seam, like Django's ``tokens.py``)."""
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


def _audit_actor(actor: Principal | Actor):
    return actor if isinstance(actor, Actor) else actor.audit_actor


def _acting_user(actor: Principal | Actor) -> User | None:
    """Return the person acting (recorded as created_by, revoked_by), None for the CLI."""
    return None if isinstance(actor, Actor) else actor.user


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
    **fields,
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
        **fields,
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
    Records ``key.issued`` in the same transaction; a key the tenant's approval policy covers
    is left pending (``key.approval_requested``) and works only once approved.
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
    key, plaintext = _create(
        tenant=tenant,
        owner=owner,
        name=name,
        scopes=clean_scopes,
        networks=networks,
        expires_at=expires_at,
        created_by=_acting_user(actor),
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
    from keys.services.approvals import approval_needed, approval_requested

    if approval_needed(tenant, service=isinstance(owner, ServiceID), scopes=clean_scopes):
        approval_requested(key, context=context, actor=_audit_actor(actor))
    return key, plaintext
