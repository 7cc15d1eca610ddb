"""Web hardening, on every route the resolver serves (the admin's aside).

- Every response carries the CSP (with ``frame-ancestors 'none'``), ``X-Frame-Options: DENY``,
  ``Referrer-Policy`` and ``nosniff``, whoever asks.
- A page that shows a secret (a token, backup codes, a TOTP setup key, and the forms that lead to
  them) is ``Cache-Control: no-store``; no other page ever holds a secret.
- CSRF is enforced on every form: a POST without the token is a 403 and changes nothing.
- Under the production settings (``config/settings.py`` evaluated with ``DEBUG=false``): HSTS,
  HTTPS redirect, and session and CSRF cookies that are Secure, HttpOnly and SameSite.

``manage.py check --deploy`` under a production environment is
``tests/accounts/test_operations.py::test_check_deploy_is_clean_with_production_environment``.
"""

import base64
import re
import runpy
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import reverse

from accounts import mfa
from accounts.middleware import OPEN_PREFIXES
from accounts.models import AuthenticatorDevice, BackupCode, User
from accounts.services import set_password_link
from keys import tokens
from tests import factories
from tests.security.surface import (
    FORM_DATA,
    all_routes,
    body_of,
    build_world,
    portal_routes,
    rolled_back,
    tenant_state,
    verified_client,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]

ROUTES = all_routes()
PORTAL_ROUTES = portal_routes()
TOKEN_SHAPE = re.compile(r"\b[a-z]{2,8}[ps]_[0-9A-Za-z]{38}\b")
CSRF_FAILED = "CSRF verification failed"
SETTINGS_FILE = Path(__file__).resolve().parents[2] / "config" / "settings.py"


@pytest.fixture
def acme(db):
    return build_world("acme")


def _path(route, world) -> str:
    """Return a real URL for ``route``: the tenant's slug, its objects, live link secrets."""
    values = dict(world.variants(route)[0])
    for param in route.params:
        if param in values:
            continue
        if param in ("uidb64", "token"):
            _, _, _, uidb64, token, _ = urlsplit(set_password_link(world.owner.user)).path.split(
                "/"
            )
            values.update(uidb64=uidb64, token=token)
        elif param == "secret":
            values["secret"] = world.invitation_secret
        else:
            pytest.fail(f"add a builder for {route.route} (<{param}>) to test_web_hardening.py")
    return route.path(**values)


def _is_no_store(response) -> bool:
    return "no-store" in response.get("Cache-Control", "")


# --- Every page: headers, and no secret ----------------------------------------------------


def _assert_hardened(response, where) -> None:
    csp = response.get("Content-Security-Policy", "")
    assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp, (where, csp)
    assert "object-src 'none'" in csp and "base-uri 'none'" in csp, (where, csp)
    assert response.get("X-Frame-Options") == "DENY", where
    assert response.get("Referrer-Policy") == "same-origin", where
    assert response.get("X-Content-Type-Options") == "nosniff", where
    assert response.get("Cross-Origin-Opener-Policy") == "same-origin", where


def _world_secrets(world) -> list[str]:
    device = AuthenticatorDevice.objects.get(user=world.owner.user, confirmed=True)
    codes = mfa.backup_codes_generate(user=world.owner.user)
    return [
        *world.tokens,
        world.invitation_secret,
        *codes,
        base64.b32encode(device.bin_key).decode(),
    ]


@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_every_page_is_hardened_and_shows_no_secret_unless_never_stored(route, acme):
    """Whoever asks: the security headers. On portal pages, none of the tenant's secrets (tokens,
    invitation link, backup codes, TOTP key) ever, and token-shaped text only if no-store."""
    secrets = _world_secrets(acme)
    path = _path(route, acme)
    askers = {"anonymous": Client()}
    if route.is_portal:
        askers["verified owner"] = verified_client(acme.owner.user)
    for who, client in askers.items():
        response = client.get(path)
        where = (who, path, response.status_code)
        _assert_hardened(response, where)
        body = body_of(response)
        shown = [s for s in secrets if s in body or s.replace("-", "") in body]
        assert not shown, (where, shown)
        if TOKEN_SHAPE.search(body):
            assert _is_no_store(response), where


# --- Pages that show a secret ---------------------------------------------------------------


def _issue(client, world):
    url = reverse("keys:issue", kwargs={"slug": world.slug})
    return client.post(url, {"name": "fresh", "expiry": "30", "scopes": ["keys:read"]})


def _service_issue(client, world):
    url = reverse("keys:service_issue", kwargs={"slug": world.slug, "sid": world.service_id.pk})
    return client.post(url, {"name": "fresh", "expiry": "30", "scopes": ["keys:read"]})


def _rotate(client, world):
    url = reverse("keys:rotate", kwargs={"slug": world.slug, "pk": world.owner_key.pk})
    return client.post(url, {"grace": "1h"})


def _regenerate_codes(client, world):
    return client.post(reverse("accounts:backup_codes_regenerate"))


def _shows_token(response) -> bool:
    found = TOKEN_SHAPE.findall(body_of(response))
    return bool(found) and all(tokens.parse(t) is not None for t in found)


def _shows_codes(response) -> bool:
    codes = response.context["codes"]
    return len(codes) == mfa.BACKUP_CODE_COUNT and all(c in body_of(response) for c in codes)


SECRET_PAGES = {
    "issue form": (lambda c, w: c.get(reverse("keys:issue", kwargs={"slug": w.slug})), None),
    "one-time page of a new key": (_issue, _shows_token),
    "service key issue form": (
        lambda c, w: c.get(
            reverse("keys:service_issue", kwargs={"slug": w.slug, "sid": w.service_id.pk})
        ),
        None,
    ),
    "one-time page of a service key": (_service_issue, _shows_token),
    "one-time page of a rotated key": (_rotate, _shows_token),
    "regenerated backup codes": (_regenerate_codes, _shows_codes),
    "enrolment of another authenticator": (
        lambda c, w: c.get(reverse("accounts:mfa_enrol")),
        lambda r: 'id="setup-key"' in body_of(r),
    ),
}


@pytest.mark.parametrize("page", list(SECRET_PAGES))
def test_pages_that_show_a_secret_are_never_stored(page, acme):
    client = verified_client(acme.owner.user)
    show, shows_secret = SECRET_PAGES[page]
    response = show(client, acme)
    assert response.status_code == 200
    if shows_secret is not None:
        assert shows_secret(response), "the page shows no secret: the check proves nothing"
    cache_control = response["Cache-Control"]
    assert "no-store" in cache_control and "private" in cache_control, cache_control


def test_first_enrolment_pages_setup_key_and_backup_codes_are_never_stored(client, acme):
    user = factories.make_user("new@acme.example", totp=False)
    factories.add_member(acme.tenant, "member", user)
    client.post(reverse("accounts:login"), {"email": user.email, "password": factories.PASSWORD})
    setup = client.get(reverse("accounts:mfa_enrol"))
    assert 'id="setup-key"' in body_of(setup) and _is_no_store(setup)
    device = AuthenticatorDevice.objects.get(user=user, confirmed=False)
    device.confirmed = True
    device.save()
    code = factories.totp_code(user)
    device.confirmed = False
    device.save()
    codes = client.post(reverse("accounts:mfa_enrol"), {"code": code})
    assert _shows_codes(codes) and _is_no_store(codes)


def test_password_reset_link_pages_are_never_stored(client, acme):
    link = client.get(urlsplit(set_password_link(acme.owner.user)).path)
    assert link.status_code == 302 and _is_no_store(link)
    form = client.get(link["Location"])
    assert "new_password1" in body_of(form) and _is_no_store(form)


# --- CSRF on every form ---------------------------------------------------------------------


def _everything(world) -> dict:
    state = tenant_state(world.tenant)
    state["users"] = list(User.objects.order_by("pk").values())
    state["devices"] = list(AuthenticatorDevice.objects.order_by("pk").values())
    state["backup codes"] = list(BackupCode.objects.order_by("pk").values())
    return state


def _csrf_clients(world) -> dict:
    owner = verified_client(world.owner.user, enforce_csrf_checks=True)
    owner.get(reverse("accounts:security"))  # a page with forms: sets the CSRF cookie
    anonymous = Client(enforce_csrf_checks=True)
    anonymous.get(reverse("accounts:login"))
    return {"verified owner": owner, "anonymous": anonymous}


@pytest.mark.parametrize("route", PORTAL_ROUTES, ids=str)
def test_every_portal_form_refuses_a_post_without_its_csrf_token(route, acme):
    path = _path(route, acme)
    clients = _csrf_clients(acme)
    before = _everything(acme)
    for who, client in clients.items():
        assert client.cookies.get(django_settings.CSRF_COOKIE_NAME), who
        refused = client.post(path, FORM_DATA)
        if who == "anonymous" and not path.startswith(OPEN_PREFIXES):
            # No view runs for a stranger: the portal sends them to the login page first.
            assert refused.status_code == 302, (who, refused.status_code)
            assert refused["Location"].startswith(reverse("accounts:login")), who
        else:
            assert refused.status_code == 403, (who, refused.status_code)
            assert CSRF_FAILED in body_of(refused), who
        assert _everything(acme) == before, who
        # Control: with its token the same POST gets past the CSRF check.
        token = client.cookies[django_settings.CSRF_COOKIE_NAME].value
        with rolled_back():
            accepted = client.post(path, FORM_DATA | {"csrfmiddlewaretoken": token})
        assert CSRF_FAILED not in body_of(accepted), who


# --- Production settings --------------------------------------------------------------------


@pytest.fixture
def production(settings, monkeypatch):
    """Apply the security settings ``config/settings.py`` derives with ``DEBUG=false``."""
    monkeypatch.setenv("DEBUG", "false")
    for name in (
        "SECURE_SSL_REDIRECT",
        "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_PRELOAD",
        "BEHIND_TLS_PROXY",
    ):
        monkeypatch.delenv(name, raising=False)
    derived = runpy.run_path(str(SETTINGS_FILE))
    names = [
        n
        for n in derived
        if n.startswith(("SECURE_", "SESSION_COOKIE_", "CSRF_COOKIE_")) or n == "X_FRAME_OPTIONS"
    ]
    settings.DEBUG = derived["DEBUG"]
    for name in names:
        setattr(settings, name, derived[name])
    return derived


def test_production_settings_are_strict(production):
    assert production["DEBUG"] is False
    assert production["SECURE_SSL_REDIRECT"] is True
    assert production["SECURE_HSTS_SECONDS"] >= 31536000
    assert production["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert production["SESSION_COOKIE_SECURE"] and production["CSRF_COOKIE_SECURE"]
    assert production["SESSION_COOKIE_HTTPONLY"] and production["CSRF_COOKIE_HTTPONLY"]
    assert production["SESSION_COOKIE_SAMESITE"] in ("Lax", "Strict")


def test_production_redirects_to_https_and_sends_hsts(production, client, acme):
    plain = client.get(reverse("accounts:login"))
    assert plain.status_code == 301 and plain["Location"].startswith("https://")
    assert "Strict-Transport-Security" not in plain  # only ever sent over HTTPS
    secure = client.get(reverse("accounts:login"), secure=True)
    assert secure.status_code == 200
    assert secure["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    _assert_hardened(secure, "login over HTTPS")
    assert client.get("/healthz").status_code == 200  # load balancer probes stay on HTTP


def _assert_secure_cookie(cookie, *, name) -> None:
    assert cookie["secure"] is True, name
    assert cookie["httponly"] is True, name
    assert cookie["samesite"] == "Lax", name


def test_production_cookies_are_secure_httponly_and_samesite_through_a_login(production, acme):
    client = Client()
    page = client.get(reverse("accounts:login"), secure=True)
    _assert_secure_cookie(page.cookies[django_settings.CSRF_COOKIE_NAME], name="csrftoken")
    user = acme.owner.user
    password = client.post(
        reverse("accounts:login"),
        {"email": user.email, "password": factories.PASSWORD},
        secure=True,
    )
    assert password.status_code == 302
    session = password.cookies[django_settings.SESSION_COOKIE_NAME]
    _assert_secure_cookie(session, name="session after the password")
    assert not session["max-age"] and not session["expires"], "the session outlives the browser"
    verified = client.post(
        reverse("accounts:mfa_verify"), {"code": factories.totp_code(user)}, secure=True
    )
    assert verified.status_code == 302
    rotated = verified.cookies[django_settings.SESSION_COOKIE_NAME]
    _assert_secure_cookie(rotated, name="session after the second factor")
    assert rotated.value != session.value
    home = client.get(reverse("accounts:tenant_home", kwargs={"slug": acme.slug}), secure=True)
    assert home.status_code == 200
