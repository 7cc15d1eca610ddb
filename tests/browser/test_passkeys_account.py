"""End to end: the account security page in chromium. Backup codes copied (clipboard) and
downloaded one per line, the setup key copied without spaces, a session ended from another
browser, the security log; screenshots at desktop and phone width."""

import re

import pytest
from playwright.sync_api import expect

from tests import factories
from tests.browser.test_login_flow import _totp_now
from tests.browser.test_passkeys import _log_in, _log_in_with_code, _path_is, _shoot

pytestmark = pytest.mark.browser


def test_codes_and_setup_key_copy_and_download_one_per_line(live_server, browser):
    context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    try:
        dana = factories.make_user("dana@acme.example", totp=False)
        factories.add_member(factories.make_tenant("acme"), "member", dana)
        page.goto(live_server.url + "/account/login/")
        page.get_by_label("E-mail").fill(dana.email)
        page.get_by_label("Password").fill(factories.PASSWORD)
        page.get_by_role("button", name="Continue").click()
        expect(page).to_have_url(_path_is("/account/mfa/enrol/"))

        shown = page.locator("#setup-key").inner_text()
        page.get_by_role("button", name="Copy setup key").click()
        expect(page.get_by_role("button", name="Copied")).to_be_visible()
        assert page.evaluate("navigator.clipboard.readText()") == shown.replace(" ", "")
        _shoot(page, "enrol-setup-key")

        page.get_by_label("Code from the app").fill(_totp_now(shown))
        page.get_by_role("button", name="Confirm").click()
        expect(page.get_by_role("heading", name="Your backup codes")).to_be_visible()
        codes = [c.strip() for c in page.locator("#backup-codes li").all_inner_texts()]
        assert len(codes) == 10
        _shoot(page, "backup-codes")

        page.get_by_role("button", name="Copy codes").click()
        expect(page.get_by_role("button", name="Copied")).to_be_visible()
        assert page.evaluate("navigator.clipboard.readText()").splitlines() == codes

        with page.expect_download() as download:
            page.get_by_role("link", name="Download (.txt)").click()
        assert download.value.suggested_filename == "keyward-backup-codes.txt"
        with open(download.value.path(), encoding="utf-8") as saved:
            assert saved.read() == "".join(f"{code}\n" for code in codes)
    finally:
        context.close()


def test_a_session_ended_from_the_security_page_is_signed_out(live_server, browser, page):
    acme = factories.make_tenant("acme")
    erin = factories.make_user("erin@acme.example")
    factories.add_member(acme, "member", erin)
    base = live_server.url
    other_context = browser.new_context(
        user_agent="Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Safari/604.1"
    )
    phone = other_context.new_page()
    try:
        _log_in_with_code(phone, base, erin)
        _log_in(page, base, erin.email)  # a second browser: the next step's code
        page.get_by_label("Code").fill(factories.totp_code(erin, offset_steps=1))
        page.get_by_role("button", name="Verify").click()
        expect(page).to_have_url(_path_is("/t/acme/"))
        page.goto(base + "/account/security/")
        sessions = page.locator("#sessions li")
        expect(sessions).to_have_count(2)
        expect(page.locator("#sessions")).to_contain_text("Safari on iPhone")
        expect(page.locator("#sessions")).to_contain_text("This browser")
        _shoot(page, "security-page")
        page.get_by_role("button", name=re.compile(r"^End session Safari on iPhone")).click()
        expect(page.get_by_text("The session has ended")).to_be_visible()
        expect(sessions).to_have_count(1)

        phone.goto(base + "/t/acme/")
        expect(phone).to_have_url(_path_is("/account/login/"))

        page.get_by_role("link", name="Your security log").click()
        expect(page.get_by_role("heading", name="Your security log")).to_be_visible()
        log = page.locator("#security-log")
        expect(log).to_contain_text("Session ended by its owner")
        expect(log).to_contain_text("Second factor verified")
        _shoot(page, "security-log")
    finally:
        other_context.close()
