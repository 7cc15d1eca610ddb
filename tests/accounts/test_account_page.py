"""The account security page: sessions (listed, ended), backup codes left, regenerated,
copied and downloaded one per line, and the person's own security log."""

import re
from datetime import timedelta
from urllib.parse import unquote

import pytest
from django.contrib.sessions.models import Session
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts import mfa, selectors
from accounts.devices import FREE_FAILURES
from accounts.models import AuthenticatorDevice, BackupCodeDevice, UserSession
from accounts.services.sessions import REF_SESSION_KEY, device_label
from accounts.signals import KEY_MAIL_SUBJECT
from audit.models import AuditEvent
from common.sessions import stored_key
from tests import factories

pytestmark = pytest.mark.django_db

FIREFOX_MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:128.0) Gecko/20100101 Firefox/128.0"
CHROME_ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Mobile Safari/537.36"
)


_logins: dict[int, int] = {}


@pytest.fixture(autouse=True)
def _fresh_codes():
    _logins.clear()


def _signed_in(user, agent: str = FIREFOX_MAC, ip: str = "203.0.113.7") -> Client:
    """A browser through the real login: password, then a code."""
    client = Client(HTTP_USER_AGENT=agent, REMOTE_ADDR=ip)
    response = client.post("/account/login/", {"email": user.email, "password": factories.PASSWORD})
    assert response.status_code == 302
    # A code is accepted once: each login after the first takes the next step (the device
    # follows the drift of the last code it accepted, and the factory's code does too).
    step = 1 if user.pk in _logins else 0
    _logins[user.pk] = step
    response = client.post("/account/mfa/verify/", {"code": factories.totp_code(user, step)})
    assert response.status_code == 302, response.content[:300]
    return client


def test_sessions_are_listed_with_device_address_and_the_current_one(owner):
    laptop = _signed_in(owner)
    _signed_in(owner, CHROME_ANDROID, "198.51.100.4")
    html = laptop.get(reverse("accounts:security")).content.decode()
    assert "Firefox on macOS" in html and "Chrome on Android" in html
    assert "203.0.113.7" in html and "198.51.100.4" in html
    assert html.count("This browser") == 1
    row = UserSession.objects.get(pk=laptop.session[REF_SESSION_KEY])
    # The row follows the key the login rotated; only a digest of it is kept.
    assert row.stored_key == stored_key(laptop.session.session_key)
    assert laptop.session.session_key not in str(list(UserSession.objects.values()))


def test_ending_a_session_signs_that_browser_out_and_is_audited(owner):
    laptop, phone = _signed_in(owner), _signed_in(owner, CHROME_ANDROID)
    other = phone.session[REF_SESSION_KEY]
    response = laptop.post(reverse("accounts:session_end", kwargs={"pk": other}))
    assert response.status_code == 302
    assert not Session.objects.filter(session_key=stored_key(phone.session.session_key)).exists()
    response = phone.get(reverse("accounts:security"))
    assert response.status_code == 302 and response.url.startswith("/account/login/")
    [event] = AuditEvent.objects.filter(action="auth.session_ended")
    assert event.metadata["device"] == "Chrome on Android"
    assert laptop.get(reverse("accounts:security")).status_code == 200


def test_end_all_other_sessions_keeps_this_one(owner):
    here = _signed_in(owner)
    others = [_signed_in(owner, CHROME_ANDROID), _signed_in(owner)]
    response = here.post(reverse("accounts:session_end_others"))
    assert response.status_code == 302
    for client in others:
        assert client.get(reverse("accounts:security")).status_code == 302
    assert here.get(reverse("accounts:security")).status_code == 200
    assert AuditEvent.objects.filter(action="auth.session_ended").count() == 2
    assert UserSession.objects.filter(user=owner).count() == 1


def test_another_persons_session_or_ones_own_current_one_cannot_be_ended(owner, member):
    mine = _signed_in(owner)
    theirs = _signed_in(member.user)
    for pk in (theirs.session[REF_SESSION_KEY], mine.session[REF_SESSION_KEY], 999999):
        assert mine.post(reverse("accounts:session_end", kwargs={"pk": pk})).status_code == 404
    assert theirs.get(reverse("accounts:security")).status_code == 200
    assert not AuditEvent.objects.filter(action="auth.session_ended").exists()


def test_logging_out_forgets_the_session(owner):
    client = _signed_in(owner)
    client.post(reverse("accounts:logout"))
    assert not UserSession.objects.filter(user=owner).exists()


@pytest.mark.parametrize(
    ("agent", "label"),
    [
        (FIREFOX_MAC, "Firefox on macOS"),
        (CHROME_ANDROID, "Chrome on Android"),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/126.0 Safari/537.36 Edg/126.0",
            "Edge on Windows",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Version/17.5 Safari/604.1",
            "Safari on iPhone",
        ),
        ("curl/8.5.0", "curl"),
        ("", "Unknown browser"),
    ],
)
def test_device_labels(agent, label):
    assert device_label(agent) == label


# --- Backup codes ------------------------------------------------------------------------------


def test_backup_codes_left_read_as_n_of_ten(owner_client, owner):
    codes = mfa.backup_codes_generate(user=owner)
    device = BackupCodeDevice.objects.get(user=owner)
    for code in codes[:3]:
        assert device.verify_token(code)
    assert selectors.backup_codes_left(owner) == (7, 10)
    html = owner_client.get(reverse("accounts:security")).content.decode()
    assert "7 of 10" in html


def test_regenerating_asks_first_and_the_codes_copy_and_download_one_per_line(owner_client, owner):
    mfa.backup_codes_generate(user=owner)
    url = reverse("accounts:backup_codes_regenerate")
    confirm = owner_client.get(url)
    assert confirm.status_code == 200
    assert "The 10 codes you have left will stop working" in confirm.content.decode()
    assert AuditEvent.objects.filter(action="mfa.backup_codes_generated").count() == 1

    page = owner_client.post(url)

    html = page.content.decode()
    assert "no-store" in page["Cache-Control"]
    codes = page.context["codes"]
    assert len(codes) == 10
    # "Copy codes" copies the list's text: one code per line, never glued together.
    listing = html.split('id="backup-codes">')[1].split("</ol>")[0]
    text = "".join(part.split("</code>")[0] + "\n" for part in listing.split("<code>")[1:])
    assert listing.count("</li>\n") == 10 and text.splitlines() == codes
    href = html.split('href="data:text/plain;charset=utf-8,')[1].split('"')[0]
    assert unquote(href) == "".join(f"{code}\n" for code in codes)
    assert 'download="keyward-backup-codes.txt"' in html and "data-print" in html
    assert html.count("<script") == html.count("<script src=")


def test_regenerating_needs_sudo(client, owner):
    factories.verify_session(client, owner, sudo=False)
    response = client.post(reverse("accounts:backup_codes_regenerate"))
    assert response.status_code == 302 and response.url.startswith("/account/sudo/")
    assert not AuditEvent.objects.filter(action="mfa.backup_codes_generated").exists()


def test_the_setup_key_has_a_copy_button_copying_it_without_spaces(client, db):
    user = factories.make_user("new@example.com", totp=False)
    client.force_login(user)
    html = client.get(reverse("accounts:mfa_enrol")).content.decode()
    raw = html.split('id="setup-key-raw" hidden>')[1].split("<")[0]
    shown = html.split('id="setup-key">')[1].split("<")[0]
    assert raw == shown.replace(" ", "") and len(raw) == 32
    assert 'data-copy-target="setup-key-raw"' in html


# --- Security log ------------------------------------------------------------------------------


def test_the_security_log_shows_ones_own_sign_ins_failures_and_key_events(owner, tenant, member):
    client = Client()
    client.post("/account/login/", {"email": owner.email, "password": "wrong password 1"})
    client = _signed_in(owner)
    factories.make_api_key(owner, tenant, name="deploy laptop")
    _signed_in(member.user)  # someone else's sign-in: not shown

    html = client.get(reverse("accounts:security_log")).content.decode()

    assert "Password refused" in html and "Password accepted" in html
    assert "Second factor verified" in html
    assert "Key issued" in html and "deploy laptop" in html
    assert member.user.email not in html
    events = list(selectors.security_log(owner))
    assert {e.action for e in events} >= {"auth.login_failed", "auth.login_succeeded", "key.issued"}
    assert all(e.target_id == str(owner.pk) or e.actor_id == str(owner.pk) for e in events)


def test_the_security_log_keeps_ninety_days(owner):
    _signed_in(owner)
    assert list(selectors.security_log(owner))
    later = timezone.now() + timedelta(days=91)
    assert list(selectors.security_log(owner, now=later)) == []


# --- E-mails -----------------------------------------------------------------------------------


def test_a_new_key_is_mailed_to_the_account_that_made_it(
    owner_client, owner, tenant, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post(
            f"/t/{tenant.slug}/keys/new/",
            {"name": "ci deploy", "expiry": "30", "scopes": ["keys:read"]},
        )
    assert response.status_code == 200, response.content[:300]
    token = re.search(r"kwp_[0-9A-Za-z]{38}", response.content.decode())[0]
    [notice] = [m for m in mail.outbox if m.subject == KEY_MAIL_SUBJECT]
    assert notice.to == [owner.email]
    assert "ci deploy" in notice.body and tenant.name in notice.body
    assert "/account/security/log/" in notice.body
    assert token not in notice.body and token[4:16] not in notice.body


def test_a_service_key_from_the_command_line_mails_no_one(
    tenant, django_capture_on_commit_callbacks
):
    service_id = factories.make_service_id(tenant)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        factories.make_api_key(service_id, name="cron")
    assert [m for m in mail.outbox if m.subject == KEY_MAIL_SUBJECT] == []


# --- A typo, then the right code -----------------------------------------------------------------


def test_one_wrong_code_then_the_right_one_at_once_is_no_429(client, owner):
    client.post("/account/login/", {"email": owner.email, "password": factories.PASSWORD})
    wrong = client.post("/account/mfa/verify/", {"code": "000000"})
    assert wrong.status_code == 200
    right = client.post("/account/mfa/verify/", {"code": factories.totp_code(owner)})
    assert right.status_code == 302


def test_a_device_backs_off_after_its_free_failures(owner):
    device = AuthenticatorDevice.objects.get(user=owner)
    for _ in range(FREE_FAILURES - 1):
        assert device.verify_token("000000") is False
        assert device.verify_is_allowed() == (True, None)
    assert device.verify_token("000000") is False
    allowed, details = device.verify_is_allowed()
    assert allowed is False and details["failure_count"] == FREE_FAILURES
