"""End to end: a personal access token issued in the portal, copied, used on the API, revoked.

And a token is only ever an API credential: it is no password and opens no portal session.
"""

import contextlib
import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from keys.models import ApiKey
from tests import factories

pytestmark = pytest.mark.browser

KEY_NAME = "CI deploy"
REVOKE_REASON = "replaced by a service key"
TOKEN_PATTERN = re.compile(r"kwp_[0-9A-Za-z]{38}")
INVALID_LOGIN = "E-mail or password is incorrect."


def _path_is(path: str):
    return re.compile(rf"^https?://[^/]+{re.escape(path)}(\?.*)?$")


def _log_in(page, base_url: str, user):
    """Password, then the current TOTP code: the session ends verified (and fresh for sudo)."""
    page.goto(base_url + "/account/login/")
    page.get_by_label("E-mail").fill(user.email)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(_path_is("/account/mfa/verify/"))
    page.get_by_label("Code").fill(factories.totp_code(user))
    page.get_by_role("button", name="Verify").click()


def _whoami(page, base_url: str, token: str):
    # page.request shares the context's cookies: a logged-in session rides along, and must not
    # matter to the API (Bearer keys only).
    return page.request.get(
        base_url + "/api/v1/whoami/", headers={"Authorization": f"Bearer {token}"}
    )


def test_issue_copy_use_and_revoke_a_personal_access_token(live_server, page, screenshot):
    acme = factories.make_tenant("acme")
    alice = factories.make_user("alice@acme.example")
    factories.add_member(acme, "member", alice)
    base = live_server.url
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)

    _log_in(page, base, alice)
    expect(page).to_have_url(_path_is("/t/acme/"))

    # The tenant's API keys page: no token yet.
    page.get_by_role("link", name=re.compile(r"^API keys")).click()
    expect(page).to_have_url(_path_is("/t/acme/keys/"))
    expect(page.get_by_role("heading", name="Your personal access tokens")).to_be_visible()
    expect(page.get_by_text("You have no personal access tokens yet.")).to_be_visible()

    # Generate one: a name, an expiry, one scope. The fresh TOTP verification covers sudo.
    page.get_by_role("link", name="Generate new token").click()
    expect(page).to_have_url(_path_is("/t/acme/keys/new/"))
    expect(page.get_by_role("heading", name="Generate a new personal access token")).to_be_visible()
    page.get_by_label("Name").fill(KEY_NAME)
    # Not the tenant default (30 days); not 7 days either, which reads "expires soon" from birth.
    page.get_by_role("radio", name=re.compile(r"^90 days: until ")).check()
    page.get_by_role("checkbox", name=re.compile(r"^keys:read\b")).check()
    screenshot(page, "1-issue-form")
    issued_at = datetime.now(UTC)
    page.get_by_role("button", name="Generate token").click()

    # The one-time page shows the token once; the Copy button puts it on the clipboard.
    expect(page.get_by_role("heading", name=f"Your new token “{KEY_NAME}”")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("Make sure to copy your token now.")
    expect(page.locator("#token")).to_have_text(TOKEN_PATTERN)
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    expect(page.locator("#copy-status")).to_have_text("Copied to clipboard")
    # Headless chromium grants the clipboard to localhost (a secure context): read it back.
    token = page.evaluate("navigator.clipboard.readText()")
    assert TOKEN_PATTERN.fullmatch(token), "the clipboard does not hold a token"
    assert token == page.locator("#token").inner_text().strip()
    hint = f"kwp_…{token[-4:]}"
    screenshot(page, "2-one-time-page")

    # The copied token works on the API, and whoami names its key.
    response = _whoami(page, base, token)
    assert response.status == 200, response.text()
    body = response.json()
    assert body["key"]["name"] == KEY_NAME
    assert body["key"]["hint"] == hint
    assert body["key"]["scopes"] == ["keys:read"]
    assert body["tenant"] == "acme"
    assert body["role"] == "member"
    expires_at = datetime.fromisoformat(body["key"]["expires_at"])
    assert abs(expires_at - (issued_at + timedelta(days=90))) < timedelta(minutes=1)
    assert body["principal"] == {"kind": "user", "id": alice.pk, "label": alice.email}
    assert token not in response.text()
    key_id = body["key"]["id"]
    detail = f"/t/acme/keys/{key_id}/"

    # "I have copied it": the key's page shows only the hint, never the token.
    page.get_by_role("link", name="I have copied it: view the key").click()
    expect(page).to_have_url(_path_is(detail))
    expect(page.get_by_role("heading", name=KEY_NAME, level=1)).to_contain_text("active")
    expect(page.locator("dl.facts")).to_contain_text(hint)
    assert token not in page.content()
    screenshot(page, "3-detail")

    # Back: the one-time page was a no-store answer to a POST, so chromium has no copy of it
    # (ERR_CACHE_MISS, an error page) instead of showing the token again.
    with contextlib.suppress(PlaywrightError):
        page.go_back()
    expect(page).not_to_have_url(_path_is(detail))
    page.wait_for_load_state()
    expect(page.locator("body")).not_to_contain_text(token)

    # Reload: headless chromium resubmits the POST without asking. The server must not mint a
    # second token (nor show one): it answers that the token was shown once (issue 18).
    resubmitted = []

    def record_issue_response(response):
        if "/keys/new/" in response.url:
            resubmitted.append((response.request.method, response.status))

    page.on("response", record_issue_response)
    with contextlib.suppress(PlaywrightError):
        page.reload()
    expect(page).to_have_url(_path_is("/t/acme/keys/new/"))
    expect(page.get_by_role("heading", name="This token was shown once")).to_be_visible()
    assert resubmitted == [("POST", 200)]
    assert token not in page.content()
    assert ApiKey.objects.filter(user=alice).count() == 1
    screenshot(page, "4-reload-resubmitted")

    # Revoke through the portal: the key's page, Revoke, a reason, confirm.
    page.goto(base + detail)
    assert token not in page.content()
    page.get_by_role("link", name="Revoke", exact=True).click()
    expect(page).to_have_url(_path_is(f"{detail}revoke/"))
    expect(page.get_by_role("heading", name=f"Revoke “{KEY_NAME}”?")).to_be_visible()
    page.get_by_label("Reason").fill(REVOKE_REASON)
    screenshot(page, "5-revoke-confirm")
    page.get_by_role("button", name="Revoke key").click()

    expect(page).to_have_url(_path_is(detail))
    expect(page.get_by_role("status")).to_contain_text(f"Key “{KEY_NAME}” ({hint}) revoked.")
    expect(page.get_by_role("heading", name=KEY_NAME, level=1)).to_contain_text("revoked")
    expect(page.locator("dl.facts")).to_contain_text(f"by {alice.email}: {REVOKE_REASON}")
    expect(page.get_by_role("link", name="Revoke", exact=True)).to_have_count(0)
    expect(page.get_by_role("link", name="Rotate", exact=True)).to_have_count(0)
    assert token not in page.content()
    screenshot(page, "6-revoked")

    # The revoked token is refused at once, with the RFC 6750 challenge.
    response = _whoami(page, base, token)
    assert response.status == 401, response.text()
    assert "invalid_token" in response.headers["www-authenticate"]
    assert response.json()["code"] == "invalid_token"


def test_a_token_is_no_password_and_opens_no_portal_session(live_server, page, screenshot):
    acme = factories.make_tenant("acme")
    alice = factories.make_user("alice@acme.example")
    membership = factories.add_member(acme, "member", alice)
    # Issued through key_issue, the service behind the portal's issue form (same token format).
    _, token = factories.make_api_key(membership, name="laptop scripts")
    base = live_server.url

    # The token is live: the API accepts it.
    assert _whoami(page, base, token).status == 200

    # As a password on the login form: refused, no session, no second-factor step.
    page.goto(base + "/account/login/")
    page.get_by_label("E-mail").fill(alice.email)
    page.get_by_label("Password").fill(token)
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_text(INVALID_LOGIN)).to_be_visible()
    expect(page).to_have_url(_path_is("/account/login/"))
    assert token not in page.content()  # the password field is not echoed back
    screenshot(page, "1-login-refused")

    # As a Bearer header on a portal page: not authenticated, sent to the login page.
    keys_page = base + "/t/acme/keys/"
    response = page.request.get(
        keys_page, headers={"Authorization": f"Bearer {token}"}, max_redirects=0
    )
    assert response.status == 302, response.status
    assert re.match(r"^(https?://[^/]+)?/account/login/\?next=", response.headers["location"])

    # The same in the browser, with the header on every request it makes.
    page.set_extra_http_headers({"Authorization": f"Bearer {token}"})
    page.goto(keys_page)
    expect(page).to_have_url(
        re.compile(r"^https?://[^/]+/account/login/\?next=(%2F|/)t(%2F|/)acme(%2F|/)keys(%2F|/)$")
    )
    expect(page.get_by_role("heading", name="Log in to Keyward")).to_be_visible()
    expect(page.get_by_text("Your personal access tokens")).to_have_count(0)
    assert "laptop scripts" not in page.content()
    screenshot(page, "2-bearer-on-portal")
