"""Issue 18's portal defects, end to end in Debian's chromium, at desktop and phone width."""

import re
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone
from playwright.sync_api import expect

import audit
from accounts.decorators import SUDO_SESSION_KEY
from audit.services import Actor
from common.request import RequestContext
from common.sessions import SessionStore
from keys.models import ApiKey
from keys.services import keys_usage_rollup
from tests import factories
from tests.browser.test_keys_flow import _log_in, _path_is

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
SHOTS = Path("/tmp/shots-p18a")
LONG_IP = "2001:db8:85a3:1234:5678:8a2e:370:7334"
TOKEN = re.compile(r"kwp_[0-9A-Za-z]{38}")


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _no_page_overflow(page) -> None:
    width = page.viewport_size["width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def _tables_fit(page) -> None:
    """No table is wider than its box (no horizontal scrolling inside .table-wrap either)."""
    overflowing = page.evaluate(
        """[...document.querySelectorAll('.table-wrap')]
             .filter(w => w.scrollWidth > w.clientWidth + 1).length"""
    )
    assert overflowing == 0


def _times_on_one_line(page) -> None:
    multi = page.evaluate(
        """[...document.querySelectorAll('table time')].filter(t => {
             const r = t.getClientRects(); return r.length > 1; }).length"""
    )
    assert multi == 0


def _api(page, base: str, token: str, path: str = "/api/v1/whoami/"):
    return page.request.get(base + path, headers={"Authorization": f"Bearer {token}"})


def _expire_sudo(user) -> None:
    """Age the sudo mark of ``user``'s sessions, as KEYWARD_SUDO_SECONDS passing would."""
    for row in SessionStore.get_model_class().objects.all():
        store = SessionStore(session_key=None)
        data = store.decode(row.session_data)
        if str(data.get("_auth_user_id")) == str(user.pk):
            data[SUDO_SESSION_KEY] = time.time() - 3600
            row.session_data = store.encode(data)
            row.save(update_fields=["session_data"])


# --- 1. Member removal ------------------------------------------------------------------------


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_removing_a_member_needs_a_confirmation_listing_their_keys(live_server, page, viewport):
    acme = factories.make_tenant("acme")
    owner = acme.memberships.get(role="owner").user
    bob = factories.add_member(acme, "member")
    key, token = factories.make_api_key(bob, name="bob's laptop", scopes=["keys:read"])
    base = live_server.url
    page.set_viewport_size(viewport)
    _log_in(page, base, owner)
    expect(page).to_have_url(_path_is("/t/acme/"))
    page.goto(base + "/t/acme/members/")
    remove = page.get_by_role("link", name=f"Remove {bob.user.email}…")
    expect(remove).to_have_count(1)  # a name per row, not one more "Remove"
    remove.click()
    # One click shows the confirmation; nothing happened yet.
    expect(page.get_by_role("heading", level=1)).to_contain_text(bob.user.email)
    expect(page.get_by_text("bob's laptop")).to_be_visible()
    assert acme.memberships.filter(pk=bob.pk).exists()
    assert _api(page, base, token).status == 200
    _no_page_overflow(page)
    _shot(page, f"1-member-remove-{viewport['width']}")
    page.get_by_role("button", name="Remove and revoke 1 key").click()
    expect(page).to_have_url(_path_is("/t/acme/members/"))
    assert not acme.memberships.filter(pk=bob.pk).exists()
    assert _api(page, base, token).status == 401


# --- 2 and 4. Usage: one story, too new to judge, narrowing after a preview -------------------


def test_a_new_key_is_too_new_to_judge_and_its_usage_adds_up(live_server, page):
    acme = factories.make_tenant("acme")
    owner = acme.memberships.get(role="owner").user
    key, token = factories.make_api_key(owner, acme, scopes=["keys:read", "members:read"])
    base = live_server.url
    for _ in range(2):
        assert _api(page, base, token, "/api/v1/keys/").status == 200
    # keys_maintain has not run: the chart still counts them, as the list below it shows them.
    page.set_viewport_size(DESKTOP)
    _log_in(page, base, owner)
    page.goto(f"{base}/t/acme/keys/{key.pk}/")
    expect(page.locator("figcaption")).to_contain_text("2 requests (0 denied)")
    expect(page.get_by_text("not used yet · too new to judge")).to_have_count(2)
    expect(page.get_by_text("not used in 90 days")).to_have_count(0)
    expect(page.get_by_role("link", name=re.compile("Narrow to the scopes"))).to_have_count(0)
    _shot(page, "4-key-too-new-1280")
    page.goto(f"{base}/t/acme/keys/review/")
    expect(page.locator("#too-new")).to_contain_text("Too new to judge: 1 active key")
    _shot(page, "4-review-too-new-1280")


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_narrowing_shows_before_and_after_and_waits_for_confirmation(live_server, page, viewport):
    acme = factories.make_tenant("acme")
    owner = acme.memberships.get(role="owner").user
    key, token = factories.make_api_key(owner, acme, scopes=["keys:read", "members:read"])
    ApiKey.objects.filter(pk=key.pk).update(created_at=timezone.now() - timedelta(days=100))
    base = live_server.url
    assert _api(page, base, token, "/api/v1/keys/").status == 200
    keys_usage_rollup(window=timedelta(0))
    page.set_viewport_size(viewport)
    _log_in(page, base, owner)
    page.goto(f"{base}/t/acme/keys/{key.pk}/")
    page.get_by_role("link", name="Narrow to the scopes used in the last 90 days…").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Narrow")
    expect(page.get_by_role("row", name=re.compile(r"members:read.*removed"))).to_be_visible()
    expect(page.get_by_role("row", name=re.compile(r"keys:read.*kept"))).to_be_visible()
    assert ApiKey.objects.get(pk=key.pk).scopes == ["keys:read", "members:read"]  # not yet
    _no_page_overflow(page)
    _shot(page, f"2-narrow-preview-{viewport['width']}")
    page.get_by_role("button", name="Remove 1 scope").click()
    expect(page.locator(".messages")).to_contain_text("narrowed to keys:read")
    assert ApiKey.objects.get(pk=key.pk).scopes == ["keys:read"]


# --- 3. Sudo running out while a form is open -------------------------------------------------


def test_a_form_posted_after_sudo_ran_out_comes_back_filled_in(live_server, page):
    acme = factories.make_tenant("acme")
    alice = factories.make_user("alice@acme.example")
    factories.add_member(acme, "member", alice)
    base = live_server.url
    page.set_viewport_size(DESKTOP)
    _log_in(page, base, alice)
    expect(page).to_have_url(_path_is("/t/acme/"))
    page.goto(base + "/t/acme/keys/new/")
    page.get_by_label("Name").fill("kept across sudo")
    page.get_by_role("radio", name=re.compile(r"^90 days")).check()
    page.get_by_role("checkbox", name=re.compile(r"^keys:read\b")).check()
    page.get_by_label("Allowed IP addresses").fill("10.0.0.0/8")
    _expire_sudo(alice)  # the form stayed open longer than KEYWARD_SUDO_SECONDS
    page.get_by_role("button", name="Generate token").click()
    expect(page).to_have_url(re.compile(r"/account/sudo/"))
    expect(page.get_by_text("what you entered is kept")).to_be_visible()
    # The login used this time step's code, and a code is accepted once: the next step's.
    page.get_by_label("Code").fill(factories.totp_code(alice, offset_steps=1))
    page.get_by_role("button", name="Verify").click()
    expect(page).to_have_url(_path_is("/t/acme/keys/new/"))
    expect(page.get_by_text("your entries are back")).to_be_visible()
    expect(page.get_by_label("Name")).to_have_value("kept across sudo")
    expect(page.get_by_role("radio", name=re.compile(r"^90 days"))).to_be_checked()
    expect(page.get_by_role("checkbox", name=re.compile(r"^keys:read\b"))).to_be_checked()
    expect(page.get_by_label("Allowed IP addresses")).to_have_value("10.0.0.0/8")
    _shot(page, "3-form-restored-1280")
    assert not ApiKey.objects.filter(name="kept across sudo").exists()
    page.get_by_role("button", name="Generate token").click()
    expect(page.locator("#token")).to_have_text(TOKEN)
    # 9. Reloading the one-time page posts the form again: a clear page, no 400, no second key.
    response = page.reload()
    assert response.status == 200
    expect(page.get_by_role("heading", name="This token was shown once")).to_be_visible()
    assert not TOKEN.search(page.content())
    assert ApiKey.objects.filter(name="kept across sudo").count() == 1
    _shot(page, "9-shown-once-1280")


# --- 5. Invitation links in e-mails -----------------------------------------------------------


def test_the_invitation_link_in_the_sent_e_mail_is_whole_and_opens(live_server, page, settings):
    acme = factories.make_tenant("acme")
    owner = acme.memberships.get(role="owner").user
    base = live_server.url
    settings.KEYWARD_BASE_URL = base
    page.set_viewport_size(DESKTOP)
    _log_in(page, base, owner)
    page.goto(base + "/t/acme/members/")
    expect(page.get_by_text("Auditor: ")).to_be_visible()  # 12: what each role may do
    _shot(page, "12-invite-roles-1280")
    page.get_by_label("E-mail").fill("newcomer.with.a.rather.long.address@acme.example")
    page.get_by_role("radio", name=re.compile(r"^Auditor")).check()
    page.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_text("Invitation sent")).to_be_visible()
    for _ in range(50):
        if mail.outbox:
            break
        time.sleep(0.1)
    raw = mail.outbox[-1].message().as_bytes().decode()
    assert "quoted-printable" not in raw and "=\n" not in raw
    link = re.search(r"(http://\S+/invite/\S+)", raw).group(1)
    page.context.clear_cookies()
    page.goto(link)
    expect(page).to_have_url(_path_is("/invite/accept/"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Acme")


# --- 8. Tables fit at 1280 px and at 390 px ----------------------------------------------------


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_members_and_audit_tables_fit_and_keep_timestamps_on_one_line(live_server, page, viewport):
    acme = factories.make_tenant("acme")
    owner = acme.memberships.get(role="owner").user
    for i in range(3):
        factories.add_member(
            acme, "member", factories.make_user(f"someone.with.a.long.name.{i}@acme.example")
        )
    key, _ = factories.make_api_key(owner, acme, scopes=["keys:read"])
    for ip in (LONG_IP, "203.0.113.250"):  # events seen from a long IPv6 address
        with transaction.atomic():
            audit.record(
                "key.new_network",
                actor=Actor.system("keys_maintain"),
                tenant=acme,
                target=key,
                context=RequestContext(ip=ip),
                metadata={"network": ip, "first_seen_at": timezone.now().isoformat()},
            )
    base = live_server.url
    page.set_viewport_size(viewport)
    _log_in(page, base, owner)
    for path, name in (("/t/acme/members/", "members"), ("/t/acme/audit/", "audit")):
        page.goto(base + path)
        _no_page_overflow(page)
        _tables_fit(page)
        _times_on_one_line(page)
        _shot(page, f"8-{name}-{viewport['width']}")


# --- 9 and 12. Focus ring, favicon, API docs link, the issue form ------------------------------


def _contrast(rgb_a: str, rgb_b: str) -> float:
    def luminance(rgb: str) -> float:
        values = [int(v) / 255 for v in re.findall(r"\d+", rgb)[:3]]
        lin = [v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4 for v in values]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    high, low = sorted((luminance(rgb_a), luminance(rgb_b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_focus_ring_contrast_favicon_and_api_docs_link(live_server, page):
    acme = factories.make_tenant("acme")
    owner = acme.memberships.get(role="owner").user
    base = live_server.url
    icon = page.request.get(base + "/favicon.ico")
    assert icon.status == 200 and icon.body()[:4] == b"\x00\x00\x01\x00"
    page.set_viewport_size(DESKTOP)
    _log_in(page, base, owner)
    page.goto(base + "/t/acme/")
    page.keyboard.press("Tab")  # the skip link, then the brand
    page.keyboard.press("Tab")
    ring, background = page.evaluate(
        """[getComputedStyle(document.activeElement).outlineColor,
            getComputedStyle(document.body).backgroundColor]"""
    )
    assert _contrast(ring, background) >= 3
    assert _contrast(ring, "rgb(255, 255, 255)") >= 3
    page.get_by_role("link", name="API docs").click()
    expect(page).to_have_url(_path_is("/api/docs/"))


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_issue_form_shows_expiry_dates_and_the_date_field_only_for_a_custom_date(
    live_server, page, viewport
):
    acme = factories.make_tenant("acme")
    alice = factories.make_user("alice@acme.example")
    factories.add_member(acme, "member", alice)
    base = live_server.url
    page.set_viewport_size(viewport)
    _log_in(page, base, alice)
    expect(page).to_have_url(_path_is("/t/acme/"))
    page.goto(base + "/t/acme/keys/new/")
    in_30_days = (timezone.now() + timedelta(days=30)).strftime("%Y-%m-%d")
    expect(
        page.get_by_role("radio", name=re.compile(rf"^30 days.*until {in_30_days}"))
    ).to_be_checked()
    date_field = page.get_by_label("Custom expiry date")
    expect(date_field).to_be_hidden()
    page.get_by_role("radio", name="Custom date").check()
    expect(date_field).to_be_visible()
    _no_page_overflow(page)
    _shot(page, f"12-issue-form-{viewport['width']}")
    page.get_by_role("radio", name=re.compile(r"^7 days")).check()
    expect(date_field).to_be_hidden()


# --- 7. A key sent in a URL -------------------------------------------------------------------


def test_a_key_sent_in_a_url_is_told_it_was_revoked(live_server, page):
    acme = factories.make_tenant("acme")
    owner = acme.memberships.get(role="owner").user
    key, token = factories.make_api_key(owner, acme)
    response = page.request.get(f"{live_server.url}/api/v1/whoami/?access_token={token}")
    assert response.status == 400
    detail = response.json()["detail"]
    assert "was revoked under your tenant's leak policy" in detail and "revoke it" not in detail
    key.refresh_from_db()
    assert key.revoked_at is not None
