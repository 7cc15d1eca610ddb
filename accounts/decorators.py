"""Portal view guards: tenant resolution, role checks and sudo mode."""

import functools
import time
from urllib.parse import urlsplit

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode

from accounts import conf, roles
from accounts.principals import Principal
from accounts.selectors import membership_get, passkey_list

SUDO_SESSION_KEY = "keyward_sudo_at"
# When the last verification was with a passkey: what sudo needs under a tenant's policy
# "require a phishing-resistant factor".
SUDO_PASSKEY_SESSION_KEY = "keyward_sudo_passkey_at"
PASSKEY_REQUIRED = "%(tenant)s requires a passkey: add one to your account to continue."


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
            if request.tenant.require_phishing_resistant_mfa and not has_passkey(request.user):
                return passkey_enrolment_detour(request)
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def has_passkey(user) -> bool:
    return passkey_list(user).exists()


def passkey_required(request) -> bool:
    """Return whether the tenant of this request (set by ``tenant_view``) accepts only a
    passkey for sensitive actions."""
    tenant = getattr(request, "tenant", None)
    return tenant is not None and tenant.require_phishing_resistant_mfa


def sudo_fresh(request) -> bool:
    """Return whether a second factor was verified within KEYWARD_SUDO_SECONDS: a passkey,
    under a tenant that requires one."""
    key = SUDO_PASSKEY_SESSION_KEY if passkey_required(request) else SUDO_SESSION_KEY
    verified_at = request.session.get(key)
    return verified_at is not None and time.time() - verified_at < conf.settings.SUDO_SECONDS


def mark_sudo(request, *, passkey: bool = False) -> None:
    now = time.time()
    request.session[SUDO_SESSION_KEY] = now
    if passkey:
        request.session[SUDO_PASSKEY_SESSION_KEY] = now
    else:
        request.session.pop(SUDO_PASSKEY_SESSION_KEY, None)


def sudo_required(view):
    """Require a second-factor verification within the last KEYWARD_SUDO_SECONDS."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if sudo_fresh(request):
            return view(request, *args, **kwargs)
        return sudo_detour(request)

    return wrapper


def _same_site_referer(request) -> str:
    """Return the path (and query) of the Referer when it is a page of this site, else ""."""
    referer = request.headers.get("Referer", "")
    if not url_has_allowed_host_and_scheme(
        referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return ""
    parts = urlsplit(referer)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def sudo_detour(request):
    """Send the user to verify a second factor, then back: for views that need sudo only for
    some requests (creating, not listing; enabling, not disabling)."""
    # A POST cannot be replayed after the detour: send the user back to the page they were on,
    # where the form comes back filled in (stash_posted_form).
    back = request.get_full_path() if request.method == "GET" else _same_site_referer(request)
    if not back.startswith("/") and not back.startswith(conf.settings.BASE_URL):
        back = reverse("accounts:home")
    if request.method == "POST" and back.startswith("/"):
        stash_posted_form(request, back)
    query = {"next": back}
    if passkey_required(request):
        query["passkey"] = "1"
    return redirect(f"{reverse('accounts:sudo')}?{urlencode(query)}")


# What a form posted when sudo had run out, kept in the session (never secrets) until the page
# it came from is shown again after the verification: it comes back filled in, not empty.
SUDO_FORM_SESSION_KEY = "keyward_sudo_form"
SUDO_FORM_KEPT_SECONDS = 15 * 60
FORM_KEPT = "Confirm it is you to go on: what you entered is kept and comes back afterwards."
FORM_RESTORED = "You confirmed it is you: your entries are back. Check them and submit again."
# SECURITY: a field whose name says it holds a secret is never kept (nor the CSRF token).
_SECRET_FIELDS = ("password", "token", "secret", "code", "otp", "csrf")


def stash_posted_form(request, back: str) -> None:
    """Keep what ``request`` posted for the page ``back`` (a path), without secret fields."""
    data = {
        name: values
        for name, values in request.POST.lists()
        if not any(word in name.lower() for word in _SECRET_FIELDS)
    }
    if not data:
        return
    path = urlsplit(back).path
    request.session[SUDO_FORM_SESSION_KEY] = {"path": path, "data": data, "at": time.time()}
    messages.info(request, FORM_KEPT)


def restore_posted_form(request, form_class) -> dict | None:
    """Return, once, what a ``form_class`` form of this page posted before a sudo detour (as
    ``initial`` data: a list for a field posted several times), or None. Only on a GET of the
    same path, within SUDO_FORM_KEPT_SECONDS, once sudo is fresh."""
    kept = request.session.get(SUDO_FORM_SESSION_KEY)
    if request.method != "GET" or not kept or kept.get("path") != request.path:
        return None
    if not sudo_fresh(request):
        return None  # still on the way: keep it for after the verification
    del request.session[SUDO_FORM_SESSION_KEY]
    fields = form_class.base_fields
    data = {name: values for name, values in kept["data"].items() if name in fields}
    if not data or time.time() - kept.get("at", 0) > SUDO_FORM_KEPT_SECONDS:
        return None
    messages.info(request, FORM_RESTORED)
    return {name: values if len(values) > 1 else values[0] for name, values in data.items()}


def passkey_enrolment_detour(request):
    """Send a member of a tenant that requires a passkey, who holds none, to add one first."""
    messages.warning(request, PASSKEY_REQUIRED % {"tenant": request.tenant.name})
    back = request.get_full_path() if request.method == "GET" else reverse("accounts:home")
    return redirect(f"{reverse('accounts:passkey_add')}?{urlencode({'next': back})}")
