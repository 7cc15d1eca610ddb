"""Key approvals (GitHub's fine-grained token approval): the tenant's policy decides which new
keys wait for a second person; a pending key is shown once but answers 401 ``pending_approval``
until an owner or admin other than its requester approves it with a reason (four-eyes). A
denial revokes the key. Keys pending longer than the policy's days are denied by keys_maintain;
approvers get a daily digest (``keys_approval_digest``). Every decision commits with its audit
event; every e-mail leaves on commit and never holds a token."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

import audit
from accounts import roles
from accounts.models import KeyApproval, Tenant
from accounts.principals import Principal
from common.request import RequestContext
from keys import notifications
from keys.models import ApiKey, Approval
from keys.services.change import _lock
from keys.services.issue import _now
from keys.services.usage import _system

NOT_AN_APPROVER = "Only the tenant's owners and admins approve keys."
FOUR_EYES = "Someone other than the person who asked for this key must decide on it."
NOT_PENDING = "This key is not waiting for approval."
REASON_REQUIRED = "Give a reason: it is recorded and sent to the person who asked."
AUTO_DENIED = "pending for more than %(days)d days"
DIGEST_BATCH = 50  # keys listed in one digest e-mail; the queue page has them all


def approval_needed(tenant: Tenant, *, service: bool, scopes) -> bool:
    """Return whether the tenant's policy makes a new key with ``scopes`` wait for approval."""
    policy = tenant.key_approval
    if policy == KeyApproval.ALL:
        return True
    if policy == KeyApproval.SERVICE:
        return service
    if policy == KeyApproval.OUTSIDE_DEFAULT:
        allowed = set(tenant.approval_default_scopes or [])
        return any(scope not in allowed for scope in scopes)
    return False


def may_approve(principal: Principal) -> bool:
    """Return whether ``principal`` may decide on pending keys (owners and admins, in person)."""
    return (
        principal.key is None
        and principal.user is not None
        and roles.may(principal.role, roles.Action.KEYS_MANAGE_ALL)
    )


def requester_of(key: ApiKey):
    """Return the person who asked for ``key``: who issued it (None: the command line)."""
    return key.created_by


def _authorize_decision(actor: Principal, key: ApiKey) -> None:
    if not may_approve(actor) or actor.tenant.pk != key.tenant_id:
        raise PermissionDenied(NOT_AN_APPROVER)
    # SECURITY: four eyes: neither the requester nor the key's owner approves their own key.
    if actor.user.pk in {key.created_by_id, key.user_id}:
        raise PermissionDenied(FOUR_EYES)


def _requester_emails(key: ApiKey) -> list[str]:
    requester = requester_of(key)
    if requester is not None and requester.is_active:
        return [requester.email]
    return notifications.key_contacts(key)


def _describe(key: ApiKey) -> str:
    return (
        f"Key: {key.name} ({key.hint})\n"
        f"Owner: {key.owner_description}\n"
        f"Scopes: {', '.join(key.scopes)}\n"
        f"Tenant: {key.tenant.name} ({key.tenant.slug})\n"
    )


def _decide(
    *, actor, key: ApiKey, approve: bool, reason: str, context, now: datetime, automatic=False
) -> ApiKey:
    reason = (reason or "").strip()[:200]
    if not reason:
        raise ValidationError({"reason": [REASON_REQUIRED]})
    locked = _lock(key)
    if locked.approval != Approval.PENDING or locked.revoked_at is not None:
        raise ValidationError(NOT_PENDING)
    person = None if automatic else actor.user
    locked.approval = Approval.APPROVED if approve else Approval.DENIED
    locked.approval_decided_at = now
    locked.approval_decided_by = person
    locked.approval_reason = reason
    fields = ["approval", "approval_decided_at", "approval_decided_by", "approval_reason"]
    if not approve:
        # SECURITY: a denied key never works: it is revoked, irreversibly.
        locked.revoked_at, locked.revoked_by = now, person
        locked.revoked_reason = f"approval denied: {reason}"[:200]
        fields += ["revoked_at", "revoked_by", "revoked_reason"]
    locked.save(update_fields=fields)
    audit.record(
        "key.approved" if approve else "key.approval_denied",
        actor=_system() if automatic else actor,
        tenant=locked.tenant,
        target=locked,
        context=context,
        metadata={
            "reason": reason,
            "requested_by": locked.created_by.email if locked.created_by_id else None,
            "scopes": list(locked.scopes),
            **({"automatic": True} if automatic else {}),
        },
    )
    verdict = "approved" if approve else "denied"
    after = (
        "It works from now on."
        if approve
        else "It was revoked and will never work: issue a new key if you still need one."
    )
    notifications.send_on_commit(
        f"Keyward: your key “{locked.name}” ({locked.hint}) was {verdict}",
        f"{_describe(locked)}Decision: {verdict}"
        + (f" by {actor.user.email}" if person else " automatically")
        + f"\nReason: {reason}\n\n{after}\n\n{notifications.key_link(locked)}\n",
        _requester_emails(locked),
    )
    for field in fields:
        setattr(key, field, getattr(locked, field))
    return locked


@transaction.atomic
def key_approve(
    *,
    actor: Principal,
    key: ApiKey,
    reason: str,
    context: RequestContext | None = None,
    now: datetime | None = None,
) -> ApiKey:
    """Approve a pending key: it works from now on. Records ``key.approved``; e-mails the
    requester on commit. Raises PermissionDenied (not an approver, or the requester or owner)
    or ValidationError (no reason, not pending)."""
    _authorize_decision(actor, key)
    return _decide(
        actor=actor, key=key, approve=True, reason=reason, context=context, now=now or _now()
    )


@transaction.atomic
def key_deny(
    *,
    actor: Principal,
    key: ApiKey,
    reason: str,
    context: RequestContext | None = None,
    now: datetime | None = None,
) -> ApiKey:
    """Deny a pending key: it is revoked. Records ``key.approval_denied``; e-mails the requester
    on commit. Raises as ``key_approve``."""
    _authorize_decision(actor, key)
    return _decide(
        actor=actor, key=key, approve=False, reason=reason, context=context, now=now or _now()
    )


def keys_deny_stale_approvals(*, now: datetime | None = None, batch: int = 500) -> int:
    """Deny every key pending longer than its tenant's ``approval_expire_days``; return how many.
    Rows are claimed with SKIP LOCKED; each denial commits with its event and e-mail."""
    now = now or _now()
    denied = 0
    for tenant in Tenant.objects.filter(keys__approval=Approval.PENDING).distinct().order_by("id"):
        days = tenant.approval_expire_days
        try:
            cutoff = now - timedelta(days=days)
        except OverflowError:
            continue
        while True:
            with transaction.atomic():
                keys = list(
                    ApiKey.objects.for_tenant(tenant)
                    .select_for_update(skip_locked=True, of=("self",))
                    .select_related("tenant", "user", "service_id", "created_by")
                    .filter(approval=Approval.PENDING, revoked_at=None, created_at__lte=cutoff)
                    .order_by("id")[:batch]
                )
                for key in keys:
                    _decide(
                        actor=None,
                        key=key,
                        approve=False,
                        reason=AUTO_DENIED % {"days": days},
                        context=None,
                        now=now,
                        automatic=True,
                    )
            denied += len(keys)
            if len(keys) < batch:
                break
    return denied


@dataclass
class DigestReport:
    tenants: int = 0
    keys: int = 0


def keys_approval_digest(*, now: datetime | None = None) -> DigestReport:
    """E-mail each tenant's owners and admins the keys waiting for their approval (one e-mail
    per tenant with any, oldest first) and record ``key.approval_digest_sent``."""
    from django.urls import reverse

    from accounts.services import absolute_url

    now = now or _now()
    report = DigestReport()
    tenants = Tenant.objects.filter(keys__approval=Approval.PENDING, keys__revoked_at=None)
    for tenant in tenants.distinct().order_by("id"):
        with transaction.atomic():
            pending = ApiKey.objects.for_tenant(tenant).filter(
                approval=Approval.PENDING, revoked_at=None
            )
            total = pending.count()
            keys = list(
                pending.select_related("tenant", "user", "service_id", "created_by").order_by(
                    "created_at", "id"
                )[:DIGEST_BATCH]
            )
            recipients = notifications.tenant_key_managers(tenant)
            if not keys or not recipients:
                continue
            lines = []
            for key in keys:
                by = key.created_by.email if key.created_by_id else "the command line"
                waited = max(0, (now - key.created_at).days)
                lines.append(
                    f"- {key.name} ({key.hint}), {key.owner_description}, asked by {by}, "
                    f"waiting {waited} day(s); scopes: {', '.join(key.scopes)}"
                )
            more = f"\n…and {total - len(keys)} more.\n" if total > len(keys) else ""
            queue = absolute_url(reverse("keys:approvals", kwargs={"slug": tenant.slug}))
            notifications.send_on_commit(
                f"Keyward: {total} key(s) waiting for approval in {tenant.name}",
                "These keys wait for an owner or admin other than the person who asked:\n\n"
                + "\n".join(lines)
                + more
                + f"\n\nA key still pending after {tenant.approval_expire_days} days is denied."
                f"\n\nReview them:\n\n{queue}\n",
                recipients,
            )
            audit.record(
                "key.approval_digest_sent",
                actor=_system(),
                tenant=tenant,
                target=tenant,
                metadata={"pending": total, "recipients": recipients},
            )
        report.tenants += 1
        report.keys += total
    return report


def approval_requested(key: ApiKey, *, context: RequestContext | None, actor) -> None:
    """Mark a new ``key`` pending, record ``key.approval_requested`` and tell the approvers
    (inside key_issue's transaction)."""
    key.approval = Approval.PENDING
    key.save(update_fields=["approval"])
    audit.record(
        "key.approval_requested",
        actor=actor,
        tenant=key.tenant,
        target=key,
        context=context,
        metadata={"policy": key.tenant.key_approval, "scopes": list(key.scopes)},
    )
    approvers = [
        email
        for email in notifications.tenant_key_managers(key.tenant)
        if not key.created_by_id or email != key.created_by.email
    ]
    from django.urls import reverse

    from accounts.services import absolute_url

    queue = absolute_url(reverse("keys:approvals", kwargs={"slug": key.tenant.slug}))
    notifications.send_on_commit(
        f"Keyward: a key waits for your approval in {key.tenant.name}",
        f"{_describe(key)}Asked by: "
        f"{key.created_by.email if key.created_by_id else 'the command line'}\n\n"
        f"It does not work until an owner or admin other than the person who asked approves it."
        f"\n\n{queue}\n",
        approvers,
    )
