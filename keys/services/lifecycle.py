"""Lifecycle work for cron (``keys_maintain``): roll up usage (``usage.py``), record expiries,
warn before expiry, revoke keys nobody uses, deny keys pending approval too long. Idempotent,
and safe to run on several hosts at once.

Every job claims its rows with ``SELECT … FOR UPDATE SKIP LOCKED`` (the rollup: its one state
row), so concurrent runs never act on a key twice; each key's mark, its audit event and its
e-mail (sent on commit) belong to one transaction, so each warning goes out once.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.db.models.functions import Coalesce

import audit
from accounts.models import Tenant
from keys import notifications
from keys.models import ApiKey, KeyWarning, WarningKind
from keys.services.approvals import keys_deny_stale_approvals
from keys.services.change import key_revoke
from keys.services.issue import _now
from keys.services.usage import _system, keys_usage_rollup

BATCH = 500
# Days before an inactivity revocation that the key's contacts are warned; a policy of fewer
# than twice that warns halfway (at least one day before).
UNUSED_WARNING_DAYS = 30


@dataclass
class MaintenanceReport:
    counted: int = 0
    expired: int = 0
    warned: int = 0
    revoked: int = 0
    unused_warned: int = 0
    denied: int = 0

    def lines(self) -> list[str]:
        return [
            f"{self.expired} keys expired.",
            f"{self.warned} expiry warnings sent.",
            f"{self.unused_warned} warnings of revocation for inactivity sent.",
            f"{self.revoked} unused keys revoked.",
            f"{self.denied} keys denied after waiting too long for approval.",
            f"{self.counted} API requests rolled up.",
        ]


def keys_maintain(*, now: datetime | None = None) -> MaintenanceReport:
    """Run every lifecycle job once; return what each did."""
    now = now or _now()
    report = MaintenanceReport()
    report.counted = keys_usage_rollup(now=now)
    report.expired = keys_expire(now=now)
    report.warned = keys_warn_expiring(now=now)
    report.unused_warned = keys_warn_unused(now=now)
    report.revoked = keys_revoke_unused(now=now)
    report.denied = keys_deny_stale_approvals(now=now)
    return report


def keys_expire(*, now: datetime | None = None, batch: int = BATCH) -> int:
    """Record ``key.expired`` once for each key past its expiry (rotation grace included).

    Rows are claimed with ``SELECT … FOR UPDATE SKIP LOCKED``, so concurrent runs never record a
    key twice; each key's mark and event commit together. Returns the number of keys expired.
    """
    now = now or _now()
    done = 0
    while True:
        with transaction.atomic():
            keys = list(
                ApiKey.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("tenant")
                .filter(revoked_at=None, expired_at=None, expires_at__lte=now)
                .order_by("id")[:batch]
            )
            for key in keys:
                key.expired_at = key.expires_at
                key.save(update_fields=["expired_at"])
                audit.record(
                    "key.expired",
                    actor=_system(),
                    tenant=key.tenant,
                    target=key,
                    metadata={
                        "expires_at": key.expires_at.isoformat(),
                        "rotated": key.rotated_at is not None,
                    },
                )
        done += len(keys)
        if len(keys) < batch:
            return done


def _warning_days(tenant: Tenant) -> list[int]:
    """Return the tenant's expiry warning lead times, the most urgent first."""
    days = tenant.expiry_warning_days or []
    return sorted({d for d in days if isinstance(d, int) and 1 <= d <= 3650})


def keys_warn_expiring(*, now: datetime | None = None, batch: int = BATCH) -> int:
    """E-mail each expiry warning due (the tenant's ``expiry_warning_days``: 30, 7 and 1 days
    before by default) once; return how many.

    A ``d``-day warning is due for an active key (not revoked, not rotated) that expires within
    ``d`` days, lives longer than ``d`` days, and got no warning of ``d`` days or fewer: a key
    already inside its last day gets the 1-day warning only, never a late 7-day one. The
    ``KeyWarning`` row (unique per key and days), the key's ``expiry_warning_days``, its
    ``key.expiry_warning_sent`` event (a ``key.expiring`` webhook) and the e-mail (on commit)
    belong to one transaction; rows are claimed with SKIP LOCKED.
    """
    now = now or _now()
    sent = 0
    for tenant in Tenant.objects.order_by("id"):
        for days in _warning_days(tenant):
            lead = timedelta(days=days)
            sooner = KeyWarning.objects.filter(
                key=OuterRef("pk"), kind=WarningKind.EXPIRY, days__lte=days
            )
            while True:
                with transaction.atomic():
                    keys = list(
                        ApiKey.objects.for_tenant(tenant)
                        .select_for_update(skip_locked=True, of=("self",))
                        .select_related("tenant", "user", "service_id")
                        .filter(revoked_at=None, rotated_at=None)
                        .filter(expires_at__gt=now, expires_at__lte=now + lead)
                        .filter(expires_at__gt=F("created_at") + lead)
                        .exclude(Exists(sooner))
                        .order_by("id")[:batch]
                    )
                    for key in keys:
                        _warn(key, days, now)
                sent += len(keys)
                if len(keys) < batch:
                    break
    return sent


def _warn(key: ApiKey, days: int, now: datetime) -> None:
    recipients = notifications.key_contacts(key)
    KeyWarning.objects.create(key=key, kind=WarningKind.EXPIRY, days=days, sent_at=now)
    key.expiry_warning_days = days
    key.save(update_fields=["expiry_warning_days"])
    audit.record(
        "key.expiry_warning_sent",
        actor=_system(),
        tenant=key.tenant,
        target=key,
        metadata={
            "days": days,
            "expires_at": key.expires_at.isoformat(),
            "recipients": recipients,
        },
    )
    notifications.expiry_warning(key, days, recipients)


def keys_warn_unused(*, now: datetime | None = None, batch: int = BATCH) -> int:
    """Warn the contacts of each key that ``keys_revoke_unused`` will revoke within
    UNUSED_WARNING_DAYS (half the policy for a shorter one); return how many.

    Once per idle spell: a key used after its warning is warned again when it next falls idle
    (the ``KeyWarning`` row's ``sent_at`` moves). A key that expires before it would be revoked
    is not warned. The row, the ``key.unused_warning_sent`` event (a
    ``key.unused_revocation_pending`` webhook) and the e-mail (on commit) belong to one
    transaction; rows are claimed with SKIP LOCKED.
    """
    now = now or _now()
    warned = 0
    tenants = Tenant.objects.filter(revoke_unused_after_days__isnull=False).order_by("id")
    for tenant in tenants:
        days = tenant.revoke_unused_after_days
        lead_days = min(UNUSED_WARNING_DAYS, max(days // 2, 1))
        try:
            warn_from = now - timedelta(days=days - lead_days)
            revoke_from = now - timedelta(days=days)
        except OverflowError:
            continue  # a policy longer than the calendar: nothing can be that old
        warned_this_spell = KeyWarning.objects.filter(
            key=OuterRef("pk"),
            kind=WarningKind.UNUSED,
            sent_at__gte=Coalesce(OuterRef("last_used_at"), OuterRef("created_at")),
        )
        while True:
            with transaction.atomic():
                keys = list(
                    ApiKey.objects.for_tenant(tenant)
                    .usable(now)
                    .select_for_update(skip_locked=True, of=("self",))
                    .select_related("tenant", "user", "service_id")
                    .annotate(last_seen_at=Coalesce("last_used_at", "created_at"))
                    .filter(last_seen_at__lte=warn_from, last_seen_at__gt=revoke_from)
                    .filter(
                        Q(expires_at=None)
                        | Q(expires_at__gt=F("last_seen_at") + timedelta(days=days))
                    )
                    .exclude(Exists(warned_this_spell))
                    .order_by("id")[:batch]
                )
                for key in keys:
                    _warn_unused(key, days, lead_days, now)
            warned += len(keys)
            if len(keys) < batch:
                break
    return warned


def _warn_unused(key: ApiKey, days: int, lead_days: int, now: datetime) -> None:
    recipients = notifications.key_contacts(key)
    revoke_at = key.last_seen_at + timedelta(days=days)
    KeyWarning.objects.update_or_create(
        key=key, kind=WarningKind.UNUSED, days=lead_days, defaults={"sent_at": now}
    )
    audit.record(
        "key.unused_warning_sent",
        actor=_system(),
        tenant=key.tenant,
        target=key,
        metadata={
            "days": days,
            "revoke_at": revoke_at.isoformat(),
            "last_used_at": key.last_used_at.isoformat() if key.last_used_at else None,
            "recipients": recipients,
        },
    )
    notifications.unused_warning(key, days, revoke_at, recipients)


def keys_revoke_unused(*, now: datetime | None = None, batch: int = BATCH) -> int:
    """Revoke the keys nobody used for their tenant's ``revoke_unused_after_days`` (None: off);
    a key never used counts from its creation. Return how many.

    Each revocation goes through ``key_revoke`` (``key.revoked`` by the system, reason "unused
    for N days") and e-mails the key's owner on commit; rows are claimed with SKIP LOCKED.
    """
    now = now or _now()
    revoked = 0
    tenants = Tenant.objects.filter(revoke_unused_after_days__isnull=False).order_by("id")
    for tenant in tenants:
        days = tenant.revoke_unused_after_days
        try:
            cutoff = now - timedelta(days=days)
        except OverflowError:
            continue  # a policy longer than the calendar: nothing can be that old
        while True:
            with transaction.atomic():
                keys = list(
                    ApiKey.objects.for_tenant(tenant)
                    .usable(now)
                    .select_for_update(skip_locked=True, of=("self",))
                    .select_related("tenant", "user", "service_id")
                    .annotate(last_seen_at=Coalesce("last_used_at", "created_at"))
                    .filter(last_seen_at__lte=cutoff)
                    .order_by("id")[:batch]
                )
                for key in keys:
                    recipients = notifications.key_contacts(key)
                    key_revoke(actor=_system(), key=key, reason=f"unused for {days} days")
                    notifications.unused_revoked(key, days, recipients)
            revoked += len(keys)
            if len(keys) < batch:
                break
    return revoked
