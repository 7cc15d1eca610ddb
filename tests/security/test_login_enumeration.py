"""Login back-off without account enumeration and without locking the owner out.

An e-mail with an account and one without get the same answer (status, message, form) and cost
the same work (one password hash) in every state: fresh, backing off, locked. Failures back off
per (e-mail, client address), so an attacker elsewhere cannot keep the owner out; the account
locks only at 100 consecutive failures (NIST SP 800-63B), and its owner is told by e-mail how to
unlock it. Password reset is throttled per address and per e-mail, does the same work for an
address with no account, and never waits on the mail server.
"""

import re
import threading
import time
from types import SimpleNamespace

import pytest
from django.contrib.auth.hashers import MD5PasswordHasher
from django.contrib.auth.tokens import default_token_generator
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.template import loader
from django.test import Client
from django.urls import reverse

from accounts import conf, lockout
from accounts.models import User
from accounts.views.auth import INVALID_LOGIN
from audit.models import AuditEvent
from common import mail as common_mail
from common import ratelimit
from tests import factories
from tests.security.surface import body_of

pytestmark = pytest.mark.django_db

LOGIN = "/account/login/"
VERIFY = "/account/mfa/verify/"
RESET = "/account/password-reset/"
KNOWN = "known@example.com"
UNKNOWN = "ghost@example.com"
ATTACKER = "203.0.113.66"
OWNER_IP = "198.51.100.7"
RETRY_IN = re.compile(r"Try again in (\d+) seconds")
# What differs between two renderings of one page: the masked CSRF token, the CSP nonce.
VOLATILE = re.compile(r'(name="csrfmiddlewaretoken" value|nonce)="[^"]*"')


class CountingHasher(MD5PasswordHasher):
    """MD5 (fast), counting every hash it computes: checking a password, or making one."""

    calls = 0

    def encode(self, password, salt):
        CountingHasher.calls += 1
        return super().encode(password, salt)


class RateClock:
    """The clock of the rate windows (``common.ratelimit``), moved by the test, never slept."""

    def __init__(self) -> None:
        self.now = time.time() // 86400 * 86400 + 30  # 30 s into a day, an hour, a minute

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(autouse=True)
def rate_clock(monkeypatch):
    clock = RateClock()
    monkeypatch.setattr(
        ratelimit, "time", SimpleNamespace(time=clock.time, monotonic=time.monotonic)
    )
    return clock


@pytest.fixture(autouse=True)
def counting_hasher(settings):
    settings.PASSWORD_HASHERS = [f"{__name__}.CountingHasher"]
    settings.KEYWARD_LOGIN_IP_RATE = "10000/min"  # the per-address limit has its own tests
    CountingHasher.calls = 0


@pytest.fixture
def known(counting_hasher):
    return factories.make_user(KNOWN)


def _login(email, password=factories.PASSWORD, ip=ATTACKER, client=None):
    client = client or Client()
    return client.post(LOGIN, {"email": email, "password": password}, REMOTE_ADDR=ip)


def _fail(email, times, ip=ATTACKER, clock=None):
    """Fail ``times`` checked passwords for ``email`` from ``ip``, waiting out each back-off."""
    failed = 0
    for _ in range(3 * times):  # a back-off that waiting does not end fails the test, not hangs it
        if failed == times:
            break
        response = _login(email, "not the password", ip)
        if response.status_code == 429:
            clock.advance(int(RETRY_IN.search(body_of(response)).group(1)))
        else:
            assert INVALID_LOGIN in body_of(response)
            failed += 1
    assert failed == times, f"{failed} of {times} failures: the back-off did not end"


def _answer(response, email):
    """What the visitor sees: status, the form's errors, the page with the e-mail typed elided."""
    page = VOLATILE.sub("", body_of(response)).replace(email, "EMAIL")
    errors = response.context["form"].errors if response.context else None
    return response.status_code, errors, page


def _hashes(send):
    CountingHasher.calls = 0
    response = send()
    return response, CountingHasher.calls


# --- The same answer and the same work, known or not ---------------------------------------------


@pytest.mark.parametrize("failures", [0, 5, 20])
def test_known_and_unknown_emails_get_the_same_answer_for_the_same_work(
    known, rate_clock, failures
):
    _fail(KNOWN, failures, clock=rate_clock)
    _fail(UNKNOWN, failures, clock=rate_clock)
    known_wrong, known_cost = _hashes(lambda: _login(KNOWN, "not the password"))
    unknown, unknown_cost = _hashes(lambda: _login(UNKNOWN, "not the password"))
    assert _answer(known_wrong, KNOWN) == _answer(unknown, UNKNOWN)
    assert known_cost == unknown_cost == 1
    expected = 200 if failures == 0 else 429
    assert unknown.status_code == expected
    if failures:  # backing off: even the right password waits, and says how long
        known_right, cost = _hashes(lambda: _login(KNOWN))
        assert _answer(known_right, KNOWN) == _answer(unknown, UNKNOWN) and cost == 1
        assert RETRY_IN.search(body_of(known_right))


def test_a_locked_account_answers_as_an_unknown_email_even_to_its_right_password(known):
    User.objects.filter(pk=known.pk).update(failed_auth_count=conf.settings.LOCK_AFTER_FAILURES - 1)
    _login(KNOWN, "not the password", ip="192.0.2.1")
    assert User.objects.get(pk=known.pk).locked_at is not None
    unknown, unknown_cost = _hashes(lambda: _login(UNKNOWN, factories.PASSWORD))
    for password in ("not the password", factories.PASSWORD):
        response, cost = _hashes(lambda: _login(KNOWN, password))  # noqa: B023
        assert _answer(response, KNOWN) == _answer(unknown, UNKNOWN)
        assert cost == unknown_cost == 1
    assert unknown.status_code == 200 and INVALID_LOGIN in body_of(unknown)
    assert "reset your password" in INVALID_LOGIN  # the way out, for whoever is locked out
    refused = AuditEvent.objects.filter(action="auth.login_throttled", target_id=str(known.pk))
    assert [e.metadata for e in refused] == [{"retry_after": 0, "locked": True}] * 2  # unchecked


def test_the_per_address_limit_costs_no_hash_for_anyone(known, settings):
    settings.KEYWARD_LOGIN_IP_RATE = "1/min"
    _login(UNKNOWN, "not the password")
    known_refused, known_cost = _hashes(lambda: _login(KNOWN))
    unknown_refused, unknown_cost = _hashes(lambda: _login(UNKNOWN))
    assert known_refused.status_code == unknown_refused.status_code == 429
    assert _answer(known_refused, KNOWN) == _answer(unknown_refused, UNKNOWN)
    assert known_cost == unknown_cost == 0


# --- The attacker slows only their own address ---------------------------------------------------


@pytest.mark.parametrize("failures", [lockout.BACKOFF_AFTER, 30])
def test_an_attackers_failures_do_not_stop_the_owner_logging_in_elsewhere(
    known, rate_clock, failures
):
    _fail(KNOWN, failures, clock=rate_clock)
    assert _login(KNOWN).status_code == 429  # the attacker's address waits...
    owner = Client()
    assert _login(KNOWN, ip=OWNER_IP, client=owner).status_code == 302  # ...the owner does not
    code = factories.totp_code(known)
    assert owner.post(VERIFY, {"code": code}, REMOTE_ADDR=OWNER_IP).status_code == 302


def test_the_owners_own_typos_back_off_their_address_only_briefly(known, rate_clock):
    for _ in range(lockout.BACKOFF_AFTER):
        _login(KNOWN, "typo", ip=OWNER_IP)
    refused = _login(KNOWN, ip=OWNER_IP)
    wait = int(RETRY_IN.search(body_of(refused)).group(1))
    assert refused.status_code == 429 and wait <= 60
    rate_clock.advance(wait)
    assert _login(KNOWN, ip=OWNER_IP).status_code == 302


def test_a_new_password_starts_the_back_off_afresh(known, rate_clock):
    _fail(KNOWN, 20, ip=OWNER_IP, clock=rate_clock)  # the owner has forgotten it
    assert _login(KNOWN, ip=OWNER_IP).status_code == 429
    known.set_password("a brand new passphrase 77")
    known.save(update_fields=["password"])
    assert _login(KNOWN, "a brand new passphrase 77", ip=OWNER_IP).status_code == 302


# --- The lock: at 100 consecutive failures, and the owner is told how to unlock ------------------


def test_the_account_locks_at_100_failures_and_its_owner_is_told_how_to_unlock(
    known, django_capture_on_commit_callbacks
):
    assert conf.settings.LOCK_AFTER_FAILURES == 100
    addresses = [f"192.0.2.{i}" for i in range(1, 21)]  # 20 addresses, 5 guesses each
    for guess in range(99):
        _login(KNOWN, "not the password", ip=addresses[guess % 20])
    known.refresh_from_db()
    assert (known.failed_auth_count, known.locked_at) == (99, None)
    assert _login(KNOWN, ip=OWNER_IP).status_code == 302  # 99 failures: the owner still gets in
    with django_capture_on_commit_callbacks(execute=True):
        _login(KNOWN, "not the password", ip=addresses[-1])
    known.refresh_from_db()
    assert known.locked_at is not None
    assert AuditEvent.objects.filter(action="auth.account_locked").count() == 1
    [notice] = mail.outbox
    assert notice.to == [KNOWN] and notice.subject == lockout.LOCKED_MAIL_SUBJECT
    assert f"{conf.settings.BASE_URL}{reverse('accounts:password_reset')}" in notice.body
    assert _login(KNOWN, ip=OWNER_IP).status_code == 200  # locked: the right password is refused


# --- The second factor --------------------------------------------------------------------------


def test_wrong_passwords_from_elsewhere_do_not_hold_up_the_owners_code(known, rate_clock):
    _fail(KNOWN, lockout.BACKOFF_AFTER, clock=rate_clock)
    owner = Client()
    assert _login(KNOWN, ip=OWNER_IP, client=owner).status_code == 302
    code = factories.totp_code(known)
    assert owner.post(VERIFY, {"code": code}, REMOTE_ADDR=OWNER_IP).status_code == 302


# --- Password reset ------------------------------------------------------------------------------


def _reset(email, ip=ATTACKER):
    return Client().post(RESET, {"email": email}, REMOTE_ADDR=ip)


def test_password_reset_is_limited_per_client_address(db, settings):
    settings.KEYWARD_PASSWORD_RESET_IP_RATE = "3/hour"
    statuses = [_reset(f"someone{i}@example.com").status_code for i in range(4)]
    assert statuses == [302, 302, 302, 429]
    refused = _reset("someone9@example.com")
    assert refused.status_code == 429 and RETRY_IN.search(body_of(refused))
    assert _reset("someone9@example.com", ip=OWNER_IP).status_code == 302
    event = AuditEvent.objects.filter(action="auth.password_reset_throttled").first()
    assert event.metadata["limit"] == "ip" and event.outcome == "denied"


def test_password_reset_is_limited_per_email_the_same_with_or_without_an_account(known, settings):
    settings.KEYWARD_PASSWORD_RESET_ACCOUNT_RATE = "2/hour"
    answers = {}
    for email in (KNOWN, UNKNOWN):
        responses = [_reset(email, ip=f"192.0.2.{i}") for i in range(3)]  # one address each
        assert [r.status_code for r in responses] == [302, 302, 429]
        answers[email] = _answer(responses[-1], email)
    assert answers[KNOWN] == answers[UNKNOWN]
    assert "latest e-mail" in answers[KNOWN][2]
    assert [m.to for m in mail.outbox] == [[KNOWN], [KNOWN]]  # the owner has a working link
    assert _reset("other@example.com").status_code == 302  # other addresses are not held up


def test_password_reset_does_the_same_work_for_an_address_with_no_account(known, monkeypatch):
    work = []
    make_token, render = default_token_generator.make_token, loader.render_to_string
    monkeypatch.setattr(
        default_token_generator, "make_token", lambda u: work.append("token") or make_token(u)
    )
    monkeypatch.setattr(
        loader, "render_to_string", lambda *a, **k: work.append("render") or render(*a, **k)
    )
    done = {}
    for email in (KNOWN, UNKNOWN):
        work.clear()
        response = _reset(email)
        done[email] = (response.status_code, response["Location"], list(work))
    assert (
        done[KNOWN]
        == done[UNKNOWN]
        == (302, "/account/password-reset/sent/", ["token", "render", "render"])
    )
    assert [m.to for m in mail.outbox] == [[KNOWN]]


def test_password_reset_answers_before_the_mail_server_does(known, settings, monkeypatch):
    settings.KEYWARD_AUTH_MAIL = "background"
    release, sent = threading.Event(), []

    def slow_send(message, fail_silently=False):
        release.wait(5)
        sent.append(message.to)
        return 1

    monkeypatch.setattr(EmailMultiAlternatives, "send", slow_send)
    response = _reset(KNOWN)
    assert response.status_code == 302 and sent == []  # answered, the e-mail still on its way
    release.set()
    assert common_mail.wait_sent()
    assert sent == [[KNOWN]]
