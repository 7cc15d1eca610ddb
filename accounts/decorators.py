"""Portal view guards: tenant resolution, role checks and sudo mode."""

import functools
import time

from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode

from accounts import conf, roles
from accounts.principals import Principal
from accounts.selectors import membership_get

SUDO_SESSION_KEY = "keyward_sudo_at"


def tenant_view(action: str | None = None):
    """Resolve ``slug`` to the user's membership (else 404) and require ``action`` (else 403)."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(request, slug, *args, **kwargs):
            request.membership = membership_get(request.user, slug)
            request.tenant = request.membership.tenant
            request.principal = Principal.of_membership(request.membership)
            if action is not None and not roles.may(request.membership.role, action):
                raise PermissionDenied("Your role in this tenant does not allow this.")
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def sudo_fresh(request) -> bool:
    verified_at = request.session.get(SUDO_SESSION_KEY)
    return verified_at is not None and time.time() - verified_at < conf.settings.SUDO_SECONDS


def mark_sudo(request) -> None:
    request.session[SUDO_SESSION_KEY] = time.time()


def sudo_required(view):
    """Require a second-factor verification within the last KEYWARD_SUDO_SECONDS."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if sudo_fresh(request):
            return view(request, *args, **kwargs)
        return sudo_detour(request)

    return wrapper


def sudo_detour(request):
    """Send the user to verify a second factor, then back: for views that need sudo only for
    some requests (creating, not listing; enabling, not disabling)."""
    # A POST cannot be replayed after the detour: send the user back to the page they were on.
    back = (
        request.get_full_path() if request.method == "GET" else request.headers.get("Referer", "")
    )
    if not back.startswith("/") and not back.startswith(conf.settings.BASE_URL):
        back = reverse("accounts:home")
    return redirect(f"{reverse('accounts:sudo')}?{urlencode({'next': back})}")
