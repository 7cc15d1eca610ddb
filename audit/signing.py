"""Ed25519 signatures of audit seals, with keys that never enter the database.

``KEYWARD_AUDIT_SIGNING_KEY`` is a PKCS#8 PEM private key, given either as the PEM itself (a
value that starts with ``-----BEGIN``) or as the path of a file that holds it.
``KEYWARD_AUDIT_VERIFY_KEYS`` lists the public keys (PEM or paths) that signed older seals; the
signing key's public key is always accepted too. A key's id is the first 16 hex digits of the
SHA-256 of its raw 32-byte public key. A signature covers ``SIGNED_PREFIX + seal_hash``; the seal
hash already covers the previous seal's hash, the seal's range, count, format and entries.

Make a key pair with ``manage.py audit_signing_key``.
"""

import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from audit import conf

SIGNED_PREFIX = b"keyward audit seal v1\n"
UNREADABLE_KEY = "{setting} is not an Ed25519 key in PEM form, nor the path of a file holding one"


class SigningKeyError(ValueError):
    """A configured key cannot be read."""


@dataclass(frozen=True)
class Signer:
    key_id: str
    private_key: Ed25519PrivateKey

    def sign(self, seal_hash: str) -> bytes:
        return self.private_key.sign(SIGNED_PREFIX + seal_hash.encode())


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def _pem(value: str, setting: str) -> bytes:
    value = value.strip()
    if value.startswith("-----BEGIN"):
        return value.encode()
    try:
        return Path(value).read_bytes()
    except OSError as error:
        raise SigningKeyError(f"{UNREADABLE_KEY.format(setting=setting)}: {error}") from None


def _load_private(value: str) -> Signer:
    setting = "KEYWARD_AUDIT_SIGNING_KEY"
    try:
        key = serialization.load_pem_private_key(_pem(value, setting), password=None)
    except ValueError:
        raise SigningKeyError(UNREADABLE_KEY.format(setting=setting)) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(UNREADABLE_KEY.format(setting=setting))
    return Signer(key_id(key.public_key()), key)


def _load_public(value: str) -> Ed25519PublicKey:
    setting = "KEYWARD_AUDIT_VERIFY_KEYS"
    try:
        key = serialization.load_pem_public_key(_pem(value, setting))
    except ValueError:
        raise SigningKeyError(UNREADABLE_KEY.format(setting=setting)) from None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(UNREADABLE_KEY.format(setting=setting))
    return key


def signer() -> Signer | None:
    """Return the configured signing key, or None when seals are made unsigned."""
    value = conf.settings.AUDIT_SIGNING_KEY
    return _load_private(value) if value else None


def verify_keys() -> dict[str, Ed25519PublicKey]:
    """Return the public keys audit_verify accepts, by key id."""
    keys = {}
    for value in conf.settings.AUDIT_VERIFY_KEYS or []:
        if value:
            public = _load_public(value)
            keys[key_id(public)] = public
    current = signer()
    if current is not None:
        keys[current.key_id] = current.private_key.public_key()
    return keys


def is_valid(public_key: Ed25519PublicKey, signature: bytes, seal_hash: str) -> bool:
    try:
        public_key.verify(signature, SIGNED_PREFIX + seal_hash.encode())
    except InvalidSignature:
        return False
    return True


def new_key_pair() -> tuple[str, str, str]:
    """Return a new (private PEM, public PEM, key id)."""
    private = Ed25519PrivateKey.generate()
    public = private.public_key()
    return (
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
        public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode(),
        key_id(public),
    )
