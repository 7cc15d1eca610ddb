"""The keys that sign Keyward's JWTs: made, sealed at rest, rotated, published, kept per process.

A private key is stored only sealed (AES-256-GCM, ``accounts.crypto``, bound to its ``kid``), as
TOTP seeds are. A retired key's public half stays published for the longest lifetime of a token
plus how long a process may keep signing with it (KEYWARD_JWT_KEY_CACHE), so every token it
signed can still be verified until it expires.

Per process: the signer is re-read from the database at most every KEYWARD_JWT_KEY_CACHE
seconds (the token endpoint queries anyway); the verifiers are kept and re-read only when a token
names a ``kid`` not yet known, at most once per ``UNKNOWN_KID_INTERVAL``: Keyward's own API then
verifies its JWTs with no query.
"""

import base64
import hashlib
import json
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.db import IntegrityError, transaction
from django.utils import timezone
from jwt.algorithms import ECAlgorithm

import audit
from accounts import crypto
from federation import conf
from federation.models import SigningKey

ALGORITHM = "ES256"
UNKNOWN_KID_INTERVAL = 1.0  # seconds between two reloads of the verifiers for an unknown kid


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def thumbprint(jwk: dict) -> str:
    """Return the RFC 7638 thumbprint of an EC public JWK (its ``kid``)."""
    canonical = json.dumps(
        {"crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"], "y": jwk["y"]},
        separators=(",", ":"),
        sort_keys=True,
    )
    return _b64(hashlib.sha256(canonical.encode()).digest())


def _seal_context(kid: str) -> bytes:
    return f"federation.signing_key:{kid}".encode()


def publish_seconds() -> int:
    """Seconds a retired key stays published: the longest token lifetime plus the signer cache."""
    return conf.settings.JWT_MAX_LIFETIME_MINUTES * 60 + conf.settings.JWT_KEY_CACHE


@transaction.atomic
def signing_key_rotate(*, actor, context=None, now: datetime | None = None) -> SigningKey:
    """Make a new signing key and retire the current one (still published, see the module).

    Records ``signing_key.rotated``. The private key is stored sealed, never in plaintext."""
    now = now or timezone.now()
    private = ec.generate_private_key(ec.SECP256R1())
    jwk = ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
    kid = thumbprint(jwk)
    jwk.update({"kid": kid, "use": "sig", "alg": ALGORITHM})
    pem = private.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    retired = list(
        SigningKey.objects.select_for_update()
        .filter(retired_at=None, algorithm=ALGORITHM)
        .values_list("kid", flat=True)
    )
    SigningKey.objects.filter(retired_at=None, algorithm=ALGORITHM).update(retired_at=now)
    key = SigningKey(
        kid=kid,
        algorithm=ALGORITHM,
        public_jwk=jwk,
        sealed_private_key=crypto.seal(pem, context=_seal_context(kid)),
        created_at=now,
    )
    key.full_clean()
    key.save()
    audit.record(
        "signing_key.rotated",
        actor=actor,
        target=key,
        context=context,
        metadata={"kid": kid, "retired": retired, "algorithm": ALGORITHM},
    )
    _state.forget()
    return key


def published_keys(now: datetime | None = None) -> list[SigningKey]:
    """Return the keys whose public half is published: the active one, and those retired less
    than ``publish_seconds()`` ago."""
    now = now or timezone.now()
    since = now - timedelta(seconds=publish_seconds())
    return list(SigningKey.objects.filter(retired_at=None).order_by("-created_at")) + list(
        SigningKey.objects.filter(retired_at__gt=since).order_by("-retired_at")
    )


def jwks(now: datetime | None = None) -> dict:
    """Return the JSON Web Key Set of the published keys."""
    return {"keys": [dict(key.public_jwk) for key in published_keys(now)]}


@dataclass(frozen=True, slots=True)
class Signer:
    kid: str
    private_key: ec.EllipticCurvePrivateKey


class _State:
    """What one process keeps: the signer (re-read every KEYWARD_JWT_KEY_CACHE seconds) and the
    verifiers by kid (re-read only for an unknown kid, at most once per UNKNOWN_KID_INTERVAL)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.forget()

    def forget(self) -> None:
        self.signer: Signer | None = None
        self.signer_at = 0.0
        self.verifiers: dict[str, ec.EllipticCurvePublicKey] = {}
        self.verifiers_at = -UNKNOWN_KID_INTERVAL


_state = _State()


def forget() -> None:
    """Forget the keys this process read (tests, and after a rotation in this process)."""
    _state.forget()


def _active() -> SigningKey | None:
    return SigningKey.objects.filter(retired_at=None, algorithm=ALGORITHM).first()


def current_signer() -> Signer:
    """Return the key to sign with; make the first one if there is none (audited, as the
    system)."""
    now = time.monotonic()
    signer = _state.signer
    if signer is not None and now - _state.signer_at < conf.settings.JWT_KEY_CACHE:
        return signer
    key = _active()
    if key is None:
        try:
            key = signing_key_rotate(actor=audit_actor_system())
        except IntegrityError:  # another process made it at the same time
            key = _active()
    private = serialization.load_der_private_key(
        crypto.unseal(key.sealed_private_key, context=_seal_context(key.kid)), password=None
    )
    signer = Signer(key.kid, private)
    with _state.lock:
        _state.signer, _state.signer_at = signer, now
        _state.verifiers.setdefault(key.kid, private.public_key())
    return signer


def audit_actor_system():
    from audit.services import Actor

    return Actor.system("federation")


def verifier(kid: str) -> ec.EllipticCurvePublicKey | None:
    """Return the public key named ``kid`` (published or not: a token's ``exp`` bounds it), or
    None. No query unless ``kid`` is unknown to this process (then at most one a second)."""
    found = _state.verifiers.get(kid)
    if found is not None:
        return found
    now = time.monotonic()
    if now - _state.verifiers_at < UNKNOWN_KID_INTERVAL:
        return None
    _state.verifiers_at = now
    since = timezone.now() - timedelta(seconds=publish_seconds())
    loaded = {
        key.kid: ECAlgorithm.from_jwk(key.public_jwk)
        for key in SigningKey.objects.filter(algorithm=ALGORITHM).exclude(retired_at__lte=since)
    }
    with _state.lock:
        _state.verifiers.update(loaded)
    return loaded.get(kid)
