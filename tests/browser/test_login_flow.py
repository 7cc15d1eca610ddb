"""End to end: password, mandatory TOTP enrolment, backup codes, tenant isolation, admin door."""

import base64
import contextlib
import re

import pytest
from django_otp.oath import TOTP
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from tests import factories

pytestmark = pytest.mark.browser

INVALID_CODE = "That code is not valid."


def _totp_now(setup_key: str) -> str:
    """Return the current code for a setup key as the enrolment page shows it."""
    totp = TOTP(base64.b32decode(setup_key.replace(" ", "")), step=30, t0=0, digits=6)
    return f"{totp.token():06d}"


def _log_in_with_password(page, base_url: str, email: str):
    page.goto(base_url + "/account/login/")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Continue").click()


def _path_is(path: str):
    return re.compile(rf"^https?://[^/]+{re.escape(path)}(\?.*)?$")


def test_first_login_enrols_totp_and_a_backup_code_opens_the_next_session(
    live_server, page, screenshot
):
    acme = factories.make_tenant("acme")
    factories.make_tenant("globex")
    alice = factories.make_user("alice@acme.example", totp=False)
    factories.add_member(acme, "member", alice)
    base = live_server.url

    # Password first: someone without an authenticator is sent to enrolment.
    _log_in_with_password(page, base, alice.email)
    expect(page).to_have_url(_path_is("/account/mfa/enrol/"))
    expect(page.get_by_role("heading", name="Set up two-factor authentication")).to_be_visible()
    expect(page.get_by_role("img", name="QR code for your authenticator app")).to_be_visible()
    screenshot(page, "1-enrol")
    enrol_code = _totp_now(page.locator("#setup-key").inner_text())
    page.get_by_label("Code from the app").fill(enrol_code)
    page.get_by_role("button", name="Confirm").click()

    # The ten backup codes are shown once.
    expect(page.get_by_role("heading", name="Your backup codes")).to_be_visible()
    codes = page.locator("#backup-codes li").all_inner_texts()
    assert len(codes) == 10
    assert len(set(codes)) == 10
    assert all(re.fullmatch(r"[a-z2-9]{5}-[a-z2-9]{5}", c.strip()) for c in codes)
    backup_code = codes[3].strip()
    screenshot(page, "2-backup-codes")
    page.get_by_role("link", name="I have saved them, continue").click()

    # One membership: straight to the tenant.
    expect(page).to_have_url(_path_is("/t/acme/"))
    expect(page.get_by_role("heading", name="Acme", level=1)).to_be_visible()
    screenshot(page, "3-tenant")

    # The codes cannot be seen again. Back: the page was a no-store answer to a POST, so
    # chromium offers to resubmit the form (ERR_CACHE_MISS) instead of showing it from a cache.
    with contextlib.suppress(PlaywrightError):
        page.go_back()
    expect(page).not_to_have_url(_path_is("/t/acme/"))
    page.wait_for_load_state()
    expect(page.locator("body")).not_to_contain_text(backup_code)

    # Enrolment again: with a fresh verification it offers another authenticator, never codes.
    page.goto(base + "/account/mfa/enrol/")
    expect(page.get_by_role("heading", name="Add an authenticator")).to_be_visible()
    expect(page.get_by_role("heading", name="Your backup codes")).to_have_count(0)
    expect(page.locator("#backup-codes")).to_have_count(0)
    assert backup_code not in page.content()

    # Log out, log in again: now a code is asked for.
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(_path_is("/account/login/"))
    expect(page.get_by_text("You have logged out.")).to_be_visible()
    _log_in_with_password(page, base, alice.email)
    expect(page).to_have_url(_path_is("/account/mfa/verify/"))
    expect(page.get_by_role("heading", name="Two-factor authentication")).to_be_visible()

    # SECURITY: the code used for enrolment cannot be replayed.
    page.get_by_label("Code").fill(enrol_code)
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_text(INVALID_CODE)).to_be_visible()
    expect(page).to_have_url(_path_is("/account/mfa/verify/"))

    # A refused app code does not hold up a backup code typed right after it.
    page.get_by_label("Code").fill(backup_code)
    page.get_by_role("button", name="Verify").click()
    expect(page).to_have_url(_path_is("/t/acme/"))
    expect(page.get_by_role("heading", name="Acme", level=1)).to_be_visible()

    # Another tenant's page is a 404 that names nothing of it.
    response = page.goto(base + "/t/globex/")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    assert "globex" not in page.content().lower()


def test_admin_needs_a_verified_second_factor_even_for_a_superuser(live_server, page):
    operator = factories.make_user("ops@keyward.example")
    operator.is_staff = operator.is_superuser = True
    operator.save()
    base = live_server.url

    _log_in_with_password(page, base, operator.email)
    expect(page).to_have_url(_path_is("/account/mfa/verify/"))

    # Password alone: the admin sends the operator to the portal's login (or code) page.
    page.goto(base + "/admin/")
    expect(page).to_have_url(
        re.compile(r"^https?://[^/]+/account/(login|mfa/verify)/\?next=(%2F|/)admin(%2F|/)$")
    )
    expect(page.get_by_text("Keyward operations")).to_have_count(0)

    if "/account/login/" in page.url:
        page.get_by_label("E-mail").fill(operator.email)
        page.get_by_label("Password").fill(factories.PASSWORD)
        page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(_path_is("/account/mfa/verify/"))
    page.get_by_label("Code").fill(factories.totp_code(operator))
    page.get_by_role("button", name="Verify").click()

    expect(page).to_have_url(_path_is("/admin/"))
    expect(page.get_by_text("Keyward operations")).to_be_visible()


def test_admin_turns_away_a_verified_member_who_is_not_staff(live_server, page):
    acme = factories.make_tenant("acme")
    bob = factories.make_user("bob@acme.example")
    factories.add_member(acme, "admin", bob)
    base = live_server.url
    _log_in_with_password(page, base, bob.email)
    page.get_by_label("Code").fill(factories.totp_code(bob))
    page.get_by_role("button", name="Verify").click()
    expect(page).to_have_url(_path_is("/t/acme/"))

    response = page.goto(base + "/admin/")

    assert response is not None and response.status in (200, 403)
    assert "Keyward operations" not in page.content()
