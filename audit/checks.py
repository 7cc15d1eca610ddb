"""System checks for the audit app's settings, registered in ``AuditConfig.ready()``."""

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning

from audit import conf, signing

UNSIGNED_SEALS = (
    "KEYWARD_AUDIT_SIGNING_KEY is not set: audit seals are made unsigned, so a database "
    "superuser can rewrite audit events and recompute the seal chain undetected."
)


def check_signing_keys(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """Refuse a configured seal signing or verification key that cannot be read."""
    try:
        signing.verify_keys()
    except signing.SigningKeyError as error:
        return [Error(str(error), id="keyward.E010")]
    return []


def check_seals_are_signed(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """Warn (``check --deploy``) when production seals would be unsigned."""
    if settings.DEBUG or conf.settings.AUDIT_SIGNING_KEY:
        return []
    return [
        Warning(
            UNSIGNED_SEALS,
            hint="Run manage.py audit_signing_key and set KEYWARD_AUDIT_SIGNING_KEY to the "
            "private key (or its file) where audit_seal runs; keep it out of the database.",
            id="keyward.W010",
        )
    ]
