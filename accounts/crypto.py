"""Encryption of the secrets Keyward must read back (TOTP seeds): AES-256-GCM.

A sealed value is ``v1.<key id>.<base64url(nonce || ciphertext || tag)>``:

- ``v1`` is the format (AES-256-GCM, 96-bit random nonce, 128-bit tag);
- the key id is a fingerprint of the key that sealed it (8 hex digits), so that an unseal with
  another key fails with a clear message, and so that older keys can later be kept for reading
  while new values are sealed with the current one (key rotation);
- ``context`` (associated data) binds a value to where it belongs (e.g. its owner): a value
  copied into another row does not unseal there.

The key comes from ``KEYWARD_FIELD_ENCRYPTION_KEY``; when that is empty it is derived from
``SECRET_KEY`` (HKDF-SHA256, a fixed info string), so rotating ``SECRET_KEY`` then makes every
sealed value unreadable (people re-enrol their authenticators, as they regenerate backup codes).
"""

import base64
import binascii
import os
import re
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from accounts import conf

VERSION = "v1"
NONCE_BYTES = 12
MIN_KEY_CHARS = 32
_KEY_INFO = b"keyward.field-encryption.v1.key"
_KEY_ID_INFO = b"keyward.field-encryption.v1.key-id"
MALFORMED = "malformed sealed value"
_BODY = re.compile(r"[A-Za-z0-9_-]+={0,2}")


class UnsealError(ValueError):
    """A sealed value that is malformed, tampered with, or sealed under another key."""


def _hkdf(material: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(material)


@lru_cache(maxsize=8)
def _keyring(material: str) -> tuple[str, AESGCM]:
    raw = material.encode()
    return _hkdf(raw, _KEY_ID_INFO, 4).hex(), AESGCM(_hkdf(raw, _KEY_INFO, 32))


def _current() -> tuple[str, AESGCM]:
    material = conf.settings.FIELD_ENCRYPTION_KEY or ""
    if material and len(material) < MIN_KEY_CHARS:
        raise ImproperlyConfigured(
            f"KEYWARD_FIELD_ENCRYPTION_KEY must be at least {MIN_KEY_CHARS} characters of random "
            "text, e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))'."
        )
    return _keyring(material or f"SECRET_KEY:{settings.SECRET_KEY}")


def seal(plaintext: bytes, *, context: bytes = b"") -> str:
    """Encrypt ``plaintext`` (bound to ``context``) under the current key."""
    key_id, cipher = _current()
    nonce = os.urandom(NONCE_BYTES)
    body = base64.urlsafe_b64encode(nonce + cipher.encrypt(nonce, bytes(plaintext), context))
    return f"{VERSION}.{key_id}.{body.decode()}"


def unseal(sealed: str, *, context: bytes = b"") -> bytes:
    """Decrypt a value made by ``seal`` with the same ``context``; raise ``UnsealError``."""
    version, _, rest = (sealed or "").partition(".")
    key_id, _, body = rest.partition(".")
    if version != VERSION or not key_id or not body:
        raise UnsealError("not a sealed value")
    current_id, cipher = _current()
    if key_id != current_id:
        raise UnsealError(
            f"sealed under key {key_id}, the current key is {current_id}: was "
            "KEYWARD_FIELD_ENCRYPTION_KEY (or SECRET_KEY, which it defaults to) changed?"
        )
    if not _BODY.fullmatch(body):
        raise UnsealError(MALFORMED)
    try:
        blob = base64.urlsafe_b64decode(body)
    except (binascii.Error, ValueError) as error:
        raise UnsealError(MALFORMED) from error
    if len(blob) < NONCE_BYTES + 16:
        raise UnsealError(MALFORMED)
    try:
        return cipher.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], context)
    except InvalidTag as error:
        raise UnsealError("the sealed value was tampered with or belongs elsewhere") from error
