"""Audit of logins and second-factor failures, as receivers of the framework's signals.

``AccountsConfig.ready()`` connects them (as Django's ``AuthConfig`` connects
``update_last_login``): ``user_logged_in`` and ``user_login_failed`` from ``django.contrib.auth``,
``otp_verification_failed`` from django-otp. They carry the request; the events take its context.
"""

import audit
from accounts import lockout
from accounts.models import User
from common.request import context_of


def _context(request):
    return context_of(request) if request is not None else None


def login_succeeded(sender, request, user, **kwargs) -> None:
    """Record ``auth.login_succeeded``; a login by another way than the password form says so
    in ``user.login_via`` (an invitee's first login: ``"invitation"``)."""
    via = getattr(user, "login_via", None)
    audit.record(
        "auth.login_succeeded",
        actor=user,
        target=user,
        context=_context(request),
        metadata={"via": via} if via else None,
    )


def login_failed(sender, credentials, request=None, **kwargs) -> None:
    """Count a wrong password for the back-off of its e-mail from the client's address and
    against its account (``auth.login_failed``, and ``auth.account_locked`` at the limit); an
    unknown e-mail is recorded as anonymous."""
    email = credentials.get("email") or credentials.get("username") or ""
    user = User.objects.filter(email__iexact=email).first() if email else None
    lockout.password_failed(email=email, user=user, context=_context(request))


def code_refused(sender, user, request=None, device=None, factor=None, reason=None, **kwargs):
    """Count a wrong second-factor code, or a passkey that did not verify (``factor`` and the
    library's ``reason``), for the account's back-off and against the account
    (``mfa.verify_failed``); ``device`` is the authenticator being enrolled, when the code was
    for that."""
    metadata = None
    if factor is not None:
        metadata = {"device": factor, "reason": reason}
    elif device is not None and not device.confirmed:
        metadata = {"device": "totp (enrolment)"}
    lockout.code_failed(user=user, context=_context(request), metadata=metadata)
