"""Second factors: TOTP enrolment and verification (under django-otp's row lock), passkeys
(enrolled and verified through django-otp-webauthn's ceremonies), backup codes. The back-off of
passwords and codes, and the lock, are in ``accounts/lockout.py``."""

import math
import secrets

from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django_otp import devices_for_user, verify_token
from django_otp_webauthn.models import WebAuthnCredential

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
from common.request import RequestContext

BACKUP_CODE_COUNT = 10
CODE_MAX_LENGTH = 32  # longer input is no code: never looked up
LAST_AUTHENTICATOR = (
    "Add another authenticator or a passkey before removing this one: a second factor is mandatory."
)
PASSKEY_NAME_MAX_LENGTH = 64  # django-otp's Device.name


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


def has_passkey(user: User) -> bool:
    return selectors.passkey_list(user).exists()


def has_second_factor(user: User) -> bool:
    """Return whether ``user`` holds a factor to sign in with: an authenticator app or a
    passkey (backup codes only stand in for them)."""
    return has_confirmed_totp(user) or has_passkey(user)


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
    kind = AuthenticatorDevice if code.isdigit() and len(code) == 6 else BackupCodeDevice
    # Only those of that kind: a passkey takes no code (and never throttles one).
    return [
        device
        for device in devices_for_user(user, confirmed=True, for_verify=for_verify)
        if isinstance(device, kind)
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


def device_kind(device) -> str:
    if isinstance(device, WebAuthnCredential):
        return "passkey"
    return "backup_code" if isinstance(device, BackupCodeDevice) else "totp"


@transaction.atomic
def second_factor_verified(
    *, user: User, device, sudo: bool = False, context: RequestContext | None = None
) -> None:
    """Audit a code ``device`` accepted: ``mfa.verified`` (``mfa.sudo_verified`` when it opens
    sensitive actions), then ``mfa.backup_code_used`` with the codes left for a backup code."""
    kind = device_kind(device)
    metadata = {"device": kind}
    if kind == "passkey":
        metadata.update(name=device.name, device_id=device.pk)
    audit.record(
        "mfa.sudo_verified" if sudo else "mfa.verified",
        actor=user,
        target=user,
        context=context,
        metadata=metadata,
    )
    if kind == "backup_code":
        audit.record(
            "mfa.backup_code_used",
            actor=user,
            target=user,
            context=context,
            metadata={"remaining": device.remaining},
        )


# --- Back-off and lock --------------------------------------------------------------------------
#
# SECURITY: what an attempt at a password meets depends on what was typed and where from, never on
# whether the e-mail has an account. The back-off counts failures per (e-mail, client address),
# for any e-mail; each answer costs one password hash (a dummy one when there is no account or
# the attempt is refused unchecked); a locked account answers even its right password as a wrong
# one (its owner learns of the lock by e-mail). So an attacker slows only their own address, and
# an account locks only after KEYWARD_LOCK_AFTER_FAILURES consecutive failures (100: NIST SP
# 800-63B's ceiling). Second-factor codes back off per account: only someone who had the
# password gets to type one.


def _factors_locked(user: User) -> int:
    """Count the user's factors (authenticator apps and passkeys) under a row lock, so that two
    removals at once cannot both see a second one."""
    apps = AuthenticatorDevice.objects.select_for_update().filter(user=user, confirmed=True)
    passkeys = WebAuthnCredential.objects.select_for_update().filter(user=user, confirmed=True)
    return len(apps) + len(passkeys)


@transaction.atomic
def totp_remove(
    *, user: User, device: AuthenticatorDevice, context: RequestContext | None = None
) -> None:
    """Remove an authenticator; the last factor cannot go (the second factor is mandatory)."""
    if _factors_locked(user) <= 1:
        raise ValidationError(LAST_AUTHENTICATOR)
    audit.record(
        "mfa.device_removed",
        actor=user,
        target=user,
        context=context,
        metadata={"device": device.name, "device_id": device.pk},
    )
    device.delete()
    factor_changed_notify(user=user, change="removed", what=f"the authenticator app {device.name}")


@transaction.atomic
def passkey_enrolled(
    *, user: User, device: WebAuthnCredential, name: str, context: RequestContext | None = None
) -> None:
    """Name a passkey the library has just verified and saved, audit it (``mfa.passkey_added``)
    and tell its owner by e-mail once committed. Call it in the registration's transaction."""
    device.name = (name or "Passkey").strip()[:PASSKEY_NAME_MAX_LENGTH]
    device.full_clean(exclude=["credential_id", "public_key", "credential_id_sha256"])
    device.save(update_fields=["name"])
    audit.record(
        "mfa.passkey_added",
        actor=user,
        target=user,
        context=context,
        metadata={"name": device.name, "device_id": device.pk, "aaguid": device.aaguid},
    )
    factor_changed_notify(user=user, change="added", what=f"the passkey {device.name}")


@transaction.atomic
def passkey_remove(
    *, user: User, device: WebAuthnCredential, context: RequestContext | None = None
) -> None:
    """Remove a passkey; the last factor cannot go."""
    if _factors_locked(user) <= 1:
        raise ValidationError(LAST_AUTHENTICATOR)
    audit.record(
        "mfa.passkey_removed",
        actor=user,
        target=user,
        context=context,
        metadata={"name": device.name, "device_id": device.pk},
    )
    device.delete()
    factor_changed_notify(user=user, change="removed", what=f"the passkey {device.name}")


FACTOR_MAIL_SUBJECT = {
    "added": "A sign-in factor was added to your Keyward account",
    "removed": "A sign-in factor was removed from your Keyward account",
}
FACTOR_MAIL_BODY = """\
%(what_cap)s was %(change)s %(preposition)s the Keyward account %(email)s.

If this was not you, someone has your password and a second factor: reset your password at
%(reset_url)s and review your account security page at %(security_url)s.
"""


def absolute(url_name: str) -> str:
    """Return the absolute URL of a portal page, for e-mails (KEYWARD_BASE_URL)."""
    return conf.settings.BASE_URL.rstrip("/") + reverse(url_name)


def factor_changed_notify(*, user: User, change: str, what: str) -> None:
    """E-mail ``user``, once the transaction commits, that a factor was added or removed."""
    from accounts import lockout  # lockout imports this module

    body = FACTOR_MAIL_BODY % {
        "what_cap": what[:1].upper() + what[1:],
        "change": change,
        "preposition": "to" if change == "added" else "from",
        "email": user.email,
        "reset_url": absolute("accounts:password_reset"),
        "security_url": absolute("accounts:security"),
    }
    message = EmailMessage(FACTOR_MAIL_SUBJECT[change], body, None, [user.email])
    transaction.on_commit(
        lambda: lockout.send_off_request(message.send, what="a sign-in factor notice")
    )
