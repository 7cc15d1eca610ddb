"""A software WebAuthn authenticator for tests without a browser: it answers the options the
server hands out as a platform authenticator would (packed "none" attestation, ES256), so the
server's real verification (py_webauthn) runs. The browser tests use chromium's virtual
authenticator instead."""

import base64
import hashlib
import json
import secrets
import uuid

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from django_otp_webauthn.models import WebAuthnCredential

ORIGIN = "http://testserver"
RP_ID = "testserver"
AAGUID = bytes(range(16))


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class SoftAuthenticator:
    """One credential, made on ``create`` and used by ``get``."""

    def __init__(self, *, origin: str = ORIGIN, rp_id: str = RP_ID):
        self.origin, self.rp_id = origin, rp_id
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = secrets.token_bytes(32)
        self.sign_count = 0

    def cose_public_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps(
            {1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32)}
        )

    def _client_data(self, kind: str, challenge: str) -> bytes:
        return json.dumps(
            {"type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": False}
        ).encode()

    def _auth_data(self, flags: int, attested: bytes = b"") -> bytes:
        rp_hash = hashlib.sha256(self.rp_id.encode()).digest()
        return rp_hash + bytes([flags]) + self.sign_count.to_bytes(4, "big") + attested

    def create(self, options: dict) -> dict:
        """Answer registration options (navigator.credentials.create)."""
        attested = (
            AAGUID
            + len(self.credential_id).to_bytes(2, "big")
            + self.credential_id
            + self.cose_public_key()
        )
        auth_data = self._auth_data(0x45, attested)  # user present, verified, attested data
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return {
            "id": b64url(self.credential_id),
            "rawId": b64url(self.credential_id),
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "response": {
                "clientDataJSON": b64url(
                    self._client_data("webauthn.create", options["challenge"])
                ),
                "attestationObject": b64url(attestation),
                "transports": ["internal"],
            },
            "clientExtensionResults": {"credProps": {"rk": True}},
        }

    def get(self, options: dict, *, key: ec.EllipticCurvePrivateKey | None = None) -> dict:
        """Answer authentication options (navigator.credentials.get), signing with ``key``
        (another key than the enrolled one makes a wrong credential)."""
        self.sign_count += 1
        auth_data = self._auth_data(0x05)
        client_data = self._client_data("webauthn.get", options["challenge"])
        signed = auth_data + hashlib.sha256(client_data).digest()
        signature = (key or self.key).sign(signed, ec.ECDSA(hashes.SHA256()))
        return {
            "id": b64url(self.credential_id),
            "rawId": b64url(self.credential_id),
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "response": {
                "clientDataJSON": b64url(client_data),
                "authenticatorData": b64url(auth_data),
                "signature": b64url(signature),
            },
            "clientExtensionResults": {},
        }


def make_passkey(user, name: str = "Test passkey", authenticator=None) -> WebAuthnCredential:
    """Store a passkey for ``user`` as a registration would (no ceremony, no audit event)."""
    authenticator = authenticator or SoftAuthenticator()
    return WebAuthnCredential.objects.create(
        user=user,
        name=name,
        confirmed=True,
        credential_id=authenticator.credential_id,
        public_key=authenticator.cose_public_key(),
        sign_count=0,
        transports=["internal"],
        aaguid=str(uuid.UUID(bytes=AAGUID)),
    )
