"""Edit a key in place: name, description, allowed networks, new-network alert, scopes, expiry
and its own request rate. What only narrows a key (fewer scopes, fewer networks, an earlier
expiry, a lower rate) needs nothing more; what widens it (more scopes, more networks, a later
expiry) needs a fresh second factor (sudo) and stays within the owner's ceiling and the tenant's
policy. Every edit commits with one ``key.updated`` event holding each changed field's before
and after (a key's fields hold no secret)."""

import ipaddress
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

import audit
from accounts.principals import Principal
from audit.services import Actor
from common import ratelimit
from common.request import RequestContext
from keys.models import ApiKey, Approval
from keys.networks import parse_cidrs
from keys.services.change import _lock
from keys.services.issue import (
    NAME_REQUIRED,
    NAME_TAKEN,
    _audit_actor,
    _authorize_manage,
    _now,
    _owner_role,
    validate_policy,
)
from keys.throttling import rate_at_most, tenant_rate

NOT_EDITABLE = "Only an active key can be edited."
SUDO_NEEDED = (
    "Widening a key (more scopes, more networks or a later expiry) needs a fresh verification "
    "with your second factor."
)
DESCRIPTION_TOO_LONG = "At most 500 characters."
BAD_RATE = "Write a rate as requests/period, e.g. 100/min, 10/s, 5000/hour or 100000/day."
RATE_ABOVE_TENANT = "A key's rate cannot be higher than the tenant's rate (%(rate)s)."
WIDEN_NEEDS_APPROVAL = (
    "This tenant's policy needs a second person to approve keys with these scopes: issue a "
    "new key instead of widening this one."
)
EDITABLE_FIELDS = (
    "name",
    "description",
    "allowed_ips",
    "alert_on_new_network",
    "scopes",
    "expires_at",
    "rate",
)


class SudoRequired(PermissionDenied):
    """The change widens the key and the session's second factor is not fresh."""


@dataclass(frozen=True)
class KeyChanges:
    """What an edit changes: field -> (before, after), and whether it widens the key."""

    changed: dict
    widens: list[str]


def _network_within(network: str, others: list[str]) -> bool:
    net = ipaddress.ip_network(network)
    return any(
        net.version == other.version and net.subnet_of(other)
        for other in map(ipaddress.ip_network, others)
    )


def networks_widen(before: list[str], after: list[str]) -> bool:
    """Return whether ``after`` allows an address ``before`` did not (empty: every address)."""
    if not before:
        return False
    if not after:
        return True
    return not all(_network_within(network, before) for network in after)


def _clean_rate(tenant, rate: str) -> str:
    rate = (rate or "").strip().replace(" ", "")
    if not rate:
        return ""
    try:
        parsed = ratelimit.parse_rate(rate)
    except ValueError:
        raise ValidationError({"rate": [BAD_RATE]}) from None
    ceiling = tenant_rate(tenant)
    if not rate_at_most(parsed, ceiling):
        shown = tenant.key_rate or f"{ceiling[0]}/{ceiling[1]}s"
        raise ValidationError({"rate": [RATE_ABOVE_TENANT % {"rate": shown}]})
    return rate


def _clean_name(key: ApiKey, name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": [NAME_REQUIRED]})
    if len(name) > 100:
        raise ValidationError({"name": ["At most 100 characters."]})
    owner = {"service_id_id": key.service_id_id} if key.service_id_id else {"user_id": key.user_id}
    taken = (
        ApiKey.objects.for_tenant(key.tenant_id)
        .active()
        .filter(name=name, **owner)
        .exclude(pk=key.pk)
        .exists()
    )
    if taken:
        raise ValidationError({"name": [NAME_TAKEN % {"name": name}]})
    return name


def _needs_approval(key: ApiKey, scopes: list[str]) -> bool:
    from keys.services.approvals import approval_needed

    return approval_needed(key.tenant, service=key.service_id_id is not None, scopes=scopes)


def key_changes(key: ApiKey, values: dict, *, now: datetime) -> KeyChanges:
    """Return the clean changes ``values`` make to ``key`` (fields absent are unchanged).

    Raises ValidationError keyed by field (policy, ceiling, names, networks, rate).
    """
    tenant = key.tenant
    after = {field: getattr(key, field) for field in EDITABLE_FIELDS}
    errors: dict[str, list] = {}
    for field, clean in (
        ("name", lambda v: _clean_name(key, v)),
        ("rate", lambda v: _clean_rate(tenant, v)),
        ("allowed_ips", lambda v: parse_cidrs(v or [])),
    ):
        if field in values:
            try:
                after[field] = clean(values[field])
            except ValidationError as error:
                errors.setdefault(field, []).extend(
                    error.message_dict.get(field, error.messages)
                    if hasattr(error, "error_dict")
                    else error.messages
                )
    if "description" in values:
        description = (values["description"] or "").strip()
        if len(description) > 500:
            errors["description"] = [DESCRIPTION_TOO_LONG]
        after["description"] = description
    if "alert_on_new_network" in values:
        after["alert_on_new_network"] = bool(values["alert_on_new_network"])
    if "scopes" in values:
        after["scopes"] = values["scopes"]
    if "expires_at" in values:
        after["expires_at"] = values["expires_at"]
    widens_scopes = "scopes" in values and not set(after["scopes"] or []) <= set(key.scopes)
    extends = "expires_at" in values and (
        (key.expires_at is not None and after["expires_at"] is None)
        or (
            key.expires_at is not None
            and after["expires_at"] is not None
            and after["expires_at"] > key.expires_at
        )
    )
    if "scopes" in values or extends:
        # The scopes against the owner's current ceiling, a new expiry against the policy.
        try:
            clean_scopes, _ = validate_policy(
                tenant=tenant,
                owner_role=_owner_role(tenant, key.owner),
                scopes=after["scopes"],
                expires_at=after["expires_at"] if extends else None,
                allowed_ips=[],
                now=now,
            )
        except ValidationError as error:
            for field, messages in error.message_dict.items():
                if field == "expires_at" and not extends:
                    continue  # "every key must expire" judges a new expiry only
                errors.setdefault(field, []).extend(messages)
        else:
            after["scopes"] = clean_scopes
    if "expires_at" in values and not extends and after["expires_at"] != key.expires_at:
        if after["expires_at"] is not None and after["expires_at"] <= now:
            errors.setdefault("expires_at", []).append("The expiry must be in the future.")
    if widens_scopes and "scopes" not in errors and _needs_approval(key, after["scopes"]):
        errors.setdefault("scopes", []).append(WIDEN_NEEDS_APPROVAL)
    if errors:
        raise ValidationError(errors)
    changed = {
        field: (getattr(key, field), after[field])
        for field in EDITABLE_FIELDS
        if after[field] != getattr(key, field)
    }
    widens = []
    if "scopes" in changed and widens_scopes:
        widens.append("scopes")
    if "allowed_ips" in changed and networks_widen(key.allowed_ips or [], after["allowed_ips"]):
        widens.append("allowed_ips")
    if "expires_at" in changed and extends:
        widens.append("expires_at")
    return KeyChanges(changed, widens)


def _shown(value):
    return value.isoformat() if isinstance(value, datetime) else value


@transaction.atomic
def key_update(
    *,
    actor: Principal | Actor,
    key: ApiKey,
    values: dict,
    sudo: bool,
    context: RequestContext | None = None,
    now: datetime | None = None,
) -> ApiKey:
    """Change the fields of ``key`` named in ``values`` (see EDITABLE_FIELDS). Records
    ``key.updated`` with each changed field's before and after; nothing when nothing changes.

    Raises PermissionDenied (may not manage the key), SudoRequired (the edit widens the key and
    ``sudo`` is False) or ValidationError keyed by field (nothing is written).
    """
    now = now or _now()
    _authorize_manage(actor, key)
    if isinstance(actor, Principal) and actor.key is not None:
        raise PermissionDenied("A key cannot edit keys.")  # SECURITY: no 2FA behind a key
    locked = _lock(key)
    if not locked.is_rotatable(now) or locked.approval == Approval.DENIED:
        raise ValidationError(NOT_EDITABLE)
    changes = key_changes(locked, values, now=now)
    if changes.widens and not sudo:
        raise SudoRequired(SUDO_NEEDED)
    if not changes.changed:
        return locked
    for field, (_, value) in changes.changed.items():
        setattr(locked, field, value)
    locked.full_clean(exclude=["digest", "tenant", "user", "service_id", "created_by"])
    locked.save(update_fields=list(changes.changed))
    audit.record(
        "key.updated",
        actor=_audit_actor(actor),
        tenant=locked.tenant,
        target=locked,
        context=context,
        metadata={
            "changed": {
                field: {"before": _shown(before), "after": _shown(after)}
                for field, (before, after) in changes.changed.items()
            },
            "widened": changes.widens,
        },
    )
    for field in changes.changed:
        setattr(key, field, getattr(locked, field))
    return locked
