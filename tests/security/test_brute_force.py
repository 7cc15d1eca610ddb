"""Brute force: every guessing channel is throttled, each throttle is audited, and each refusal
says when to retry (a number of seconds, or the lock message).

What ``tests/accounts/test_login.py`` and ``tests/keys/test_throttling.py`` already show (the
first back-off message, the per-IP login limit, the per-key and per-address API limits with their
Retry-After) is not repeated here, nor what ``test_login_enumeration.py`` shows (the same answers
for an e-mail with or without an account; the back-off per (e-mail, address), so the owner logs in
from elsewhere); this file covers the rest: the road from back-off to lock over HTTP, a lock that
holds against the right password *and* a valid second factor, the operator's unlock, OTP throttles
(account-wide and per authenticator), the audit of the API's per-address throttle, and whose
address a per-IP limit counts (``X-Forwarded-For`` only from trusted proxies).
"""

import re
import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.test import Client
from django.urls import reverse

from accounts import lockout, mfa
from accounts.devices import FREE_FAILURES
from accounts.models import AuthenticatorDevice, User
from accounts.views.auth import INVALID_CODE, INVALID_LOGIN
from audit import summaries
from audit.models import AuditEvent
from common import ratelimit
from keys import tokens
from tests import factories
from tests.security.surface import body_of, verified_client

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]

RETRY_IN = re.compile(r"Try again in (\d+) seconds")
LOGIN = "/account/login/"
VERIFY = "/account/mfa/verify/"
ATTACKER = {"REMOTE_ADDR": "203.0.113.66"}


class Clock:
    """The clock of the back-offs' and per-IP limits' windows (``common.ratelimit``), moved by
    the test, never slept. It starts 30 s into a day (an hour, a minute): a test that does not
    move it never straddles two windows."""

    def __init__(self):
        self.now = time.time() // 86400 * 86400 + 30

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(
        ratelimit, "time", SimpleNamespace(time=clock.time, monotonic=time.monotonic)
    )
    return clock


@pytest.fixture
def lock_after(settings):
    """Lock after 25 consecutive failures (100 in production): past the hour's back-off of
    one address (20); no per-IP limit in the way."""
    settings.KEYWARD_LOCK_AFTER_FAILURES = 25
    settings.KEYWARD_LOGIN_IP_RATE = "10000/min"
    return 25


def _login(client, email, password=factories.PASSWORD, **extra):
    return client.post(LOGIN, {"email": email, "password": password}, **extra)


def _verify(client, code, url=VERIFY):
    return client.post(url, {"code": code})


def _retry_seconds(response) -> int:
    match = RETRY_IN.search(body_of(response))
    assert match, f"the refusal does not say when to retry: {body_of(response)[:300]}"
    return int(match.group(1))


def _events(action: str, user=None):
    events = AuditEvent.objects.filter(action=action)
    return events.filter(target_id=str(user.pk)) if user is not None else events


def _lock_by_guessing(user, clock, limit: int) -> None:
    """Guess wrong passwords from another browser and address, waiting out each back-off,
    until locked."""
    attacker = Client()
    while not User.objects.get(pk=user.pk).locked_at:
        response = _login(attacker, user.email, "not the password", **ATTACKER)
        if response.status_code == 429:
            clock.advance(_retry_seconds(response))
        assert _events("auth.login_failed", user).count() <= limit


# --- Password: back-off, then lock -------------------------------------------------------------


def test_password_guessing_backs_off_then_locks_and_every_refusal_says_when(
    client, owner, clock, lock_after
):
    failures, waits = 0, []
    while User.objects.get(pk=owner.pk).locked_at is None:
        response = _login(client, owner.email, "wrong")
        if response.status_code == 429:
            wait = _retry_seconds(response)
            refused = _login(client, owner.email)  # even the right password waits its turn
            assert refused.status_code == 429 and _retry_seconds(refused) == wait
            waits.append(wait)
            clock.advance(wait)
        else:
            assert INVALID_LOGIN in body_of(response)
            failures += 1
            assert failures <= lock_after
    assert failures == lock_after
    assert _events("auth.login_failed", owner).count() == lock_after  # only checked ones count
    assert [w <= 60 for w in waits] == [True, True, True, False]  # a minute thrice, then the hour
    throttled = [e.metadata for e in _events("auth.login_throttled", owner).order_by("id")]
    assert throttled == [{"retry_after": w, "limit": "email-ip"} for w in waits for _ in "ab"]
    assert _events("auth.account_locked", owner).count() == 1

    # Locked: the right password gets the wrong one's answer (the owner was told by e-mail).
    clock.advance(timedelta(days=30).total_seconds())  # a lock does not wear off
    for browser, meta in ((client, {}), (Client(), {"REMOTE_ADDR": "198.51.100.1"})):
        locked = _login(browser, owner.email, **meta)
        assert locked.status_code == 200 and INVALID_LOGIN in body_of(locked)
    last = _events("auth.login_throttled", owner).order_by("id").last()
    assert last.metadata == {"retry_after": 0, "locked": True}


def test_a_locked_account_refuses_the_right_password_a_valid_totp_and_a_backup_code(
    client, owner, clock, lock_after
):
    codes = mfa.backup_codes_generate(user=owner)
    assert _login(client, owner.email).status_code == 302  # the password step passed...
    _lock_by_guessing(owner, clock, lock_after)  # ...then the account was locked
    for code in (factories.totp_code(owner), codes[0]):
        refused = _verify(client, code)
        assert refused.status_code == 429, code
        assert lockout.LOCKED_MESSAGE in body_of(refused)
    tenant_page = client.get(reverse("accounts:tenant_home", kwargs={"slug": "acme"}))
    assert tenant_page["Location"].startswith(VERIFY)  # never verified
    assert len(codes) == mfa.BackupCodeDevice.objects.get(user=owner).remaining  # none spent
    assert INVALID_LOGIN in body_of(_login(Client(), owner.email))


def test_a_locked_account_cannot_pass_a_sensitive_actions_code_check(owner, clock, lock_after):
    client = verified_client(owner, sudo=False)
    _lock_by_guessing(owner, clock, lock_after)
    refused = _verify(client, factories.totp_code(owner), url=reverse("accounts:sudo"))
    assert refused.status_code == 429 and lockout.LOCKED_MESSAGE in body_of(refused)
    issue = client.get(reverse("keys:issue", kwargs={"slug": "acme"}))
    assert issue["Location"].startswith(reverse("accounts:sudo"))


def test_an_operator_lifts_a_lock_from_the_admin_and_it_is_audited(
    client, owner, clock, lock_after
):
    _lock_by_guessing(owner, clock, lock_after)
    operator = factories.make_user("ops@example.com")
    User.objects.filter(pk=operator.pk).update(is_staff=True, is_superuser=True)
    admin = verified_client(User.objects.get(pk=operator.pk))
    response = admin.post(
        reverse("admin:accounts_user_changelist"),
        {"action": "unlock_accounts", "_selected_action": [owner.pk]},
    )
    assert response.status_code == 302
    owner.refresh_from_db()
    assert (owner.locked_at, owner.failed_auth_count, owner.last_failed_auth_at) == (None, 0, None)
    event = _events("auth.account_unlocked", owner).get()
    assert (event.actor_kind, event.actor_id) == ("operator", str(operator.pk))
    assert _login(client, owner.email).status_code == 302
    assert _verify(client, factories.totp_code(owner)).status_code == 302


# --- Second factor ----------------------------------------------------------------------------


def test_wrong_codes_back_off_account_wide_and_the_refusal_says_when(
    client, owner, clock, settings
):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # the authenticator's own back-off: the next test
    assert _login(client, owner.email).status_code == 302
    for _ in range(lockout.BACKOFF_AFTER):
        assert INVALID_CODE in body_of(_verify(client, "000000"))
    refused = _verify(client, factories.totp_code(owner))
    assert refused.status_code == 429
    wait = _retry_seconds(refused)
    event = _events("auth.login_throttled", owner).get()
    assert event.metadata["retry_after"] == wait and event.outcome == "denied"
    assert _events("mfa.verify_failed", owner).count() == lockout.BACKOFF_AFTER
    clock.advance(wait)
    assert _verify(client, factories.totp_code(owner)).status_code == 302
    owner.refresh_from_db()
    assert owner.failed_auth_count == 0


def test_a_throttled_authenticator_says_when_to_retry_and_the_wait_is_not_a_failure(client, owner):
    assert _login(client, owner.email).status_code == 302
    # A typo or two cost no wait (accounts/devices.py FREE_FAILURES); then the device backs off.
    for _ in range(FREE_FAILURES):
        assert INVALID_CODE in body_of(_verify(client, "000000"))
    refused = _verify(client, factories.totp_code(owner))  # right code, too soon after
    assert refused.status_code == 429
    wait = _retry_seconds(refused)
    device = AuthenticatorDevice.objects.get(user=owner)
    assert 1 <= wait <= 2 ** (device.throttling_failure_count - 1) + 1
    event = _events("auth.login_throttled", owner).get()
    assert event.metadata == {"retry_after": wait, "limit": "device"}
    owner.refresh_from_db()
    assert owner.failed_auth_count == FREE_FAILURES  # the unchecked code did not count
    codes = mfa.backup_codes_generate(user=owner)
    assert _verify(Client(), codes[0]).status_code == 302  # backup codes are not held up
    AuthenticatorDevice.objects.filter(pk=device.pk).update(
        throttling_failure_timestamp=device.throttling_failure_timestamp - timedelta(seconds=wait)
    )
    assert _verify(client, factories.totp_code(owner)).status_code == 302


def test_a_throttled_enrolment_says_when_to_retry(client, tenant):
    user = factories.make_user("new@acme.example", totp=False)
    factories.add_member(tenant, "member", user)
    _login(client, user.email)
    client.get(reverse("accounts:mfa_enrol"))
    for _ in range(FREE_FAILURES):
        response = client.post(reverse("accounts:mfa_enrol"), {"code": "000000"})
        assert INVALID_CODE in body_of(response)
    refused = client.post(reverse("accounts:mfa_enrol"), {"code": "123456"})
    assert refused.status_code == 429
    assert _retry_seconds(refused) >= 1
    assert _events("auth.login_throttled", user).get().metadata["limit"] == "device"


# --- Per-IP limits: whose address counts ------------------------------------------------------


def _password_guess(client, **meta):
    return _login(client, "nobody@example.com", "guess", **meta).status_code


def _key_guess(client, **meta):
    # Well-formed, so it is looked up and counted: a malformed token is refused before any
    # lookup and is no guess at a key (tests/keys/test_throttling.py).
    guess = tokens.generate(tokens.Kind.PERSONAL)
    return client.get("/api/v1/whoami/", HTTP_AUTHORIZATION=f"Bearer {guess}", **meta).status_code


LIMITS = {
    "password login": ("KEYWARD_LOGIN_IP_RATE", _password_guess, 200),
    "API authentication": ("KEYWARD_FAILED_AUTH_RATE", _key_guess, 401),
}
PROXY = "10.0.0.0/8"
CASES = {
    # (trusted proxies, REMOTE_ADDR, X-Forwarded-For of the i-th request, client counted)
    "no trusted proxy: X-Forwarded-For is ignored": (
        [],
        "203.0.113.7",
        "198.51.100.{i}",
        "203.0.113.7",
    ),
    "an untrusted peer's X-Forwarded-For is ignored": (
        [PROXY],
        "203.0.113.7",
        "198.51.100.{i}",
        "203.0.113.7",
    ),
    "a forged hop left of the trusted proxy's entry changes nothing": (
        [PROXY],
        "10.0.0.2",
        "192.0.2.{i}, 198.51.100.9",
        "198.51.100.9",
    ),
    "behind a trusted proxy the forwarded client is counted": (
        [PROXY],
        "10.0.0.2",
        "198.51.100.9",
        "198.51.100.9",
    ),
}
RATE = 3


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("limit", list(LIMITS))
def test_a_per_ip_limit_counts_the_real_client(limit, case, client, settings):
    setting, guess, allowed = LIMITS[limit]
    proxies, remote, forwarded, counted = CASES[case]
    setattr(settings, setting, f"{RATE}/min")
    settings.KEYWARD_TRUSTED_PROXIES = proxies

    def send(i, remote_addr=remote):
        meta = {"REMOTE_ADDR": remote_addr, "HTTP_X_FORWARDED_FOR": forwarded.format(i=i)}
        return guess(client, **meta)

    statuses = [send(i) for i in range(RATE + 2)]
    assert statuses == [allowed] * RATE + [429, 429], statuses
    summaries.flush(everything=True)  # API refusals: one event per address and minute
    events = AuditEvent.objects.exclude(ip=None)
    assert set(events.values_list("ip", flat=True)) == {counted}
    if proxies:  # another client behind the same proxy has its own count
        assert guess(client, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.200") == (
            allowed
        )
    else:  # another address has its own count
        assert send(0, remote_addr="198.51.100.200") == allowed


def test_behind_a_trusted_proxy_each_client_has_its_own_count(client, settings):
    settings.KEYWARD_LOGIN_IP_RATE = f"{RATE}/min"
    settings.KEYWARD_TRUSTED_PROXIES = [PROXY]
    statuses = [
        _password_guess(client, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=f"198.51.100.{i}")
        for i in range(3 * RATE)
    ]
    assert statuses == [200] * (3 * RATE)


def test_the_per_ip_login_limit_is_audited_with_its_retry_time(client, settings):
    settings.KEYWARD_LOGIN_IP_RATE = f"{RATE}/min"
    for _ in range(RATE):
        _login(client, "nobody@example.com", "guess")
    refused = _login(client, "nobody@example.com", "guess")
    assert refused.status_code == 429
    wait = _retry_seconds(refused)
    event = _events("auth.login_throttled").get()
    assert event.metadata == {"retry_after": wait, "limit": "ip"} and event.ip == "127.0.0.1"


def test_the_api_per_address_throttle_is_audited_once_and_says_when(api_client, settings):
    settings.KEYWARD_FAILED_AUTH_RATE = f"{RATE}/min"
    attacker = {"REMOTE_ADDR": "203.0.113.9"}
    guesses = [_key_guess(api_client, **attacker) for _ in range(RATE + 1)]
    unknown = tokens.generate(tokens.Kind.PERSONAL)
    responses = [
        api_client.get("/api/v1/whoami/", HTTP_AUTHORIZATION=f"Bearer {unknown}", **attacker)
        for _ in range(3)
    ]
    assert guesses[:RATE] == [401] * RATE and [r.status_code for r in responses] == [429] * 3
    for response in responses:
        wait = int(response["Retry-After"])
        assert 1 <= wait <= 61
        assert f"{wait} seconds" in response.json()["detail"]
    summaries.flush(everything=True)
    event = AuditEvent.objects.get(action="api.refused")  # one event, none per refusal
    assert event.ip == "203.0.113.9" and event.outcome == "denied"
    assert event.metadata["count"] == RATE + 4
    assert event.metadata["statuses"] == {"401": RATE, "429": 4}
    assert 1 <= event.metadata["ip_throttled_for"] <= 61  # when the address got refused
