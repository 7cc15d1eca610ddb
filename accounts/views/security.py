"""The account security page (authenticators, backup codes), password change and reset."""

from urllib.parse import quote

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse, reverse_lazy
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_POST

import audit
from accounts import lockout, mfa, selectors, services
from accounts.decorators import sudo_required
from accounts.forms import KeywardPasswordResetForm, KeywardSetPasswordForm
from accounts.services import sessions
from audit.actions import ACTIONS
from audit.services import Actor
from common.http import no_store
from common.request import context_of


def backup_codes_page(request, codes: list[str], *, next_url: str, regenerated: bool = False):
    """Show new backup codes, once: the page is never stored. Copy, download (a text file, one
    code per line) and print keep one code per line."""
    text = "".join(f"{code}\n" for code in codes)
    context = {
        "codes": codes,
        "next": next_url,
        "regenerated": regenerated,
        "download_href": "data:text/plain;charset=utf-8," + quote(text),
    }
    return no_store(render(request, "accounts/backup_codes.html", context))


def security_view(request):
    user = request.user
    devices = list(selectors.authenticator_list(user))
    passkeys = list(selectors.passkey_list(user))
    remaining, total = selectors.backup_codes_left(user)
    current = request.session.get(sessions.REF_SESSION_KEY)
    context = {
        "devices": devices,
        "passkeys": passkeys,
        "factor_count": len(devices) + len(passkeys),
        "backup_remaining": remaining,
        "backup_total": total,
        "sessions": [
            (row, sessions.device_label(row.user_agent), row.pk == current)
            for row in sessions.session_list(user)
        ],
    }
    return render(request, "accounts/security.html", context)


@sudo_required
def backup_codes_regenerate_view(request):
    """GET: confirm (the codes left stop working). POST: ten new codes, shown once."""
    if request.method != "POST":
        remaining, _ = selectors.backup_codes_left(request.user)
        return render(request, "accounts/backup_codes_confirm.html", {"remaining": remaining})
    codes = mfa.backup_codes_generate(user=request.user, context=context_of(request))
    return backup_codes_page(
        request, codes, next_url=reverse("accounts:security"), regenerated=True
    )


@require_POST
def session_end_view(request, pk: int):
    sessions.session_end(
        user=request.user,
        pk=pk,
        current_ref=request.session.get(sessions.REF_SESSION_KEY),
        context=context_of(request),
    )
    messages.success(request, "The session has ended: that browser is signed out.")
    return redirect("accounts:security")


@require_POST
def session_end_others_view(request):
    count = sessions.session_end_others(
        user=request.user,
        current_ref=request.session.get(sessions.REF_SESSION_KEY),
        context=context_of(request),
    )
    messages.success(request, f"{count} other session{pluralize(count)} ended.")
    return redirect("accounts:security")


def security_log_view(request):
    """The person's own security events of the last 90 days."""
    events = [
        (event, ACTIONS.get(event.action, event.action), sessions.device_label(event.user_agent))
        for event in selectors.security_log(request.user)
    ]
    context = {"events": events, "days": selectors.SECURITY_LOG_DAYS}
    return render(request, "accounts/security_log.html", context)


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
        sessions.session_rekeyed(self.request.session)
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
