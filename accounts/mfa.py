"""Second factors: TOTP enrolment, backup codes, and the account-wide failure counter."""

import math
import secrets
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django_otp import devices_for_user, verify_token

import audit
from accounts import conf, selectors
from accounts.models import (
    BACKUP_CODE_ALPHABET,
    BACKUP_CODE_LENGTH,
    AuthenticatorDevice,
    BackupCode,
    BackupCodeDevice,
    User,
)
from audit.services import Actor
from common import ratelimit
from common.request import RequestContext

BACKUP_CODE_COUNT = 10
CODE_MAX_LENGTH = 32  # longer input is no code: never looked up
BACKOFF_AFTER = 5
MAX_BACKOFF = timedelta(minutes=15)

LOCKED_MESSAGE = (
    "This account is locked after too many failed attempts. Reset your password by e-mail, "
    "or ask an operator to unlock it."
)
BACKOFF_MESSAGE = "Too many failed attempts. Try again in %(seconds)d seconds."
LAST_AUTHENTICATOR = (
    "Add another authenticator before removing this one: a second factor is mandatory."
)


def _new_backup_code() -> str:
    raw = "".join(secrets.choice(BACKUP_CODE_ALPHABET) for _ in range(BACKUP_CODE_LENGTH))
    half = BACKUP_CODE_LENGTH // 2
    return f"{raw[:half]}-{raw[half:]}"


@transaction.atomic
def backup_codes_generate(*, user: User, context: RequestContext | None = None) -> list[str]:
    """Replace the user's backup codes with ten new ones and return them (shown once)."""
    device, _ = BackupCodeDevice.objects.get_or_create(
        user=user, defaults={"name": "Backup codes", "confirmed": True}
    )
    device.codes.all().delete()
    codes = [_new_backup_code() for _ in range(BACKUP_CODE_COUNT)]
    BackupCode.objects.bulk_create(
        BackupCode(device=device, digest=device.digest_of(c)) for c in codes
    )
    audit.record(
        "mfa.backup_codes_generated",
        actor=user,
        target=user,
        context=context,
        metadata={"count": len(codes)},
    )
    return codes


def totp_pending_device(user: User) -> AuthenticatorDevice:
    """Return the user's unconfirmed TOTP device, creating one with a fresh key."""
    device = AuthenticatorDevice.objects.filter(user=user, confirmed=False).order_by("-id").first()
    if device is None:
        device = AuthenticatorDevice.objects.create(
            user=user, name="Authenticator app", confirmed=False
        )
    return device


def has_confirmed_totp(user: User) -> bool:
    return selectors.authenticator_list(user).exists()


@transaction.atomic
def totp_confirm(
    *, user: User, device: AuthenticatorDevice, context: RequestContext | None = None
) -> None:
    """Mark a just-verified TOTP device confirmed, and audit the enrolment."""
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    audit.record(
        "mfa.enrolled", actor=user, target=user, context=context, metadata={"device": device.name}
    )


def _clean_code(code: str) -> str:
    return "".join((code or "").split())


def code_devices(user: User, code: str, *, for_verify: bool = False) -> list:
    """Return the confirmed devices that ``code`` goes to: six digits go to the authenticator
    apps, anything else to the backup codes (so a mistyped TOTP code never throttles them).

    ``for_verify`` locks them (select_for_update): call it inside a transaction.
    """
    code = _clean_code(code)
    if not code or len(code) > CODE_MAX_LENGTH:
        return []
    is_totp = code.isdigit() and len(code) == 6
    return [
        device
        for device in devices_for_user(user, confirmed=True, for_verify=for_verify)
        if isinstance(device, BackupCodeDevice) != is_totp
    ]


def verify_any(user: User, code: str):
    """Return the confirmed device that accepts ``code`` (see ``code_devices``), or None.

    As django-otp's ``match_token``: the devices are read under a row lock in one transaction,
    so of two requests with the same code only the first passes (the second reads the time
    step the first used).
    """
    with transaction.atomic():
        for device in code_devices(user, code, for_verify=True):
            if device.verify_token(_clean_code(code)):
                return device
    return None


def verify_pending(user: User, device: AuthenticatorDevice, code: str):
    """Return ``device`` (an authenticator being enrolled) reloaded, if it accepts ``code``,
    else None; under a row lock, as django-otp's ``verify_token``."""
    return verify_token(user, device.persistent_id, _clean_code(code))


def device_retry_after(devices, now=None) -> int | None:
    """Return seconds until one of ``devices`` may check a code again (django-otp's per-device
    back-off), or None if one may now (or there is none)."""
    now = now or timezone.now()  # django-otp's clock, which set locked_until: not _now()
    waits = []
    for device in devices:
        allowed, details = device.verify_is_allowed()
        until = (details or {}).get("locked_until")
        if allowed or until is None:
            return None
        waits.append((until - now).total_seconds())
    return max(1, math.ceil(min(waits))) if waits else None


@transaction.atomic
def second_factor_verified(
    *, user: User, device, sudo: bool = False, context: RequestContext | None = None
) -> None:
    """Audit a code ``device`` accepted: ``mfa.verified`` (``mfa.sudo_verified`` when it opens
    sensitive actions), then ``mfa.backup_code_used`` with the codes left for a backup code."""
    kind = "backup_code" if isinstance(device, BackupCodeDevice) else "totp"
    audit.record(
        "mfa.sudo_verified" if sudo else "mfa.verified",
        actor=user,
        target=user,
        context=context,
        metadata={"device": kind},
    )
    if kind == "backup_code":
        audit.record(
            "mfa.backup_code_used",
            actor=user,
            target=user,
            context=context,
            metadata={"remaining": device.remaining},
        )


# --- Account-wide failure counter ---------------------------------------------------------------


def _now():
    return timezone.now()


def retry_after(user: User, now=None) -> int | None:
    """Return seconds to wait before the next attempt, 0 if locked for good, None if allowed."""
    if user.locked_at is not None:
        return 0
    if user.failed_auth_count < BACKOFF_AFTER or user.last_failed_auth_at is None:
        return None
    now = now or _now()
    delay = min(timedelta(seconds=2 ** (user.failed_auth_count - BACKOFF_AFTER)), MAX_BACKOFF)
    wait = (user.last_failed_auth_at + delay - now).total_seconds()
    return int(wait) + 1 if wait > 0 else None


def login_ip_wait(context: RequestContext | None) -> int | None:
    """Count a login attempt from the client's address; return the seconds it must wait when
    over KEYWARD_LOGIN_IP_RATE, else None."""
    ip = context.ip if context is not None else None
    return ratelimit.hit("login-ip", ip or "-", conf.settings.LOGIN_IP_RATE)


def attempt_wait(user: User, devices=()) -> tuple[int | None, str]:
    """Return ``(seconds, limit)`` before ``user`` may try again: the account's back-off or
    lock (``"account"``, 0 when locked), else that of ``devices`` (``"device"``); None if now."""
    wait = retry_after(user)
    if wait is not None:
        return wait, "account"
    return device_retry_after(devices), "device"


def attempt_throttled(
    *,
    user: User | None,
    wait: int,
    limit: str,
    email: str = "",
    context: RequestContext | None = None,
) -> None:
    """Audit an attempt refused unchecked (``auth.login_throttled``): by the per-address limit
    (``limit="ip"``, no user yet: the e-mail typed), or by the account's or an authenticator's
    back-off. It is no failed attempt: it is not counted against the account."""
    metadata = {"retry_after": wait}
    metadata.update({"locked": wait == 0} if limit == "account" else {"limit": limit})
    audit.record(
        "auth.login_throttled",
        actor=user if user is not None else Actor.anonymous(email),
        target=user,
        outcome="denied",
        context=context,
        metadata=metadata,
    )


def refusal_message(wait: int) -> str:
    return LOCKED_MESSAGE if wait == 0 else BACKOFF_MESSAGE % {"seconds": wait}


@transaction.atomic
def auth_failure(
    *, user: User, action: str, context: RequestContext | None = None, metadata=None
) -> None:
    """Count one failed password or second-factor attempt; lock the account at the limit."""
    locked = User.objects.select_for_update().get(pk=user.pk)
    locked.failed_auth_count += 1
    locked.last_failed_auth_at = _now()
    fields = ["failed_auth_count", "last_failed_auth_at"]
    audit.record(
        action,
        actor=user,
        target=user,
        outcome="failure",
        context=context,
        metadata={"consecutive_failures": locked.failed_auth_count, **(metadata or {})},
    )
    if locked.failed_auth_count >= conf.settings.LOCK_AFTER_FAILURES and locked.locked_at is None:
        locked.locked_at = _now()
        fields.append("locked_at")
        audit.record(
            "auth.account_locked",
            actor=user,
            target=user,
            context=context,
            outcome="denied",
            metadata={"consecutive_failures": locked.failed_auth_count},
        )
    locked.save(update_fields=fields)
    user.failed_auth_count, user.last_failed_auth_at = (
        locked.failed_auth_count,
        locked.last_failed_auth_at,
    )
    user.locked_at = locked.locked_at


def auth_success_reset(user: User) -> None:
    """Forget consecutive failures after a successful step."""
    if user.failed_auth_count:
        User.objects.filter(pk=user.pk).update(failed_auth_count=0, last_failed_auth_at=None)
        user.failed_auth_count = 0
        user.last_failed_auth_at = None


@transaction.atomic
def account_unlock(*, user: User, actor, context: RequestContext | None = None) -> None:
    """Lift a lock (operator action or password reset) and reset the failure counter."""
    was_locked = user.locked_at is not None
    User.objects.filter(pk=user.pk).update(
        locked_at=None, failed_auth_count=0, last_failed_auth_at=None
    )
    user.locked_at, user.failed_auth_count, user.last_failed_auth_at = None, 0, None
    if was_locked:
        audit.record("auth.account_unlocked", actor=actor, target=user, context=context)


@transaction.atomic
def totp_remove(
    *, user: User, device: AuthenticatorDevice, context: RequestContext | None = None
) -> None:
    """Remove an authenticator; the last one cannot go (the second factor is mandatory)."""
    confirmed = AuthenticatorDevice.objects.select_for_update().filter(user=user, confirmed=True)
    if len(confirmed) <= 1:
        raise ValidationError(LAST_AUTHENTICATOR)
    audit.record(
        "mfa.device_removed",
        actor=user,
        target=user,
        context=context,
        metadata={"device": device.name, "device_id": device.pk},
    )
    device.delete()
