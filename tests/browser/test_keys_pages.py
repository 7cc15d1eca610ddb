"""End to end, at desktop and phone width (issue 18, items 10, 11, 13, 14, 15): the keys list's
search, tabs, relative last use and bulk revoke; editing a key; rotation that finishes with
the new key's first use; a key waiting for approval; the CSV inventory."""

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import KeyApproval
from keys.models import ApiKey
from tests import factories
from tests.browser.test_keys_flow import _log_in, _path_is, _whoami

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/shots-p18b")
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
TOKEN = re.compile(r"kwp_[0-9A-Za-z]{38}")


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _fits(page, width: int) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def test_keys_list_search_tabs_last_used_and_bulk_revoke(live_server, page):
    acme = factories.make_tenant("acme")
    owner = acme.memberships.get(role="owner").user
    bob = factories.add_member(acme, "member")
    deploy, deploy_token = factories.make_api_key(bob, name="deploy bot", scopes=["keys:read"])
    laptop, laptop_token = factories.make_api_key(bob, name="laptop", scopes=["members:read"])
    spare, _ = factories.make_api_key(owner, acme, name="spare")
    used = timezone.now() - timedelta(hours=3, minutes=10)
    ApiKey.objects.filter(pk=deploy.pk).update(last_used_at=used, last_used_ip="192.0.2.10")
    base = live_server.url
    page.set_viewport_size(DESKTOP)
    _log_in(page, base, owner)
    expect(page).to_have_url(_path_is("/t/acme/"))

    page.goto(base + "/t/acme/keys/")
    expect(page.get_by_role("heading", level=1)).to_have_text("API keys of Acme")
    last_used = page.get_by_role("row", name=re.compile("deploy bot")).locator("time").nth(1)
    expect(last_used).to_have_text("3 hours ago")
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d", last_used.get_attribute("title"))
    _fits(page, DESKTOP["width"])
    _shot(page, "list-desktop")

    page.get_by_role("searchbox", name="Search").fill("deploy")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_role("row", name=re.compile("laptop"))).to_have_count(0)
    expect(page.get_by_role("row", name=re.compile("deploy bot"))).to_have_count(1)
    page.get_by_role("link", name="Clear").click()
    page.get_by_label("Scope").select_option("members:read")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_role("row", name=re.compile("laptop"))).to_have_count(1)
    expect(page.get_by_role("row", name=re.compile("deploy bot"))).to_have_count(0)
    page.get_by_role("link", name="Clear").click()

    # Bulk revoke: choose two keys, confirm on a page that lists them, both stop at once.
    page.get_by_role("checkbox", name=re.compile(r"Select deploy bot")).check()
    page.get_by_role("checkbox", name=re.compile(r"Select laptop")).check()
    page.get_by_role("button", name="Revoke selected…").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Revoke 2 keys?")
    expect(page.get_by_role("row", name=re.compile("deploy bot"))).to_have_count(1)
    expect(page.get_by_role("row", name=re.compile("spare"))).to_have_count(0)
    page.get_by_label("Reason").fill("bob left the project")
    _shot(page, "bulk-confirm-desktop")
    page.get_by_role("button", name="Revoke 2 keys").click()
    expect(page).to_have_url(_path_is("/t/acme/keys/"))
    expect(page.get_by_role("status")).to_contain_text("2 key(s) revoked.")
    assert _whoami(page, base, deploy_token).status == 401
    assert _whoami(page, base, laptop_token).status == 401
    spare.refresh_from_db()
    assert spare.revoked_at is None

    page.get_by_role("link", name="Inactive").click()
    expect(page.get_by_role("row", name=re.compile("deploy bot"))).to_contain_text("revoked")
    expect(page.get_by_role("row", name=re.compile("spare"))).to_have_count(0)

    page.set_viewport_size(PHONE)
    page.goto(base + "/t/acme/keys/")
    expect(page.get_by_role("row", name=re.compile("spare"))).to_be_visible()
    _fits(page, PHONE["width"])
    _shot(page, "list-phone")

    # The inventory: a CSV download of every key.
    page.set_viewport_size(DESKTOP)
    with page.expect_download() as download:
        page.get_by_role("button", name="Export all keys (CSV)").click()
    text = Path(download.value.path()).read_text()
    assert text.splitlines()[0].startswith("id,name,hint,owner,kind,scopes")
    assert "deploy bot" in text and "revoked" in text and deploy_token not in text


def test_edit_a_key_narrow_at_once_on_a_phone(live_server, page):
    acme = factories.make_tenant("acme")
    alice = factories.add_member(acme, "member")
    key, token = factories.make_api_key(
        alice, name="ci", scopes=["keys:read", "members:read"], allowed_ips=["127.0.0.0/8"]
    )
    base = live_server.url
    page.set_viewport_size(PHONE)
    _log_in(page, base, alice.user)
    expect(page).to_have_url(_path_is("/t/acme/"))
    page.goto(base + f"/t/acme/keys/{key.pk}/")
    page.get_by_role("link", name="Edit", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Edit key “ci”")
    page.get_by_label("Name").fill("ci runner")
    page.get_by_label("Description").fill("GitHub Actions in the api repo")
    page.get_by_role("checkbox", name=re.compile(r"^members:read\b")).uncheck()
    page.get_by_label("Request rate of this key").fill("120/min")
    _fits(page, PHONE["width"])
    _shot(page, "edit-phone")
    page.get_by_role("button", name="Save changes").click()
    expect(page).to_have_url(_path_is(f"/t/acme/keys/{key.pk}/"))
    expect(page.get_by_role("status")).to_contain_text("Key “ci runner” saved.")
    expect(page.locator("dl.facts")).to_contain_text("GitHub Actions in the api repo")
    expect(page.locator("dl.facts")).to_contain_text("120/min")
    key.refresh_from_db()
    assert key.scopes == ["keys:read"] and key.rate == "120/min"
    response = _whoami(page, base, token)
    assert response.status == 200 and response.json()["key"]["scopes"] == ["keys:read"]
    page.set_viewport_size(DESKTOP)
    page.goto(base + f"/t/acme/keys/{key.pk}/edit/")
    _shot(page, "edit-desktop")


def test_rotation_until_the_new_key_is_first_used(live_server, page):
    acme = factories.make_tenant("acme")
    alice = factories.add_member(acme, "member")
    key, old_token = factories.make_api_key(alice, name="deploy")
    base = live_server.url
    page.set_viewport_size(DESKTOP)
    _log_in(page, base, alice.user)
    expect(page).to_have_url(_path_is("/t/acme/"))
    page.goto(base + f"/t/acme/keys/{key.pk}/rotate/")
    page.get_by_role("radio", name=re.compile("Until the new key is first used")).check()
    _shot(page, "rotate-first-use")
    page.get_by_role("button", name=re.compile("Rotate")).click()
    new_token = page.locator("#token").inner_text().strip()
    assert TOKEN.fullmatch(new_token)
    assert _whoami(page, base, old_token).status == 200  # still in grace
    assert _whoami(page, base, old_token).status == 200
    assert _whoami(page, base, new_token).status == 200  # first use: the old one retires
    assert _whoami(page, base, old_token).status == 401
    key.refresh_from_db()
    assert key.revoked_reason == "rotated_successor_used"


def test_a_key_waiting_for_approval_then_approved_by_someone_else(live_server, browser, page):
    acme = factories.make_tenant("acme")
    acme.key_approval = KeyApproval.ALL
    acme.save()
    admin = factories.add_member(acme, "admin")
    base = live_server.url
    page.set_viewport_size(PHONE)
    _log_in(page, base, admin.user)
    expect(page).to_have_url(_path_is("/t/acme/"))
    page.goto(base + "/t/acme/keys/new/")
    page.get_by_label("Name").fill("reporting")
    page.get_by_role("checkbox", name=re.compile(r"^keys:read\b")).check()
    page.get_by_role("button", name=re.compile("Generate")).click()
    expect(page.locator("#pending-approval")).to_contain_text("waits for approval")
    token = page.locator("#token").inner_text().strip()
    _shot(page, "pending-created-phone")
    response = _whoami(page, base, token)
    assert response.status == 401 and response.json()["code"] == "pending_approval"
    # The requester sees it in the queue but cannot decide on it.
    page.goto(base + "/t/acme/keys/approvals/")
    expect(page.get_by_role("row", name=re.compile("reporting"))).to_contain_text(
        "someone else decides"
    )
    _fits(page, PHONE["width"])

    owner = acme.memberships.get(role="owner").user
    context = browser.new_context(viewport=DESKTOP)
    other = context.new_page()
    try:
        _log_in(other, base, owner)
        expect(other).to_have_url(_path_is("/t/acme/"))
        other.goto(base + "/t/acme/keys/")
        other.get_by_role("link", name=re.compile("waiting for approval")).click()
        _shot(other, "approvals-desktop")
        other.get_by_role("link", name=re.compile("Review reporting")).click()
        other.get_by_role("button", name="Approve").click()
        expect(other.get_by_text("Give a reason")).to_be_visible()  # a reason is required
        other.get_by_label("Reason").fill("read-only reporting is fine")
        _shot(other, "decide-desktop")
        other.get_by_role("button", name="Approve").click()
        expect(other.get_by_role("status")).to_contain_text("approved")
    finally:
        context.close()
    assert _whoami(page, base, token).status == 200
