"""Login and second-factor audit: the receivers of user_logged_in, user_login_failed and
otp_verification_failed (and the services for refusals no signal sees) record each event whole,
with the request's context."""

import pytest
from django.apps import apps
from django.contrib.auth import authenticate
from django.core import mail
from django.urls import reverse

from accounts import conf, lockout, mfa
from accounts.models import AuthenticatorDevice, User
from audit.models import AuditEvent
from tests import factories

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]

WRONG_CODE = "000000"


def _post(client, name, data):
    """POST to ``name``; return the response and the events it recorded, as comparable rows."""
    before = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    response = client.post(reverse(name), data)
    events = AuditEvent.objects.filter(id__gt=before).order_by("id")
    for event in events:
        assert event.ip == "127.0.0.1"
        assert event.request_id == response["X-Request-ID"]
    fields = ("action", "actor_kind", "actor_label", "target_label", "outcome", "metadata")
    return response, [tuple(getattr(e, f) for f in fields) for e in events]


def _login(client, email, password=factories.PASSWORD):
    return _post(client, "accounts:login", {"email": email, "password": password})


def _wrong_code(user):
    code = factories.totp_code(user)
    return WRONG_CODE if code != WRONG_CODE else "111111"


def test_a_login_is_recorded_once(client, owner):
    apps.get_app_config("accounts").ready()  # connecting again changes nothing (dispatch_uid)
    response, events = _login(client, owner.email)
    assert response.status_code == 302
    assert events == [("auth.login_succeeded", "user", owner.email, owner.email, "success", {})]


def test_a_wrong_password_is_counted_against_its_account(client, owner):
    _, events = _login(client, owner.email, "wrong password")
    assert events == [
        (
            "auth.login_failed",
            "user",
            owner.email,
            owner.email,
            "failure",
            {"consecutive_failures": 1},
        )
    ]


def test_an_unknown_email_is_recorded_as_anonymous(client, db):
    _, events = _login(client, "nobody@example.com", "whatever")
    assert events == [
        (
            "auth.login_failed",
            "anonymous",
            "nobody@example.com",
            "",
            "failure",
            {"reason": "unknown e-mail"},
        )
    ]


def test_the_failure_at_the_limit_locks_the_account(client, owner):
    limit = conf.settings.LOCK_AFTER_FAILURES
    User.objects.filter(pk=owner.pk).update(failed_auth_count=limit - 1)
    _, events = _login(client, owner.email, "wrong password")
    failures = {"consecutive_failures": limit}
    assert events == [
        ("auth.login_failed", "user", owner.email, owner.email, "failure", failures),
        ("auth.account_locked", "user", owner.email, owner.email, "denied", failures),
    ]


def test_refusals_before_the_password_is_checked(client, owner, settings):
    for _ in range(lockout.BACKOFF_AFTER):
        _login(client, owner.email, "wrong password")
    response, events = _login(client, owner.email)
    assert response.status_code == 429
    [(action, kind, label, target, outcome, metadata)] = events
    assert (action, kind, label, target, outcome) == (
        "auth.login_throttled",
        "user",
        owner.email,
        owner.email,
        "denied",
    )
    assert set(metadata) == {"retry_after", "limit"} and metadata["limit"] == "email-ip"
    settings.KEYWARD_LOGIN_IP_RATE = "1/min"
    response, events = _login(client, "x@example.com")
    assert response.status_code == 429
    [(action, kind, label, target, outcome, metadata)] = events
    assert (action, kind, label, target, outcome) == (
        "auth.login_throttled",
        "anonymous",
        "x@example.com",
        "",
        "denied",
    )
    assert metadata == {"retry_after": metadata["retry_after"], "limit": "ip"}


def test_a_wrong_code_is_counted_against_the_account(client, owner):
    _login(client, owner.email)
    response, events = _post(client, "accounts:mfa_verify", {"code": _wrong_code(owner)})
    assert response.status_code == 200
    failed = {"consecutive_failures": 1}
    assert events == [("mfa.verify_failed", "user", owner.email, owner.email, "failure", failed)]


def test_a_right_code_verifies(client, owner):
    _login(client, owner.email)
    code = factories.totp_code(owner)
    response, events = _post(client, "accounts:mfa_verify", {"code": code})
    assert response.status_code == 302
    verified = {"device": "totp"}
    assert events == [("mfa.verified", "user", owner.email, owner.email, "success", verified)]


def test_a_backup_code_says_how_many_are_left(client, owner):
    codes = mfa.backup_codes_generate(user=owner)
    _login(client, owner.email)
    _, events = _post(client, "accounts:mfa_verify", {"code": codes[0]})
    assert [(e[0], e[5]) for e in events] == [
        ("mfa.verified", {"device": "backup_code"}),
        ("mfa.backup_code_used", {"remaining": 9}),
    ]


def test_a_sudo_check_is_recorded_as_such(client, owner):
    factories.verify_session(client, owner, sudo=False)
    _, events = _post(client, "accounts:sudo", {"code": factories.totp_code(owner)})
    assert [(e[0], e[5]) for e in events] == [("mfa.sudo_verified", {"device": "totp"})]


def test_a_wrong_code_at_enrolment_names_the_enrolment(client, tenant):
    user = factories.make_user("new@acme.example", totp=False)
    _login(client, user.email)
    client.get(reverse("accounts:mfa_enrol"))
    response, events = _post(client, "accounts:mfa_enrol", {"code": WRONG_CODE})
    assert response.status_code == 200
    metadata = {"consecutive_failures": 1, "device": "totp (enrolment)"}
    assert events == [("mfa.verify_failed", "user", user.email, user.email, "failure", metadata)]
    assert not AuthenticatorDevice.objects.filter(user=user, confirmed=True).exists()


def test_an_invitees_first_login_says_so(
    owner_client, client, tenant, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        owner_client.post(
            reverse("accounts:member_invite", kwargs={"slug": "acme"}),
            {"email": "bob@example.com", "role": "member"},
        )
    link = next(w for w in mail.outbox[0].body.split() if "/invite/" in w)
    client.get(link.split("8000", 1)[1])
    password = {"password1": factories.PASSWORD, "password2": factories.PASSWORD}
    _, events = _post(client, "accounts:invitation_accept", {"full_name": "Bob", **password})
    assert [e[0] for e in events] == ["member.joined", "auth.login_succeeded"]
    assert events[1] == (
        "auth.login_succeeded",
        "user",
        "bob@example.com",
        "bob@example.com",
        "success",
        {"via": "invitation"},
    )


def test_a_failure_without_a_request_is_recorded_without_a_context(owner):
    assert authenticate(None, email=owner.email, password="wrong password") is None
    event = AuditEvent.objects.get(action="auth.login_failed")
    assert (event.actor_label, event.ip, event.request_id) == (owner.email, None, "")
