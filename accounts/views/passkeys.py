"""Passkeys: adding (named, behind sudo), removing, and the WebAuthn ceremonies.

django-otp-webauthn's views run each ceremony; Keyward's subclasses below decide who may run one
and finish it the Keyward way. A passkey that signs in goes through ``finish_verification``, as
a code does: the session key rotates, sudo starts, ``mfa.verified`` (or ``mfa.sudo_verified``)
is recorded; a refused one is counted against the account through django-otp's
``otp_verification_failed`` signal, and the account's back-off and lock hold passkeys as codes.
"""

import logging

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_POST
from django_otp.forms import otp_verification_failed
from django_otp_webauthn import exceptions
from django_otp_webauthn.utils import rewrite_exceptions
from django_otp_webauthn.views import (
    BeginCredentialAuthenticationView,
    BeginCredentialRegistrationView,
    CompleteCredentialAuthenticationView,
    CompleteCredentialRegistrationView,
)

from accounts import lockout, mfa, selectors
from accounts.decorators import sudo_fresh, sudo_required
from accounts.forms import PasskeyNameForm
from accounts.passkeys import webauthn_config
from accounts.views.auth import finish_verification
from common.http import no_store
from common.request import context_of

PENDING_NAME_SESSION_KEY = "keyward_passkey_name"
SUDO_REQUIRED = "Confirm it is you first: your last verification is more than 15 minutes old."
NAME_REQUIRED = "Name the passkey first."
NO_PASSKEY = "This account has no passkey."
logger = logging.getLogger("django_otp_webauthn")


class SudoRequired(exceptions.OTPWebAuthnApiError):
    status_code = 403
    default_detail = SUDO_REQUIRED
    default_code = "sudo_required"


class Throttled(exceptions.OTPWebAuthnApiError):
    status_code = 429
    default_code = "throttled"


def _next(request, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


# --- Ceremonies (JSON, called by the library's browser script) ----------------------------------


class _PasskeyRegisterChecks:
    """Who may run a registration ceremony: a verified person in sudo who named the passkey."""

    def check_can_register(self):
        request = self.request
        if not request.user.is_verified():
            raise exceptions.NotVerified()
        if not sudo_fresh(request):
            raise SudoRequired()
        if not request.session.get(PENDING_NAME_SESSION_KEY):
            raise exceptions.InvalidState(detail=NAME_REQUIRED, code="name_required")


class PasskeyRegisterBeginView(_PasskeyRegisterChecks, BeginCredentialRegistrationView):
    """Registration options (the library's view, with Keyward's checks)."""


class PasskeyRegisterCompleteView(_PasskeyRegisterChecks, CompleteCredentialRegistrationView):
    """Verify the new credential and keep it, named, with its audit event, in one transaction."""

    def post(self, *args, **kwargs):
        request, user = self.request, self.request.user
        state = self.get_state()
        name = request.session.pop(PENDING_NAME_SESSION_KEY, "")
        with rewrite_exceptions(logger=logger), transaction.atomic():
            device = self.get_helper().register_complete(user=user, state=state, data=request.data)
            mfa.passkey_enrolled(user=user, device=device, name=name, context=context_of(request))
        messages.success(request, f"Passkey “{device.name}” added.")
        return JsonResponse({"id": device.pk})


class _PasskeyVerifyChecks:
    """Who may run an authentication ceremony: the signed-in person (never passwordless), with
    a passkey, while the account is neither locked nor backing off."""

    def check_can_authenticate(self):
        super().check_can_authenticate()  # no user: passwordless sign-in is off (403)
        user = self.request.user
        if not mfa.has_passkey(user):
            raise exceptions.CredentialNotFound(detail=NO_PASSKEY)
        wait = lockout.retry_after(user)
        if wait is not None:
            lockout.attempt_throttled(
                user=user, wait=wait, limit="account", context=context_of(self.request)
            )
            raise Throttled(detail=lockout.refusal_message(wait))


class PasskeyVerifyBeginView(_PasskeyVerifyChecks, BeginCredentialAuthenticationView):
    """Authentication options for the signed-in person's passkeys."""


class PasskeyVerifyCompleteView(_PasskeyVerifyChecks, CompleteCredentialAuthenticationView):
    """Check the signed challenge; verify the session (or open sudo) as a right code does."""

    def post(self, *args, **kwargs):
        request, user = self.request, self.request.user
        state = self.get_state()
        try:
            with rewrite_exceptions(logger=logger):
                device = self.get_helper().authenticate_complete(
                    user=user, state=state, data=request.data
                )
            self.check_device_usable(device)
        except exceptions.OTPWebAuthnApiError as error:
            # SECURITY: a credential that does not verify counts as a wrong code.
            otp_verification_failed.send(
                sender=type(self), user=user, request=request, factor="passkey", reason=error.code
            )
            raise
        sudo = user.is_verified()
        finish_verification(request, device)
        mfa.second_factor_verified(user=user, device=device, sudo=sudo, context=context_of(request))
        home = reverse("accounts:home")
        return JsonResponse({"id": device.pk, "redirect_url": _next(request, home)})


# --- Pages ----------------------------------------------------------------------------------------


@sudo_required
def passkey_add_view(request):
    """Name the passkey; the next page runs the ceremony."""
    form = PasskeyNameForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        request.session[PENDING_NAME_SESSION_KEY] = form.cleaned_data["name"]
        url = reverse("accounts:passkey_create")
        nxt = _next(request, "")
        return redirect(f"{url}?{urlencode({'next': nxt})}" if nxt else url)
    context = {"form": form, "next": _next(request, "")}
    return render(request, "accounts/passkey_add.html", context)


@sudo_required
def passkey_create_view(request):
    name = request.session.get(PENDING_NAME_SESSION_KEY)
    if not name:
        return redirect("accounts:passkey_add")
    context = {
        "name": name,
        "next": _next(request, reverse("accounts:security")),
        "webauthn_config": webauthn_config(request),
    }
    return no_store(render(request, "accounts/passkey_create.html", context))


@require_POST
@sudo_required
def passkey_remove_view(request, pk: int):
    device = selectors.passkey_get(request.user, pk)
    try:
        mfa.passkey_remove(user=request.user, device=device, context=context_of(request))
    except ValidationError as error:
        messages.error(request, error.messages[0])
    else:
        messages.success(request, f"Passkey “{device.name}” removed.")
    return redirect("accounts:security")
