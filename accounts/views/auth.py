"""Login, the second factor (enrolment, verification, sudo mode) and logout.

Logins, wrong passwords and wrong codes are audited by the receivers in ``accounts.signals``;
what no signal sees (a refusal before any check, a verified code) by ``accounts.mfa``.
"""

import base64

import segno
from django.contrib import messages
from django.contrib.auth import authenticate, logout
from django.contrib.auth import login as auth_login
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST
from django_otp import login as otp_login
from django_otp.forms import otp_verification_failed

import audit
from accounts import lockout, mfa
from accounts.decorators import mark_sudo, sudo_required
from accounts.forms import CodeForm, EnrolForm, LoginForm
from accounts.models import AuthenticatorDevice, BackupCodeDevice, User
from accounts.passkeys import webauthn_config
from accounts.services.sessions import session_forget, session_rekeyed
from accounts.views.security import backup_codes_page
from common.http import no_store
from common.request import context_of

# SECURITY: also the answer to the right password of a locked account, and to an e-mail with no
# account: the page never tells whether an account exists or is locked (its owner is told by
# e-mail). So it says how to unlock.
INVALID_LOGIN = (
    "E-mail or password is incorrect. If you have forgotten your password, or the account is "
    "locked after too many failed attempts, reset your password by e-mail."
)
INVALID_CODE = "That code is not valid. Check the time on your phone, or use a backup code."
IP_THROTTLED = "Too many login attempts from your network. Try again in %(seconds)d seconds."
FEW_BACKUP_CODES = 3  # warn when this many backup codes or fewer are left


def _safe_next(request, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


def _refused(request, user: User, form, devices=()) -> bool:
    """Refuse, unchecked, a code while the account is locked or its codes or ``devices`` back
    off (audited); put the "try again in …" or lock message on ``form``; return whether it was
    refused. (The code step may say "locked": its visitor had the password.)"""
    wait, limit = lockout.attempt_wait(user, devices)
    if wait is None:
        return False
    lockout.attempt_throttled(user=user, wait=wait, limit=limit, context=context_of(request))
    form.add_error("code" if limit == "device" else None, lockout.refusal_message(wait))
    return True


def _code_refused(request, user: User, form, device=None) -> None:
    """Say the code is wrong; django-otp's signal has it counted and audited (as its forms do),
    ``device`` naming the authenticator being enrolled."""
    otp_verification_failed.send(sender=type(form), user=user, request=request, device=device)
    form.add_error("code", INVALID_CODE)


def finish_verification(request, device) -> None:
    """Mark the session verified with ``device`` (an authenticator app, a backup code or a
    passkey), rotate its key, start sudo mode."""
    otp_login(request, device)
    request.session.cycle_key()  # SECURITY: django-otp's login() does not
    session_rekeyed(request.session)
    mark_sudo(request, passkey=mfa.device_kind(device) == "passkey")
    lockout.auth_success_reset(request.user)


# --- Login ----------------------------------------------------------------------------------


def _authenticate(request, form) -> tuple[User | None, int]:
    """Return the user the form's credentials authenticate, or None with the form's error; and
    the page's status (429 when refused unchecked).

    SECURITY: every answer is the same for an e-mail with or without an account, and past the
    per-address limit costs one password hash (see ``accounts.mfa``). The per-address limit and
    the back-off of this e-mail from this address refuse before any check (audited here);
    a locked account's password is never checked (no guess can be told right) and is answered as
    a wrong one; ``authenticate()`` signals a wrong password, which ``accounts.signals`` counts
    and audits.
    """
    email, password = form.cleaned_data["email"], form.cleaned_data["password"]
    context = context_of(request)
    wait = lockout.login_ip_wait(context)
    if wait is not None:  # names no account: no hash, the cheapest refusal
        lockout.attempt_throttled(user=None, email=email, wait=wait, limit="ip", context=context)
        form.add_error(None, IP_THROTTLED % {"seconds": wait})
        return None, 429
    user = User.objects.filter(email__iexact=email).first()
    wait = lockout.password_wait(email=email, user=user, context=context)
    if wait is not None:
        lockout.password_dummy_check(password)
        lockout.attempt_throttled(
            user=user, email=email, wait=wait, limit="email-ip", context=context
        )
        form.add_error(None, lockout.refusal_message(wait))
        return None, 429
    if user is not None and user.locked_at is not None:
        lockout.password_dummy_check(password)
        lockout.password_refused_locked(email=email, user=user, context=context)
        form.add_error(None, INVALID_LOGIN)
        return None, 200
    authed = authenticate(request, email=email, password=password)
    if authed is None:
        form.add_error(None, INVALID_LOGIN)
    return authed, 200


def _second_step(request, user: User):
    step = "accounts:mfa_verify" if mfa.has_second_factor(user) else "accounts:mfa_enrol"
    nxt = _safe_next(request, "")
    url = reverse(step)
    return redirect(f"{url}?next={nxt}" if nxt else url)


def login_view(request):
    if request.user.is_authenticated and request.user.is_verified():
        return redirect(_safe_next(request, reverse("accounts:home")))
    form = LoginForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        user, status = _authenticate(request, form)
        if user is not None:
            auth_login(request, user)  # SECURITY: rotates the session key
            return _second_step(request, user)
    context = {"form": form, "next": _safe_next(request, "")}
    return render(request, "registration/login.html", context, status=status)


@require_POST
def logout_view(request):
    if request.user.is_authenticated:
        audit.record(
            "auth.logged_out", actor=request.user, target=request.user, context=context_of(request)
        )
    session_forget(request.session)
    logout(request)  # SECURITY: flushes the session and gives a new key
    messages.info(request, "You have logged out.")
    return redirect("accounts:login")


# --- Enrolment --------------------------------------------------------------------------------


def mfa_enrol_view(request):
    user = request.user
    if not user.is_authenticated:
        return redirect("accounts:login")
    adding = user.is_verified()
    if not adding and mfa.has_second_factor(user):
        return redirect("accounts:mfa_verify")
    if adding:
        return _enrol_additional(request)
    return _enrol(request, adding=False)


@sudo_required
def _enrol_additional(request):
    return _enrol(request, adding=True)


def _enrol(request, *, adding: bool):
    user = request.user
    device = mfa.totp_pending_device(user)
    form = EnrolForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        if _refused(request, user, form, [device]):
            status = 429
        elif (verified := mfa.verify_pending(user, device, form.cleaned_data["code"])) is None:
            _code_refused(request, user, form, device)
        else:
            return _enrolled(request, verified, adding=adding)
    return _enrol_page(request, form, device, adding=adding, status=status)


def _enrolled(request, device: AuthenticatorDevice, *, adding: bool):
    """Confirm the authenticator; a first one also verifies the session and shows the new
    backup codes."""
    mfa.totp_confirm(user=request.user, device=device, context=context_of(request))
    if adding:
        messages.success(request, "Authenticator added.")
        return redirect("accounts:security")
    finish_verification(request, device)
    codes = mfa.backup_codes_generate(user=request.user, context=context_of(request))
    return backup_codes_page(request, codes, next_url=_safe_next(request, reverse("accounts:home")))


def _enrol_page(request, form, device: AuthenticatorDevice, *, adding: bool, status: int):
    secret = base64.b32encode(device.bin_key).decode()
    context = {
        "form": form,
        "qr": segno.make(device.config_url, error="m").svg_data_uri(scale=5, border=2),
        "setup_key": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
        "setup_key_raw": secret,  # what the copy button copies: no spaces
        "adding": adding,
        "next": _safe_next(request, ""),
    }
    return no_store(render(request, "accounts/mfa_enrol.html", context, status=status))


# --- Verification -------------------------------------------------------------------------------


def mfa_verify_view(request, *, sudo: bool = False):
    user = request.user
    if not user.is_authenticated:
        return redirect("accounts:login")
    if not sudo and user.is_verified():
        return redirect(_safe_next(request, reverse("accounts:home")))
    if not mfa.has_second_factor(user):
        return redirect("accounts:mfa_enrol")
    has_passkey = mfa.has_passkey(user)
    # Sudo for a tenant that requires a phishing-resistant factor: a passkey only.
    passkey_only = sudo and request.GET.get("passkey") == "1"
    form = None if passkey_only else CodeForm(request.POST or None)
    status = 200
    if request.method == "POST" and form is not None and form.is_valid():
        device, status = _verify(request, user, form)
        if device is not None:
            _verified(request, device, sudo=sudo)
            return redirect(_safe_next(request, reverse("accounts:home")))
    context = {
        "form": form,
        "sudo": sudo,
        "next": _safe_next(request, ""),
        "has_passkey": has_passkey,
        "passkey_only": passkey_only,
        "webauthn_config": webauthn_config(request) if has_passkey else None,
    }
    return render(request, "accounts/mfa_verify.html", context, status=status)


def sudo_view(request):
    return mfa_verify_view(request, sudo=True)


def _verify(request, user: User, form):
    """Return the device that accepts the form's code, or None with the form's error; and the
    page's status (429 when refused unchecked)."""
    code = form.cleaned_data["code"]
    if _refused(request, user, form, mfa.code_devices(user, code)):
        return None, 429
    device = mfa.verify_any(user, code)
    if device is None:
        _code_refused(request, user, form)
    return device, 200


def _verified(request, device, *, sudo: bool) -> None:
    finish_verification(request, device)
    mfa.second_factor_verified(
        user=request.user, device=device, sudo=sudo, context=context_of(request)
    )
    if isinstance(device, BackupCodeDevice) and device.remaining <= FEW_BACKUP_CODES:
        messages.warning(
            request,
            f"You have {device.remaining} backup codes left. "
            "Generate new ones on the account security page.",
        )
