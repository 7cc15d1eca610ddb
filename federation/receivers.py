"""Model signals federation listens to (connected in ``FederationConfig.ready()``)."""

import logging

from django.db import transaction

from federation import revocation

logger = logging.getLogger("keyward.federation")


def revoke_tokens_of_revoked_key(sender, instance, update_fields=None, **kwargs) -> None:
    """``post_save`` of an ApiKey: once revoked, its JWTs are refused by Keyward's own API (once
    the revocation commits; within the refresh bound in other processes)."""
    if instance.revoked_at is None:
        return
    if update_fields is not None and "revoked_at" not in update_fields:
        return
    key_id = instance.pk

    def publish() -> None:
        try:
            revocation.revoke_key(key_id)
        except Exception:  # noqa: BLE001 - the key is revoked; its JWTs expire within 15 min
            logger.error("federation: cannot publish the revocation of key %s", key_id)

    transaction.on_commit(publish)
