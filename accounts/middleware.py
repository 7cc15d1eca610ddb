"""Session time limits and the rule that every portal page needs a verified second factor."""

import time

from django.contrib import messages
from django.contrib.auth import logout
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode

import audit
from accounts import conf
from accounts.services import sessions
from common.request import context_of

STARTED_KEY = "keyward_started_at"
SEEN_KEY = "keyward_seen_at"
SESSION_ENDED = "Your session has ended. Please log in again."

# Paths a person may open before verifying a second factor. Everything else is closed.
OPEN_PREFIXES = (
    "/account/login/",
    "/account/logout/",
    "/account/mfa/",
    "/account/password-reset/",
    "/account/reset/",
    "/invite/",
    "/healthz",
    "/readyz",
    "/metrics",
    "/static/",
    "/favicon.ico",
    "/api/",
    "/admin/",
    "/oauth/",  # token exchange, introspection, revocation: no session, their own credentials
    "/.well-known/",  # JWKS and OAuth metadata: public
)


class SessionLifetimeMiddleware:
    """End sessions after KEYWARD_SESSION_MAX_AGE and after KEYWARD_SESSION_IDLE_TIMEOUT idle;
    send anyone without a verified second factor to login, enrolment or verification."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        path = request.path_info
        if path.startswith(
            (
                "/static/",
                "/favicon.ico",
                "/healthz",
                "/readyz",
                "/metrics",
                "/api/",
                "/oauth/",
                "/.well-known/",
            )
        ):
            return self.get_response(request)
        user = request.user
        if user.is_authenticated:
            now = time.time()
            started = request.session.setdefault(STARTED_KEY, now)
            seen = request.session.get(SEEN_KEY, now)
            if (
                now - started > conf.settings.SESSION_MAX_AGE
                or now - seen > conf.settings.SESSION_IDLE_TIMEOUT
            ):
                audit.record(
                    "auth.session_expired",
                    actor=user,
                    target=user,
                    context=context_of(request),
                    metadata={"idle_seconds": int(now - seen), "age_seconds": int(now - started)},
                )
                logout(request)
                messages.info(request, SESSION_ENDED)
                return redirect(f"{reverse('accounts:login')}?{urlencode({'next': path})}")
            if now - seen > 30 or SEEN_KEY not in request.session:
                request.session[SEEN_KEY] = now
            if (
                sessions.session_track(
                    user=user, session=request.session, context=context_of(request)
                )
                is None
            ):  # ended from the account security page (by its owner)
                logout(request)
                messages.info(request, SESSION_ENDED)
                return redirect(f"{reverse('accounts:login')}?{urlencode({'next': path})}")
        if not path.startswith(OPEN_PREFIXES) and not (
            user.is_authenticated and user.is_verified()
        ):
            return redirect(self._next_step(request))
        return self.get_response(request)

    @staticmethod
    def _next_step(request) -> str:
        from accounts.mfa import has_second_factor

        query = urlencode({"next": request.get_full_path()})
        if not request.user.is_authenticated:
            return f"{reverse('accounts:login')}?{query}"
        if has_second_factor(request.user):
            return f"{reverse('accounts:mfa_verify')}?{query}"
        return reverse("accounts:mfa_enrol")
