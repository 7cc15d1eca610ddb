"""Passkeys as a second factor, without a browser: the ceremonies' JSON endpoints answered by a
software authenticator, so the server's real verification runs (the browser tests run the
same with chromium's virtual authenticator)."""

import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from django.contrib.sessions.models import Session
from django.core import mail
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp_webauthn.models import WebAuthnAttestation, WebAuthnCredential

from accounts import lockout, mfa
from accounts.decorators import SUDO_PASSKEY_SESSION_KEY, SUDO_SESSION_KEY
from accounts.models import AuthenticatorDevice, User
from accounts.views.passkeys import PENDING_NAME_SESSION_KEY
from audit.models import AuditEvent
from common.sessions import SessionStore
from tests import factories
from tests.accounts.soft_authenticator import SoftAuthenticator, make_passkey

pytestmark = pytest.mark.django_db

REGISTER_BEGIN = "/account/mfa/passkeys/register/begin/"
REGISTER_COMPLETE = "/account/mfa/passkeys/register/complete/"
VERIFY_BEGIN = "/account/mfa/passkeys/verify/begin/"
VERIFY_COMPLETE = "/account/mfa/passkeys/verify/complete/"


def _post_json(client, url: str, body=None):
    data = json.dumps(body) if body is not None else ""
    return client.post(url, data=data, content_type="application/json")


def _events(user, action: str):
    return AuditEvent.objects.filter(action=action, target_id=str(user.pk)).order_by("id")


def _enrol(client, name: str = "YubiKey 5C", authenticator=None):
    """Name a passkey, then run the registration ceremony; return (authenticator, response)."""
    authenticator = authenticator or SoftAuthenticator()
    response = client.post(reverse("accounts:passkey_add"), {"name": name})
    assert response.status_code == 302, response.content[:300]
    options = _post_json(client, REGISTER_BEGIN).json()
    return authenticator, _post_json(client, REGISTER_COMPLETE, authenticator.create(options))


def _password_step(client, user) -> None:
    response = client.post("/account/login/", {"email": user.email, "password": factories.PASSWORD})
    assert response.status_code == 302


def _sign_in(client, authenticator, **get_options):
    options = _post_json(client, VERIFY_BEGIN)
    assert options.status_code == 200, options.content
    return _post_json(client, VERIFY_COMPLETE, authenticator.get(options.json(), **get_options))


# --- Enrolment ------------------------------------------------------------------------------------


def test_a_named_passkey_is_enrolled_audited_and_mailed(
    owner_client, owner, django_capture_on_commit_callbacks
):
    response = owner_client.post(reverse("accounts:passkey_add"), {"name": "  MacBook Touch ID "})
    assert response.status_code == 302
    page = owner_client.get(reverse("accounts:passkey_create"))
    assert page.status_code == 200 and "no-store" in page["Cache-Control"]
    html = page.content.decode()
    # The library's script runs from static files; its settings sit in a hidden element.
    assert html.count("<script") == html.count("<script src=")
    assert "django_otp_webauthn/otp_webauthn_register.js" in html
    assert 'id="otp_webauthn_config" hidden' in html
    options = _post_json(owner_client, REGISTER_BEGIN).json()
    assert options["rp"] == {"name": "Keyward", "id": "testserver"}

    with django_capture_on_commit_callbacks(execute=True):
        answer = SoftAuthenticator().create(options)
        response = _post_json(owner_client, REGISTER_COMPLETE, answer)

    assert response.status_code == 200, response.content
    passkey = WebAuthnCredential.objects.get(user=owner)
    assert response.json() == {"id": passkey.pk}
    assert passkey.name == "MacBook Touch ID" and passkey.confirmed
    [event] = _events(owner, "mfa.passkey_added")
    assert event.metadata["name"] == "MacBook Touch ID"
    [notice] = mail.outbox
    assert notice.to == [owner.email] and "passkey MacBook Touch ID was added" in notice.body
    assert PENDING_NAME_SESSION_KEY not in owner_client.session
    assert not WebAuthnAttestation.objects.exists()  # it would keep the spent challenge


def test_two_passkeys_are_listed_on_the_security_page_with_last_use(owner_client, owner):
    _enrol(owner_client, "YubiKey 5C")
    _enrol(owner_client, "Phone")
    html = owner_client.get(reverse("accounts:security")).content.decode()
    assert "YubiKey 5C" in html and "Phone" in html
    assert [p.name for p in mfa.selectors.passkey_list(owner)] == ["YubiKey 5C", "Phone"]


@pytest.mark.parametrize("name", ["", "   ", "x" * 65])
def test_a_passkey_needs_a_name_of_at_most_64_characters(owner_client, name):
    response = owner_client.post(reverse("accounts:passkey_add"), {"name": name})
    assert response.status_code == 200
    assert PENDING_NAME_SESSION_KEY not in owner_client.session
    assert _post_json(owner_client, REGISTER_BEGIN).status_code == 400


def test_registration_needs_sudo(client, owner):
    factories.verify_session(client, owner, sudo=False)
    assert client.get(reverse("accounts:passkey_add")).status_code == 302  # to /account/sudo/
    session = client.session
    session[PENDING_NAME_SESSION_KEY] = "sneaky"
    session.save()
    response = _post_json(client, REGISTER_BEGIN)
    assert response.status_code == 403 and response.json()["code"] == "sudo_required"


def test_registration_needs_a_verified_session(client, owner):
    assert _post_json(client, REGISTER_BEGIN).status_code == 403  # anonymous
    _password_step(client, owner)
    response = _post_json(client, REGISTER_BEGIN)  # password only
    assert response.status_code == 403 and response.json()["code"] == "user_not_verified"
    assert not WebAuthnCredential.objects.exists()


def test_a_registration_for_another_challenge_or_origin_is_refused_and_keeps_nothing(
    owner_client, owner
):
    authenticator = SoftAuthenticator()
    owner_client.post(reverse("accounts:passkey_add"), {"name": "one"})
    options = _post_json(owner_client, REGISTER_BEGIN).json()
    forged = authenticator.create({**options, "challenge": "AAAA" + options["challenge"][4:]})
    response = _post_json(owner_client, REGISTER_COMPLETE, forged)
    assert response.status_code == 400  # no such challenge in this session

    owner_client.post(reverse("accounts:passkey_add"), {"name": "two"})
    options = _post_json(owner_client, REGISTER_BEGIN).json()
    phished = SoftAuthenticator(origin="https://keyward.example.evil").create(options)
    response = _post_json(owner_client, REGISTER_COMPLETE, phished)
    assert response.status_code == 422
    assert not WebAuthnCredential.objects.exists()
    assert not _events(owner, "mfa.passkey_added").exists()


@pytest.mark.parametrize(
    "body",
    [None, {}, {"response": {}}, {"response": {"clientDataJSON": "%%%"}}, ["x"], "text"],
)
def test_malformed_ceremony_answers_are_4xx(owner_client, owner, body):
    owner_client.post(reverse("accounts:passkey_add"), {"name": "one"})
    _post_json(owner_client, REGISTER_BEGIN)
    response = _post_json(owner_client, REGISTER_COMPLETE, body)
    assert 400 <= response.status_code < 500
    assert not WebAuthnCredential.objects.exists()


# --- Sign-in and sudo -----------------------------------------------------------------------------


def _owner_with_passkey(owner):
    authenticator = SoftAuthenticator()
    make_passkey(owner, "YubiKey 5C", authenticator)
    return authenticator


def test_password_then_passkey_verifies_the_session_like_a_code(client, owner):
    authenticator = _owner_with_passkey(owner)
    User.objects.filter(pk=owner.pk).update(failed_auth_count=3)
    _password_step(client, owner)
    page = client.get("/account/mfa/verify/")
    assert "Use a passkey" in page.content.decode()
    before = client.session.session_key

    response = _sign_in(client, authenticator)

    assert response.status_code == 200, response.content
    assert response.json()["redirect_url"] == "/"
    session = client.session
    assert session.session_key != before  # SECURITY: rotated, as after a code
    passkey_id = response.json()["id"]
    assert session[DEVICE_ID_SESSION_KEY] == f"django_otp_webauthn.webauthncredential/{passkey_id}"
    assert session[SUDO_PASSKEY_SESSION_KEY] == session[SUDO_SESSION_KEY]
    [event] = _events(owner, "mfa.verified")
    assert event.metadata == {
        "device": "passkey",
        "name": "YubiKey 5C",
        "device_id": response.json()["id"],
    }
    owner.refresh_from_db()
    assert owner.failed_auth_count == 0
    assert client.get(reverse("accounts:security")).status_code == 200


def test_the_next_address_is_kept_if_it_is_on_this_site(client, owner):
    authenticator = _owner_with_passkey(owner)
    _password_step(client, owner)
    options = _post_json(client, VERIFY_BEGIN).json()
    response = _post_json(client, VERIFY_COMPLETE + "?next=/t/acme/", authenticator.get(options))
    assert response.json()["redirect_url"] == "/t/acme/"
    _password_step(client, owner)
    options = _post_json(client, VERIFY_BEGIN).json()
    evil = VERIFY_COMPLETE + "?next=https://evil.example/"
    assert _post_json(client, evil, authenticator.get(options)).json()["redirect_url"] == "/"


def test_a_passkey_in_a_verified_session_is_sudo(owner_client, owner):
    authenticator = _owner_with_passkey(owner)
    assert _sign_in(owner_client, authenticator).status_code == 200
    assert [e.metadata["device"] for e in _events(owner, "mfa.sudo_verified")] == ["passkey"]


def test_a_wrong_key_counts_against_the_account_and_verifies_nothing(client, owner):
    authenticator = _owner_with_passkey(owner)
    _password_step(client, owner)

    response = _sign_in(client, authenticator, key=ec.generate_private_key(ec.SECP256R1()))

    assert response.status_code == 422
    assert response.json()["code"] == "invalid_authentication_response"
    owner.refresh_from_db()
    assert owner.failed_auth_count == 1
    [event] = _events(owner, "mfa.verify_failed")
    assert event.outcome == "failure"
    assert event.metadata == {
        "consecutive_failures": 1,
        "device": "passkey",
        "reason": "invalid_authentication_response",
    }
    assert client.get("/t/x/").status_code == 302  # still unverified
    assert DEVICE_ID_SESSION_KEY not in client.session


def test_another_persons_passkey_is_refused_and_counted(client, owner, member):
    mallory_key = SoftAuthenticator()
    make_passkey(member.user, "theirs", mallory_key)
    _owner_with_passkey(owner)
    _password_step(client, owner)
    response = _sign_in(client, mallory_key)
    assert response.status_code == 403
    assert response.json()["code"] == "credential_user_mismatch"
    owner.refresh_from_db()
    assert owner.failed_auth_count == 1


def test_an_answer_is_accepted_once(client, owner):
    authenticator = _owner_with_passkey(owner)
    _password_step(client, owner)
    options = _post_json(client, VERIFY_BEGIN).json()
    answer = authenticator.get(options)
    assert _post_json(client, VERIFY_COMPLETE, answer).status_code == 200
    replay = _post_json(client, VERIFY_COMPLETE, answer)
    assert replay.status_code == 400 and replay.json()["code"] == "invalid_state"


def test_no_passwordless_sign_in(client, owner):
    _owner_with_passkey(owner)
    response = _post_json(client, VERIFY_BEGIN)
    assert response.status_code == 403
    assert response.json()["code"] == "passwordless_login_disabled"


def test_a_backing_off_or_locked_account_is_refused_before_any_check(client, owner):
    authenticator = _owner_with_passkey(owner)
    _password_step(client, owner)
    for _ in range(lockout.BACKOFF_AFTER):
        lockout.code_failed(user=owner)
    response = _post_json(client, VERIFY_BEGIN)
    assert response.status_code == 429 and "Try again in" in response.json()["detail"]
    assert _events(owner, "auth.login_throttled").exists()
    User.objects.filter(pk=owner.pk).update(locked_at="2026-01-01T00:00:00Z")
    response = _post_json(client, VERIFY_BEGIN)
    assert response.status_code == 429 and "locked" in response.json()["detail"]
    assert authenticator.sign_count == 0


def test_a_six_digit_code_never_goes_to_a_passkey(owner):
    make_passkey(owner)
    devices = mfa.code_devices(owner, "123456")
    assert [type(d) for d in devices] == [AuthenticatorDevice]


# --- Removal and the last factor ------------------------------------------------------------------


def test_the_last_factor_may_be_a_passkey_and_cannot_be_removed(owner_client, owner):
    passkey = make_passkey(owner, "only one left")
    app = AuthenticatorDevice.objects.get(user=owner)
    response = owner_client.post(reverse("accounts:totp_remove", kwargs={"pk": app.pk}))
    assert response.status_code == 302
    assert not AuthenticatorDevice.objects.filter(user=owner).exists()
    mail.outbox.clear()
    response = owner_client.post(reverse("accounts:passkey_remove", kwargs={"pk": passkey.pk}))
    assert response.status_code == 302
    assert WebAuthnCredential.objects.filter(pk=passkey.pk).exists()
    assert not _events(owner, "mfa.passkey_removed").exists()
    assert mail.outbox == []


def test_removing_a_passkey_needs_sudo_is_audited_and_mailed(
    client, owner, django_capture_on_commit_callbacks
):
    passkey = make_passkey(owner, "old key")
    factories.verify_session(client, owner, sudo=False)
    url = reverse("accounts:passkey_remove", kwargs={"pk": passkey.pk})
    assert client.post(url).url.startswith("/account/sudo/")
    assert WebAuthnCredential.objects.filter(pk=passkey.pk).exists()
    factories.verify_session(client, owner)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(url).status_code == 302
    assert not WebAuthnCredential.objects.filter(pk=passkey.pk).exists()
    [event] = _events(owner, "mfa.passkey_removed")
    assert event.metadata == {"name": "old key", "device_id": passkey.pk}
    [notice] = mail.outbox
    assert "passkey old key was removed" in notice.body


def test_another_persons_passkey_is_a_404(owner_client, member):
    theirs = make_passkey(member.user)
    url = reverse("accounts:passkey_remove", kwargs={"pk": theirs.pk})
    assert owner_client.post(url).status_code == 404
    assert WebAuthnCredential.objects.filter(pk=theirs.pk).exists()


# --- Challenges at rest ---------------------------------------------------------------------------


def test_no_challenge_is_kept_in_the_session_in_clear(owner_client, owner):
    owner_client.post(reverse("accounts:passkey_add"), {"name": "one"})
    challenges = [_post_json(owner_client, REGISTER_BEGIN).json()["challenge"]]
    make_passkey(owner)
    challenges.append(_post_json(owner_client, VERIFY_BEGIN).json()["challenge"])
    stored = [SessionStore().decode(row.session_data) for row in Session.objects.all()]
    text = json.dumps(stored) + "".join(row.session_data for row in Session.objects.all())
    assert "challenge_digest" in text
    for challenge in challenges:
        assert challenge not in text


def test_an_operator_opens_the_admin_with_a_passkey(client, db):
    operator = factories.make_user("ops@keyward.example")
    User.objects.filter(pk=operator.pk).update(is_staff=True, is_superuser=True)
    authenticator = SoftAuthenticator()
    make_passkey(operator, "ops key", authenticator)
    assert client.get("/admin/").status_code == 302
    _password_step(client, operator)
    step = client.get("/admin/", follow=True)  # the admin's login sends to the second step
    assert step.redirect_chain[-1][0] == "/account/mfa/verify/?next=%2Fadmin%2F"
    assert "Use a passkey" in step.content.decode()
    options = _post_json(client, VERIFY_BEGIN).json()
    response = _post_json(client, VERIFY_COMPLETE + "?next=/admin/", authenticator.get(options))
    assert response.json()["redirect_url"] == "/admin/"
    page = client.get("/admin/")
    assert page.status_code == 200 and "Keyward operations" in page.content.decode()
