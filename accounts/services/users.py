"""Writes for people's accounts, and the links they are sent."""

from django.contrib.auth.tokens import default_token_generator
from django.db import transaction
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

import audit
from accounts import conf
from accounts.models import (
    User,
)
from common.request import RequestContext


def absolute_url(path: str) -> str:
    return conf.settings.BASE_URL.rstrip("/") + path


def set_password_link(user: User) -> str:
    """Return a one-time link where ``user`` sets a password (Django's reset token)."""
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    return absolute_url(
        reverse("accounts:password_reset_confirm", kwargs={"uidb64": uid, "token": token})
    )


@transaction.atomic
def user_password_set(
    *, user: User, password: str, action: str, context: RequestContext | None = None
) -> None:
    """Set a password (reset link or change) and lift any account lock; audited."""
    from accounts.lockout import account_unlock

    user.set_password(password)
    user.save(update_fields=["password"])
    audit.record(action, actor=user, target=user, context=context)
    if action == "auth.password_reset":
        account_unlock(user=user, actor=user, context=context)
