"""Passkeys (WebAuthn) as a second factor: Keyward's settings hooks for django-otp-webauthn.

The library runs the ceremonies (options, ``py_webauthn`` verification, the credential as a
django-otp device, the browser script). Keyward chooses the relying party and the origins, and
keeps no challenge in clear: the session holds only a keyed digest of it.
"""

import base64
import binascii
import json
from urllib.parse import urlsplit

from django.http import HttpRequest
from django.http.request import split_domain_port
from django.middleware import csrf
from django.urls import reverse
from django.utils.crypto import constant_time_compare, salted_hmac
from django_otp_webauthn import exceptions
from django_otp_webauthn.helpers import WebAuthnHelper
from django_otp_webauthn.settings import app_settings

from accounts import conf


def webauthn_config(request: HttpRequest) -> str:
    """Return, as JSON, what the library's browser script reads from ``#otp_webauthn_config``:
    Keyward's ceremony URLs (which wrap the library's views) and the CSRF token. The page puts
    it in a hidden element, not a script element: no inline script under the CSP."""
    return json.dumps(
        {
            "autocompleteLoginFieldSelector": None,  # no passwordless sign-in
            "nextFieldSelector": "input[name='next']",
            "csrfToken": csrf.get_token(request),
            "beginAuthenticationUrl": reverse("accounts:passkey_verify_begin"),
            "completeAuthenticationUrl": reverse("accounts:passkey_verify_complete"),
            "beginRegistrationUrl": reverse("accounts:passkey_register_begin"),
            "completeRegistrationUrl": reverse("accounts:passkey_register_complete"),
        }
    )


MISSING_CHALLENGE = "The passkey answered no challenge of this sign-in. Try again."


def _hostname(request: HttpRequest) -> str:
    domain, _ = split_domain_port(request.get_host())
    return domain


def rp_id(request: HttpRequest) -> str:
    """Return the relying party ID: the host of KEYWARD_BASE_URL when the request is for it or
    one of its subdomains, else the request's own host (already checked against
    ALLOWED_HOSTS). Passkeys belong to this ID: changing KEYWARD_BASE_URL's host orphans them."""
    configured = (urlsplit(conf.settings.BASE_URL).hostname or "").lower()
    host = _hostname(request).lower()
    if configured and (host == configured or host.endswith("." + configured)):
        return configured
    return host


def rp_name(request: HttpRequest) -> str:
    return "Keyward"


def _challenge_digest(user_pk, challenge: str) -> str:
    # SECURITY: the session row keeps this digest, not the challenge (no secret at rest).
    return salted_hmac(
        "keyward.webauthn-challenge", f"{user_pk}:{challenge}", algorithm="sha256"
    ).hexdigest()


def _answered_challenge(data) -> str:
    """Return the challenge the browser signed (clientDataJSON's), or raise a 422."""
    try:
        client_data = data["response"]["clientDataJSON"]
        raw = base64.urlsafe_b64decode(client_data + "=" * (-len(client_data) % 4))
        challenge = json.loads(raw)["challenge"]
    except (KeyError, TypeError, ValueError, binascii.Error, UnicodeDecodeError):
        raise exceptions.UnprocessableEntity(
            code="invalid_json_structure",
            detail="There is a problem with the provided JSON data.",
        ) from None
    if not isinstance(challenge, str):
        raise exceptions.UnprocessableEntity(code="invalid_json_structure")
    return challenge


class KeywardWebAuthnHelper(WebAuthnHelper):
    """The library's helper, with origins from the request and challenges kept as digests."""

    def get_allowed_origins(self) -> list[str]:
        # The request's own origin (its host passed ALLOWED_HOSTS), plus those configured. The
        # browser writes the page's origin into what the authenticator signs: a phishing site
        # gets its own origin (and RP ID) signed, which matches neither.
        own = f"{self.request.scheme}://{self.request.get_host()}"
        return sorted({own, *app_settings.OTP_WEBAUTHN_ALLOWED_ORIGINS})

    def _state(self, options: dict, uv: bool) -> dict:
        return {
            "challenge_digest": _challenge_digest(self.request.user.pk, options["challenge"]),
            "require_user_verification": uv,
        }

    def get_registration_state(self, creation_options: dict) -> dict:
        state = super().get_registration_state(creation_options)
        return self._state(creation_options, state["require_user_verification"])

    def get_authentication_state(self, options: dict) -> dict:
        state = super().get_authentication_state(options)
        return self._state(options, state["require_user_verification"])

    def _unsealed(self, user, state: dict, data) -> dict:
        """Return the state the library expects: the challenge the browser answered, if its
        digest is the one this session kept (else 400, as a missing state)."""
        challenge = _answered_challenge(data)
        expected = state.get("challenge_digest") or ""
        if not constant_time_compare(expected, _challenge_digest(user.pk, challenge)):
            raise exceptions.InvalidState(detail=MISSING_CHALLENGE)
        return {
            "challenge": challenge,
            "require_user_verification": state["require_user_verification"],
        }

    def create_attestation(self, credential, attestation_object: bytes, client_data_json: bytes):
        # SECURITY: Keyward asks for no attestation (the library's "none" preference), so there
        # is nothing to check later; and the client data holds the ceremony's challenge, which
        # is never kept in clear. No WebAuthnAttestation row is written.
        return None

    def register_complete(self, user, state: dict, data: dict):
        return super().register_complete(user, self._unsealed(user, state, data), data)

    def authenticate_complete(self, user, state: dict, data: dict):
        return super().authenticate_complete(user, self._unsealed(user, state, data), data)
