"""End to end: passkeys in chromium, through the DevTools protocol's virtual authenticator.

A real WebAuthn ceremony each time: the browser runs django-otp-webauthn's script (served as a
static file, under the CSP), the virtual authenticator makes and signs with a P-256 key, and the
server verifies with py_webauthn. Enrol, log out, log in with password + passkey, use it for
sudo, remove it; a credential whose key is not the enrolled one is counted as a failure; a
tenant that requires a phishing-resistant factor sends a member to enrol one and asks a passkey
for sudo.
"""

import base64
import re
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django_otp_webauthn.models import WebAuthnCredential
from playwright.sync_api import expect

from accounts.decorators import SUDO_PASSKEY_SESSION_KEY, SUDO_SESSION_KEY
from accounts.models import User
from audit.models import AuditEvent
from common.sessions import SessionStore
from tests import factories

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/shots-p15")
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def _path_is(path: str):
    return re.compile(rf"^https?://[^/]+{re.escape(path)}(\?.*)?$")


def _shoot(page, name: str) -> None:
    """Save the page at desktop and phone width (looked at by eye, outside the repository)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        page.screenshot(path=str(SHOTS / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(DESKTOP)


def _virtual_authenticator(page):
    """Attach a platform authenticator (CTAP2, resident keys, user verification) to the page."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return cdp, added["authenticatorId"]


def _csp_violations(page) -> list[str]:
    found: list[str] = []
    page.on(
        "console",
        lambda message: (
            found.append(message.text)
            if "Content Security Policy" in message.text or "Refused to" in message.text
            else None
        ),
    )
    page.on("pageerror", lambda error: found.append(f"page error: {error}"))
    return found


def _log_in(page, base: str, email: str) -> None:
    page.goto(base + "/account/login/")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(_path_is("/account/mfa/verify/"))


def _log_in_with_code(page, base: str, user) -> None:
    _log_in(page, base, user.email)
    page.get_by_label("Code").fill(factories.totp_code(user))
    page.get_by_role("button", name="Verify").click()
    expect(page).not_to_have_url(_path_is("/account/mfa/verify/"))


def _add_passkey(page, name: str, *, shoot: bool = False) -> None:
    """From the add page: name it, create it (the ceremony), land where the page sends."""
    expect(page.get_by_role("heading", name="Add a passkey")).to_be_visible()
    if shoot:
        _shoot(page, "passkey-add")
    page.get_by_label("Name this passkey").fill(name)
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name=f"Create the passkey “{name}”")).to_be_visible()
    if shoot:
        _shoot(page, "passkey-create")
    page.get_by_role("button", name="Create passkey").click()
    expect(page).not_to_have_url(_path_is("/account/security/passkeys/create/"))


def _session(page) -> SessionStore:
    cookie = next(c for c in page.context.cookies() if c["name"] == "sessionid")
    return SessionStore(session_key=cookie["value"])


def _end_sudo(page) -> None:
    """Age the session's sudo out, as 15 minutes would."""
    session = _session(page)
    session.pop(SUDO_SESSION_KEY, None)
    session.pop(SUDO_PASSKEY_SESSION_KEY, None)
    session.save()


def _events(user, action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action, target_id=str(user.pk)).order_by("id"))


def test_enrol_a_passkey_then_log_in_with_it_use_it_for_sudo_and_remove_it(live_server, page):
    acme = factories.make_tenant("acme")
    alice = factories.make_user("alice@acme.example")
    factories.add_member(acme, "member", alice)
    base = live_server.url
    violations = _csp_violations(page)
    cdp, authenticator = _virtual_authenticator(page)

    # Enrol: signed in with a code, from the security page (sudo is fresh after the code).
    _log_in_with_code(page, base, alice)
    page.goto(base + "/account/security/")
    page.get_by_role("link", name="Add a passkey").click()
    _add_passkey(page, "Laptop Touch ID", shoot=True)
    expect(page).to_have_url(_path_is("/account/security/"))
    expect(page.get_by_text("Passkey “Laptop Touch ID” added.")).to_be_visible()
    expect(page.locator("#passkeys")).to_contain_text("Laptop Touch ID")
    _shoot(page, "security-with-passkey")
    passkey = WebAuthnCredential.objects.get(user=alice)
    assert passkey.name == "Laptop Touch ID" and passkey.confirmed
    credentials = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
    assert len(credentials["credentials"]) == 1
    [added] = _events(alice, "mfa.passkey_added")
    assert added.metadata["name"] == "Laptop Touch ID"

    # Log out; password, then the passkey: a verified session with a new key.
    page.get_by_role("button", name="Log out").click()
    _log_in(page, base, alice.email)
    expect(page.get_by_role("button", name="Use a passkey")).to_be_visible()
    _shoot(page, "verify-with-passkey")
    before = _session(page).session_key
    page.get_by_role("button", name="Use a passkey").click()
    expect(page).to_have_url(_path_is("/t/acme/"))
    assert _session(page).session_key != before  # SECURITY: the key rotates, as after a code
    [verified] = [e for e in _events(alice, "mfa.verified") if e.metadata["device"] == "passkey"]
    assert verified.metadata["name"] == "Laptop Touch ID"
    passkey.refresh_from_db()
    assert passkey.last_used_at is not None

    # Sudo: a sensitive action asks again; the passkey answers.
    _end_sudo(page)
    page.goto(base + "/account/security/passkeys/add/")
    expect(page).to_have_url(_path_is("/account/sudo/"))
    expect(page.get_by_role("heading", name="Confirm it is you")).to_be_visible()
    page.get_by_role("button", name="Use a passkey").click()
    expect(page).to_have_url(_path_is("/account/security/passkeys/add/"))
    assert any(e.metadata["device"] == "passkey" for e in _events(alice, "mfa.sudo_verified"))

    # Remove it (behind sudo again): the authenticator app remains.
    _end_sudo(page)
    page.goto(base + "/account/security/")
    page.get_by_role("button", name="Remove passkey Laptop Touch ID").click()
    expect(page).to_have_url(_path_is("/account/sudo/"))
    page.get_by_role("button", name="Use a passkey").click()
    expect(page).to_have_url(_path_is("/account/security/"))
    page.get_by_role("button", name="Remove passkey Laptop Touch ID").click()
    expect(page.get_by_text("Passkey “Laptop Touch ID” removed.")).to_be_visible()
    assert not WebAuthnCredential.objects.filter(user=alice).exists()
    assert len(_events(alice, "mfa.passkey_removed")) == 1
    assert violations == []


def _replace_key(cdp, authenticator: str) -> None:
    """Keep the credential's id but give the authenticator another private key: it will sign
    for the enrolled credential with a key the server does not know."""
    [credential] = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})[
        "credentials"
    ]
    cdp.send(
        "WebAuthn.removeCredential",
        {"authenticatorId": authenticator, "credentialId": credential["credentialId"]},
    )
    other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    cdp.send(
        "WebAuthn.addCredential",
        {
            "authenticatorId": authenticator,
            "credential": {
                "credentialId": credential["credentialId"],
                "isResidentCredential": True,
                "rpId": credential["rpId"],
                "userHandle": credential["userHandle"],
                "privateKey": base64.b64encode(other).decode(),
                "signCount": credential["signCount"] + 1,
            },
        },
    )


def test_a_passkey_that_does_not_verify_counts_against_the_account(live_server, page):
    acme = factories.make_tenant("acme")
    bob = factories.make_user("bob@acme.example")
    factories.add_member(acme, "member", bob)
    base = live_server.url
    cdp, authenticator = _virtual_authenticator(page)
    _log_in_with_code(page, base, bob)
    page.goto(base + "/account/security/passkeys/add/")
    _add_passkey(page, "YubiKey 5C")
    page.get_by_role("button", name="Log out").click()

    _replace_key(cdp, authenticator)
    _log_in(page, base, bob.email)
    page.get_by_role("button", name="Use a passkey").click()

    expect(page.locator("#passkey-verification-status-message")).to_contain_text(
        "Invalid authentication response"
    )
    expect(page).to_have_url(_path_is("/account/mfa/verify/"))
    bob.refresh_from_db()
    assert bob.failed_auth_count == 1
    [failed] = _events(bob, "mfa.verify_failed")
    assert failed.metadata["device"] == "passkey"
    assert failed.metadata["reason"] == "invalid_authentication_response"
    assert failed.outcome == "failure"
    # The session is still unverified: a tenant page sends back to the second step.
    page.goto(base + "/t/acme/")
    expect(page).to_have_url(_path_is("/account/mfa/verify/"))
    # The right code still works (one failure is no back-off); the next step's: this step's
    # code was used a minute ago and is not accepted twice.
    page.get_by_label("Code").fill(factories.totp_code(bob, offset_steps=1))
    page.get_by_role("button", name="Verify").click()
    expect(page).to_have_url(_path_is("/t/acme/"))
    assert User.objects.get(pk=bob.pk).failed_auth_count == 0


def test_a_tenant_that_requires_a_passkey_sends_members_to_enrol_and_asks_it_for_sudo(
    live_server, page
):
    acme = factories.make_tenant("acme")
    acme.require_phishing_resistant_mfa = True
    acme.save(update_fields=["require_phishing_resistant_mfa"])
    carol = factories.make_user("carol@acme.example")
    factories.add_member(acme, "member", carol)
    base = live_server.url
    violations = _csp_violations(page)
    _virtual_authenticator(page)

    # A code opens the portal, but no tenant page: first a passkey.
    _log_in_with_code(page, base, carol)
    page.goto(base + "/t/acme/")
    expect(page).to_have_url(_path_is("/account/security/passkeys/add/"))
    expect(page.get_by_text("Acme requires a passkey")).to_be_visible()
    _add_passkey(page, "Work laptop")
    expect(page).to_have_url(_path_is("/t/acme/"))

    # Sudo for the tenant's actions: the code from a minute ago is not enough, a passkey is.
    _end_sudo(page)
    session = _session(page)
    session[SUDO_SESSION_KEY] = time.time()  # as if a code had just been typed
    session.save()
    page.goto(base + "/t/acme/keys/new/")
    expect(page).to_have_url(_path_is("/account/sudo/"))
    expect(page.get_by_text("This organisation requires a passkey")).to_be_visible()
    expect(page.get_by_label("Code")).to_have_count(0)
    _shoot(page, "sudo-passkey-only")
    page.get_by_role("button", name="Use a passkey").click()
    expect(page).to_have_url(_path_is("/t/acme/keys/new/"))
    assert violations == []
