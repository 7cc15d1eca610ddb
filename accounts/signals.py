"""Audit of logins and second-factor failures, as receivers of the framework's signals.

``AccountsConfig.ready()`` connects them (as Django's ``AuthConfig`` connects
``update_last_login``): ``user_logged_in`` and ``user_login_failed`` from ``django.contrib.auth``,
``otp_verification_failed`` from django-otp. They carry the request; the events take its context.
"""

import audit
from accounts import lockout, mfa
from accounts.models import User
from common import mail
from common.request import context_of

KEY_MAIL_SUBJECT = "A new API key was created with your Keyward account"
KEY_MAIL_BODY = """\
A new API key, %(key)s, was created with your Keyward account %(email)s in %(tenant)s, from
%(ip)s.

If this was not you, revoke the key and change your password; your security log lists what
your account did: %(log_url)s
"""


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


def key_issued_notify(sender, event, **kwargs) -> None:
    """E-mail the person whose account issued a key (``key.issued`` by a user in a request),
    once the transaction commits: a key made with a stolen session does not go unnoticed. The
    e-mail names the key, never its token (the event holds none)."""
    # In a request (the portal, the API): not a key made from the command line or by a job.
    if event.action != "key.issued" or event.actor_kind != "user" or not event.request_id:
        return
    user = User.objects.filter(pk=event.actor_id).only("email").first()
    if user is None:
        return
    body = KEY_MAIL_BODY % {
        "key": event.target_label or "(unnamed)",
        "email": user.email,
        "tenant": event.tenant.name if event.tenant_id else "Keyward",
        "ip": event.ip or "an unknown address",
        "log_url": mfa.absolute("accounts:security_log"),
    }
    # A task enqueued with the change (common/mail.py): the request never waits on SMTP.
    mail.send_on_commit(KEY_MAIL_SUBJECT, body, [user.email], what="a new key notice")
