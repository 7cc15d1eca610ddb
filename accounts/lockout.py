"""The back-off of passwords and codes, the account-wide failure counter that locks an account,
and the password-reset throttles: the same answer and the same work for known and unknown
accounts (no enumeration), per (e-mail, address) first (no lock-out of the owner by others)."""

import hashlib
from collections.abc import Callable

from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

import audit
from accounts import conf
from accounts.mfa import device_retry_after
from accounts.models import (
    User,
)
from audit.services import Actor
from common import mail, ratelimit
from common.mail import EmailMessage
from common.request import RequestContext

BACKOFF_AFTER = 5
# Failures allowed in each window before the next attempt waits for that window's end: for a
# password per (e-mail, client address), for second-factor codes per account.
BACKOFF_RATES = (f"{BACKOFF_AFTER}/min", "20/hour", "50/day")

LOCKED_MESSAGE = (
    "This account is locked after too many failed attempts. Reset your password by e-mail, "
    "or ask an operator to unlock it."
)
BACKOFF_MESSAGE = "Too many failed attempts. Try again in %(seconds)d seconds."
LOCKED_MAIL_SUBJECT = "Your Keyward account is locked"
LOCKED_MAIL_BODY = """\
After %(failures)d failed attempts in a row to sign in to the Keyward account %(email)s, the
account is locked: even the right password and code are refused.

To unlock it, set a new password: %(reset_url)s

If these attempts were not yours, someone is guessing your password. A new password unlocks the
account; an operator can also unlock it.
"""
RESET_THROTTLED = {
    "ip": "Too many password reset requests from your network. Try again in %(seconds)d seconds.",
    "account": (
        "Too many reset links were asked for this address. If it belongs to an account, the "
        "link in the latest e-mail works for a day; or try again in %(seconds)d seconds."
    ),
}


def _now():
    return timezone.now()


def _client_ip(context: RequestContext | None) -> str:
    return (context.ip if context is not None else None) or "-"


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def _backoff_wait(scope: str, ident: str) -> int | None:
    """Return the seconds until ``ident``'s next attempt may be checked (the end of the longest
    window of BACKOFF_RATES whose failures are used up), or None if it may be now."""
    waits = []
    for rate in BACKOFF_RATES:
        failures, limit, left = ratelimit.count(scope, ident, rate, amount=0)
        if failures >= limit:
            waits.append(left)
    return max(waits) if waits else None


def _backoff_count(scope: str, ident: str) -> None:
    """Count a failure of ``ident`` in every window of BACKOFF_RATES."""
    for rate in BACKOFF_RATES:
        ratelimit.count(scope, ident, rate)


def _password_ident(email: str, user: User | None, context: RequestContext | None) -> str:
    # A digest: no e-mail address in the cache's keys. The account's password hash is part of
    # it, so a new password (a reset) starts afresh; an e-mail with no account has none.
    password = user.password if user is not None else ""
    return _digest(email.strip().lower(), _client_ip(context), password)


def login_ip_wait(context: RequestContext | None) -> int | None:
    """Count a login attempt from the client's address; return the seconds it must wait when
    over KEYWARD_LOGIN_IP_RATE, else None."""
    return ratelimit.hit("login-ip", _client_ip(context), conf.settings.LOGIN_IP_RATE)


def password_wait(*, email: str, user: User | None, context: RequestContext | None) -> int | None:
    """Return the seconds before a password for ``email`` may be checked again from the
    client's address, or None if now. ``user`` is the account of ``email`` or None: either way
    the rule is the same."""
    return _backoff_wait("login", _password_ident(email, user, context))


def password_dummy_check(password: str) -> None:
    """Hash ``password`` once, as checking it would (and as Django's ModelBackend does for an
    e-mail with no account): a refusal costs the time a check costs."""
    make_password(password)


def password_failed(*, email: str, user: User | None, context: RequestContext | None) -> None:
    """Count a refused password for the back-off of (``email``, client address) and against
    ``user``, the account of ``email`` (``auth.login_failed``; ``auth.account_locked`` at the
    limit); with no account, record ``auth.login_failed`` as anonymous."""
    _backoff_count("login", _password_ident(email, user, context))
    if user is not None:
        auth_failure(user=user, action="auth.login_failed", context=context)
        return
    audit.record(
        "auth.login_failed",
        actor=Actor.anonymous(email),
        outcome="failure",
        context=context,
        metadata={"reason": "unknown e-mail"},
    )


def password_refused_locked(*, email: str, user: User, context: RequestContext | None) -> None:
    """Refuse, unchecked, a password for a locked account (its answer is a wrong password's):
    counted for the back-off like one, audited as ``auth.login_throttled`` (``locked``), not
    counted against the account."""
    _backoff_count("login", _password_ident(email, user, context))
    attempt_throttled(user=user, wait=0, limit="account", context=context)


def retry_after(user: User) -> int | None:
    """Return seconds before ``user`` may try a second-factor code again (the codes' back-off,
    per account: wrong passwords do not count, so they never hold up the owner's code), 0 if
    the account is locked, None if now."""
    if user.locked_at is not None:
        return 0
    return _backoff_wait("code", str(user.pk))


def code_failed(
    *, user: User, context: RequestContext | None = None, metadata: dict | None = None
) -> None:
    """Count a refused second-factor code for the account's code back-off and against the
    account (``mfa.verify_failed``; ``auth.account_locked`` at the limit)."""
    _backoff_count("code", str(user.pk))
    auth_failure(user=user, action="mfa.verify_failed", context=context, metadata=metadata)


def attempt_wait(user: User, devices=()) -> tuple[int | None, str]:
    """Return ``(seconds, limit)`` before ``user`` may try a code again: the account's lock
    (``"account"``, 0) or code back-off (``"account"``), else that of ``devices``
    (``"device"``); None if now."""
    wait = retry_after(user)
    if wait is not None:
        return wait, "account"
    return device_retry_after(devices), "device"


def attempt_throttled(
    *,
    user: User | None,
    wait: int,
    limit: str,
    email: str = "",
    context: RequestContext | None = None,
) -> None:
    """Audit an attempt refused unchecked (``auth.login_throttled``): by the per-address limit
    (``limit="ip"``), the password back-off of an e-mail from an address (``"email-ip"``;
    ``user`` None when the e-mail has no account: the e-mail typed), the account's lock or code
    back-off (``"account"``) or an authenticator's (``"device"``). It is no failed attempt: it is
    not counted against the account."""
    metadata = {"retry_after": wait}
    metadata.update({"locked": wait == 0} if limit == "account" else {"limit": limit})
    audit.record(
        "auth.login_throttled",
        actor=user if user is not None else Actor.anonymous(email),
        target=user,
        outcome="denied",
        context=context,
        metadata=metadata,
    )


def refusal_message(wait: int) -> str:
    return LOCKED_MESSAGE if wait == 0 else BACKOFF_MESSAGE % {"seconds": wait}


@transaction.atomic
def auth_failure(
    *, user: User, action: str, context: RequestContext | None = None, metadata=None
) -> None:
    """Count one failed password or second-factor attempt; lock the account at the limit and,
    once committed, tell its owner by e-mail how to unlock it."""
    locked = User.objects.select_for_update().get(pk=user.pk)
    locked.failed_auth_count += 1
    locked.last_failed_auth_at = _now()
    fields = ["failed_auth_count", "last_failed_auth_at"]
    audit.record(
        action,
        actor=user,
        target=user,
        outcome="failure",
        context=context,
        metadata={"consecutive_failures": locked.failed_auth_count, **(metadata or {})},
    )
    if locked.failed_auth_count >= conf.settings.LOCK_AFTER_FAILURES and locked.locked_at is None:
        locked.locked_at = _now()
        fields.append("locked_at")
        audit.record(
            "auth.account_locked",
            actor=user,
            target=user,
            context=context,
            outcome="denied",
            metadata={"consecutive_failures": locked.failed_auth_count},
        )
        email, failures = locked.email, locked.failed_auth_count
        transaction.on_commit(lambda: _mail_lock_notice(email, failures))
    locked.save(update_fields=fields)
    user.failed_auth_count, user.last_failed_auth_at = (
        locked.failed_auth_count,
        locked.last_failed_auth_at,
    )
    user.locked_at = locked.locked_at


def _mail_lock_notice(email: str, failures: int) -> None:
    reset_url = conf.settings.BASE_URL.rstrip("/") + reverse("accounts:password_reset")
    body = LOCKED_MAIL_BODY % {"failures": failures, "email": email, "reset_url": reset_url}
    send_off_request(
        EmailMessage(LOCKED_MAIL_SUBJECT, body, None, [email]).send, what="a lock notice"
    )


def send_off_request(send: Callable[[], object], *, what: str) -> None:
    """Send an e-mail about signing in (a lock notice, a reset link) without the request
    waiting on the mail server, by a thread of its own (SECURITY: the round trip would tell
    whether there was an account to write to); in the request when KEYWARD_AUTH_MAIL is
    ``"request"`` (the tests)."""
    if conf.settings.AUTH_MAIL == "request":
        mail.send_now(send, what=what)
    else:
        mail.send_later(send, what=what)


def password_reset_wait(*, email: str, context: RequestContext | None) -> tuple[int | None, str]:
    """Count a password reset request from the client's address, then one for ``email``
    (whether it has an account or not); return the seconds to wait and the limit that refused
    it (``"ip"`` or ``"account"``), or ``(None, "")``."""
    ip_wait = ratelimit.hit("reset-ip", _client_ip(context), conf.settings.PASSWORD_RESET_IP_RATE)
    if ip_wait is not None:
        return ip_wait, "ip"
    wait = ratelimit.hit(
        "reset-account", _digest(email.strip().lower()), conf.settings.PASSWORD_RESET_ACCOUNT_RATE
    )
    return (wait, "account") if wait is not None else (None, "")


def password_reset_throttled(
    *, email: str, wait: int, limit: str, context: RequestContext | None = None
) -> None:
    """Audit a password reset request refused by a limit (``auth.password_reset_throttled``)."""
    audit.record(
        "auth.password_reset_throttled",
        actor=Actor.anonymous(email),
        outcome="denied",
        context=context,
        metadata={"retry_after": wait, "limit": limit},
    )


def auth_success_reset(user: User) -> None:
    """Forget consecutive failures after a successful step."""
    if user.failed_auth_count:
        User.objects.filter(pk=user.pk).update(failed_auth_count=0, last_failed_auth_at=None)
        user.failed_auth_count = 0
        user.last_failed_auth_at = None


@transaction.atomic
def account_unlock(*, user: User, actor, context: RequestContext | None = None) -> None:
    """Lift a lock (operator action or password reset) and reset the failure counter."""
    was_locked = user.locked_at is not None
    User.objects.filter(pk=user.pk).update(
        locked_at=None, failed_auth_count=0, last_failed_auth_at=None
    )
    user.locked_at, user.failed_auth_count, user.last_failed_auth_at = None, 0, None
    if was_locked:
        audit.record("auth.account_unlocked", actor=actor, target=user, context=context)
