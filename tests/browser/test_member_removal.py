"""End to end: an owner removes a member after a confirmation that lists the tokens it revokes,
on a phone-sized screen; the removed person's token stops working."""

import re

import pytest
from playwright.sync_api import expect

from keys.models import ApiKey
from tests import factories
from tests.browser.test_keys_flow import _log_in, _path_is, _whoami

pytestmark = pytest.mark.browser


def test_removing_a_member_confirms_lists_and_revokes_their_tokens(live_server, page, screenshot):
    acme = factories.make_tenant("acme")
    owner = acme.memberships.get(role="owner").user
    bob = factories.add_member(acme, "member")
    key, token = factories.make_api_key(bob, name="bob's laptop", scopes=["keys:read"])
    base = live_server.url
    _log_in(page, base, owner)
    expect(page).to_have_url(_path_is("/t/acme/"))
    assert _whoami(page, base, token).status == 200

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(base + "/t/acme/members/")
    page.get_by_role("link", name=re.compile(rf"Remove.*{re.escape(bob.user.email)}")).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(bob.user.email)
    expect(page.get_by_text("bob's laptop")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing overflows
    screenshot(page, "member-remove-confirm-phone")

    page.get_by_role("button", name=re.compile(r"Remove and revoke 1 key")).click()
    expect(page).to_have_url(_path_is("/t/acme/members/"))
    expect(page.get_by_role("row", name=re.compile(re.escape(bob.user.email)))).to_have_count(0)
    key.refresh_from_db()
    assert key.revoked_at is not None and key.revoked_reason == "membership removed"
    assert _whoami(page, base, token).status == 401
    assert not ApiKey.objects.filter(user=bob.user, revoked_at=None).exists()
