"""Lifecycle work for cron: record expiries. Safe to run on several hosts at once."""

from datetime import datetime

from django.db import transaction
from django.utils import timezone

import audit
from audit.services import Actor
from keys.models import ApiKey

BATCH = 500


def keys_expire(*, now: datetime | None = None, batch: int = BATCH) -> int:
    """Record ``key.expired`` once for each key past its expiry (rotation grace included).

    Rows are claimed with ``SELECT … FOR UPDATE SKIP LOCKED``, so concurrent runs never record a
    key twice; each key's mark and event commit together. Returns the number of keys expired.
    """
    now = now or timezone.now()
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
                    actor=Actor.system("keys_maintain"),
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
