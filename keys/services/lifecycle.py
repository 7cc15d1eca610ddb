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
from django.db.models import F, Q
from django.db.models.functions import Coalesce

import audit
from accounts.models import Tenant
from keys import notifications
from keys.models import ApiKey
from keys.services.approvals import keys_deny_stale_approvals
from keys.services.change import key_revoke
from keys.services.issue import _now
from keys.services.usage import _system, keys_usage_rollup

BATCH = 500
# Lead times of the expiry warnings, the most urgent first: a key already inside its last day
# gets the 1-day warning only, never a late 7-day one.
WARNING_DAYS = (1, 7)


@dataclass
class MaintenanceReport:
    counted: int = 0
    expired: int = 0
    warned: int = 0
    revoked: int = 0
    denied: int = 0

    def lines(self) -> list[str]:
        return [
            f"{self.expired} keys expired.",
            f"{self.warned} expiry warnings sent.",
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


def keys_warn_expiring(*, now: datetime | None = None, batch: int = BATCH) -> int:
    """E-mail each warning due (7 days, then 1 day before expiry) once; return how many.

    A warning is due for a key that is active (not revoked, not rotated) and lives longer than
    the warning's lead time: a 3-day key gets the 1-day warning only. The key's
    ``expiry_warning_days``, its ``key.expiry_warning_sent`` event and the e-mail (on commit)
    belong to one transaction; rows are claimed with SKIP LOCKED.
    """
    now = now or _now()
    sent = 0
    for days in WARNING_DAYS:
        lead = timedelta(days=days)
        not_sent = Q(expiry_warning_days=None) | Q(expiry_warning_days__gt=days)
        while True:
            with transaction.atomic():
                keys = list(
                    ApiKey.objects.select_for_update(skip_locked=True, of=("self",))
                    .select_related("tenant", "user", "service_id")
                    .filter(not_sent, revoked_at=None, rotated_at=None)
                    .filter(expires_at__gt=now, expires_at__lte=now + lead)
                    .filter(expires_at__gte=F("created_at") + lead)
                    .order_by("id")[:batch]
                )
                for key in keys:
                    _warn(key, days)
            sent += len(keys)
            if len(keys) < batch:
                break
    return sent


def _warn(key: ApiKey, days: int) -> None:
    recipients = notifications.key_contacts(key)
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
