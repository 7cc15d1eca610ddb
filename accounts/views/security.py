"""The account security page (authenticators, backup codes), password change and reset."""

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_POST

import audit
from accounts import lockout, mfa, selectors, services
from accounts.decorators import sudo_required
from accounts.forms import KeywardPasswordResetForm, KeywardSetPasswordForm
from audit.services import Actor
from common.http import no_store
from common.request import context_of


def backup_codes_page(request, codes: list[str], *, next_url: str, regenerated: bool = False):
    """Show new backup codes, once: the page is never stored."""
    context = {"codes": codes, "next": next_url, "regenerated": regenerated}
    return no_store(render(request, "accounts/backup_codes.html", context))


def security_view(request):
    user = request.user
    devices = list(selectors.authenticator_list(user))
    passkeys = list(selectors.passkey_list(user))
    context = {
        "devices": devices,
        "passkeys": passkeys,
        "factor_count": len(devices) + len(passkeys),
        "backup_remaining": selectors.backup_codes_remaining(user),
    }
    return render(request, "accounts/security.html", context)


@require_POST
@sudo_required
def backup_codes_regenerate_view(request):
    codes = mfa.backup_codes_generate(user=request.user, context=context_of(request))
    return backup_codes_page(
        request, codes, next_url=reverse("accounts:security"), regenerated=True
    )


@require_POST
@sudo_required
def totp_remove_view(request, pk: int):
    device = selectors.authenticator_get(request.user, pk)
    try:
        mfa.totp_remove(user=request.user, device=device, context=context_of(request))
    except ValidationError as error:
        messages.error(request, error.messages[0])
    else:
        messages.success(request, "Authenticator removed.")
    return redirect("accounts:security")


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "registration/password_change_form.html"
    success_url = reverse_lazy("accounts:security")

    def form_valid(self, form):
        services.user_password_set(
            user=form.user,
            password=form.cleaned_data["new_password1"],
            action="auth.password_changed",
            context=context_of(self.request),
        )
        update_session_auth_hash(self.request, form.user)  # rotates the session key
        messages.success(self.request, "Your password has been changed.")
        return HttpResponseRedirect(self.get_success_url())


class PasswordResetView(auth_views.PasswordResetView):
    form_class = KeywardPasswordResetForm
    success_url = reverse_lazy("accounts:password_reset_done")
    email_template_name = "registration/password_reset_email.txt"
    subject_template_name = "registration/password_reset_subject.txt"

    def form_valid(self, form):
        """Send the link, unless the client's address or the e-mail address asked too often
        (429, audited): the same answers and work whether the address has an account or not."""
        email, context = form.cleaned_data["email"], context_of(self.request)
        wait, limit = lockout.password_reset_wait(email=email, context=context)
        if wait is not None:
            lockout.password_reset_throttled(email=email, wait=wait, limit=limit, context=context)
            form.add_error(None, lockout.RESET_THROTTLED[limit] % {"seconds": wait})
            return self.render_to_response(self.get_context_data(form=form), status=429)
        audit.record("auth.password_reset_requested", actor=Actor.anonymous(email), context=context)
        return super().form_valid(form)


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    form_class = KeywardSetPasswordForm
    success_url = reverse_lazy("accounts:password_reset_complete")

    def get_form(self, form_class=None):
        form = super().get_form(form_class)
        form.request = self.request
        return form

    def dispatch(self, *args, **kwargs):
        response = super().dispatch(*args, **kwargs)
        add_never_cache_headers(response)
        return response
