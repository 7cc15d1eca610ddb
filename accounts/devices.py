"""Second-factor devices (django-otp): the TOTP authenticator with its seed sealed at rest, and
single-use backup codes stored as keyed digests."""

import secrets
import time
from base64 import b32encode
from urllib.parse import quote, urlencode

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac
from django_otp.models import Device, ThrottlingMixin, TimestampMixin
from django_otp.oath import TOTP

from accounts import crypto

SEED_BYTES = 20  # as django-otp's TOTPDevice (160 bits, RFC 4226's recommendation)
# Consecutive wrong codes a device takes before django-otp's doubling delay starts: a typo and
# the right code a second later is no 429. The account's back-off (accounts/lockout.py: 5 a
# minute, 20 an hour, 50 a day, a lock at 100) bounds guessing whatever the device allows.
FREE_FAILURES = 3


class FirstFailuresFree:
    """django-otp's throttling (delays of 4, 8, 16… seconds), from the FREE_FAILURES-th
    consecutive failure on; the ones before wait for nothing."""

    def verify_is_allowed(self):
        if self.throttling_failure_count < FREE_FAILURES:
            return Device.verify_is_allowed(self)
        return super().verify_is_allowed()


class AuthenticatorDevice(TimestampMixin, FirstFailuresFree, ThrottlingMixin, Device):
    """A TOTP authenticator app whose seed is stored encrypted (``accounts/crypto.py``).

    Same behaviour as django-otp's ``TOTPDevice`` (step 30 s, t0 0, 6 digits, tolerance 1, drift
    tracking, a code accepted once, throttling, ``config_url``), except that the seed column
    holds only a sealed value, bound to the device's user.
    """

    sealed_seed = models.TextField(editable=False)
    step = models.PositiveSmallIntegerField(default=30, help_text="The time step in seconds.")
    t0 = models.BigIntegerField(
        default=0, help_text="The Unix time at which to begin counting steps."
    )
    digits = models.PositiveSmallIntegerField(
        choices=[(6, 6), (8, 8)], default=6, help_text="The number of digits in a code."
    )
    tolerance = models.PositiveSmallIntegerField(
        default=1, help_text="The number of time steps in the past or future to allow."
    )
    drift = models.SmallIntegerField(
        default=0,
        help_text="The number of time steps the prover is known to deviate from our clock.",
    )
    last_t = models.BigIntegerField(
        default=-1,
        help_text="The time step of the latest verified code; the next must be at a later one.",
    )

    class Meta(Device.Meta):
        verbose_name = "authenticator app"

    def _seal_context(self) -> bytes:
        if self.user_id is None:
            raise ValueError("an authenticator's seed is bound to its user: set the user first")
        return f"keyward.totp-seed:user:{self.user_id}".encode()

    def set_seed(self, seed: bytes) -> None:
        """Replace the seed (stored sealed); the caller saves."""
        self.sealed_seed = crypto.seal(seed, context=self._seal_context())

    @property
    def bin_key(self) -> bytes:
        """The seed, unsealed (never stored in clear)."""
        return crypto.unseal(self.sealed_seed, context=self._seal_context())

    def save(self, *args, **kwargs):
        if not self.sealed_seed:
            self.set_seed(secrets.token_bytes(SEED_BYTES))
        super().save(*args, **kwargs)

    # The next three: django-otp's TOTPDevice (django_otp/plugins/otp_totp/models.py, 1.7).

    def verify_token(self, token) -> bool:
        sync = getattr(settings, "OTP_TOTP_SYNC", True)
        verify_allowed, _ = self.verify_is_allowed()
        if not verify_allowed:
            return False
        try:
            token = int(token)
        except Exception:
            verified = False
        else:
            totp = TOTP(self.bin_key, self.step, self.t0, self.digits, self.drift)
            totp.time = time.time()
            verified = totp.verify(token, self.tolerance, self.last_t + 1)
            if verified:
                self.last_t = totp.t()
                if sync:
                    self.drift = totp.drift
                self.throttle_reset(commit=False)
                self.set_last_used_timestamp(commit=False)
                self.save()
        if not verified:
            self.throttle_increment(commit=True)
        return verified

    def get_throttle_factor(self) -> int:
        return getattr(settings, "OTP_TOTP_THROTTLE_FACTOR", 1)

    @property
    def config_url(self) -> str:
        """The otpauth:// URL for the authenticator app (Key Uri Format), issuer OTP_TOTP_ISSUER."""
        label = str(self.user.get_username())
        params = urlencode(
            {
                "secret": b32encode(self.bin_key),
                "algorithm": "SHA1",
                "digits": self.digits,
                "period": self.step,
            }
        )
        issuer = self._read_str_from_settings("OTP_TOTP_ISSUER")
        if issuer:
            issuer = issuer.replace(":", "")
            label = f"{issuer}:{label}"
            params += f"&issuer={quote(issuer)}"  # RFC 3986, not quote_plus
        image = self._read_str_from_settings("OTP_TOTP_IMAGE")
        if image:
            params += "&image={}".format(quote(image, safe=":/"))
        return f"otpauth://totp/{quote(label)}?{params}"

    def _read_str_from_settings(self, key: str) -> str | None:
        value = getattr(settings, key, None)
        if callable(value):
            value = value(self)
        return value if isinstance(value, str) and value != "" else None


# 10 characters from a 32-letter alphabet without look-alikes: 50 bits, typed as xxxxx-xxxxx.
BACKUP_CODE_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # 32 symbols: no l, o, 0, 1
BACKUP_CODE_LENGTH = 10


def normalize_backup_code(code: str) -> str:
    return "".join(ch for ch in code.lower() if ch in BACKUP_CODE_ALPHABET)


class BackupCodeDevice(TimestampMixin, FirstFailuresFree, ThrottlingMixin, Device):
    """Single-use backup codes, stored only as keyed digests (unlike django-otp's static ones)."""

    def get_throttle_factor(self) -> int:
        return 1

    def digest_of(self, code: str) -> str:
        """Return the stored form of ``code``."""
        # SECURITY: a keyed digest (HMAC with the SECRET_KEY), so a stolen table cannot be
        # brute-forced offline; the user id binds a code to its owner.
        return salted_hmac(
            "keyward.backup-code",
            f"{self.user_id}:{normalize_backup_code(code)}",
            algorithm="sha256",
        ).hexdigest()

    def use_code(self, code: str) -> bool:
        """Consume ``code`` if it is one of this device's unused codes; return whether it was."""
        if len(normalize_backup_code(code)) != BACKUP_CODE_LENGTH:
            return False
        digest = self.digest_of(code)
        with transaction.atomic():
            match = (
                BackupCode.objects.select_for_update()
                .filter(device=self, used_at=None, digest=digest)
                .first()
            )
            if match is None or not constant_time_compare(match.digest, digest):
                return False
            match.used_at = timezone.now()
            match.save(update_fields=["used_at"])
        return True

    def verify_token(self, token) -> bool:
        verify_allowed, _ = self.verify_is_allowed()
        if not verify_allowed:
            return False
        used = self.use_code(str(token))
        if used:
            self.throttle_reset(commit=False)
            self.set_last_used_timestamp(commit=False)
            self.save()
        else:
            self.throttle_increment()
        return used

    @property
    def remaining(self) -> int:
        return self.codes.filter(used_at=None).count()


class BackupCode(models.Model):
    device = models.ForeignKey(BackupCodeDevice, on_delete=models.CASCADE, related_name="codes")
    digest = models.CharField(max_length=64)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["device", "digest"], name="backup_code_unique"),
        ]

    def __str__(self) -> str:
        return f"backup code of {self.device.user_id} ({'used' if self.used_at else 'unused'})"
