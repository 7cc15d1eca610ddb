import pytest
from django.core import mail
from django.urls import reverse

from accounts import conf, lockout, mfa
from accounts import conf as accounts_conf
from accounts.models import BackupCode, User
from accounts.views.auth import INVALID_LOGIN
from audit.models import AuditEvent
from tests import factories

pytestmark = pytest.mark.django_db


def _post_login(client, email, password=factories.PASSWORD, **extra):
    return client.post(reverse("accounts:login"), {"email": email, "password": password}, **extra)


def test_portal_pages_redirect_anonymous_visitors_to_login(client, tenant):
    response = client.get(reverse("accounts:tenant_home", kwargs={"slug": "acme"}))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_password_alone_does_not_open_the_portal(client, owner):
    response = _post_login(client, owner.email)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:mfa_verify"))
    page = client.get(reverse("accounts:tenant_home", kwargs={"slug": "acme"}))
    assert page.status_code == 302
    assert page["Location"].startswith(reverse("accounts:mfa_verify"))


def test_login_rotates_session_key_at_each_step(client, owner):
    client.get(reverse("accounts:login"))
    client.session.save()
    first = client.session.session_key
    _post_login(client, owner.email)
    second = client.session.session_key
    client.post(reverse("accounts:mfa_verify"), {"code": factories.totp_code(owner)})
    third = client.session.session_key
    assert len({first, second, third}) == 3


def test_full_login_with_totp_reaches_the_tenant(client, owner):
    _post_login(client, owner.email)
    response = client.post(reverse("accounts:mfa_verify"), {"code": factories.totp_code(owner)})
    assert response.status_code == 302
    page = client.get(reverse("accounts:tenant_home", kwargs={"slug": "acme"}))
    assert page.status_code == 200
    assert b"Acme" in page.content
    actions = list(
        AuditEvent.objects.filter(actor_id=str(owner.pk)).values_list("action", flat=True)
    )
    assert "auth.login_succeeded" in actions and "mfa.verified" in actions


def test_totp_code_is_accepted_only_once(client, owner):
    code = factories.totp_code(owner)
    _post_login(client, owner.email)
    assert client.post(reverse("accounts:mfa_verify"), {"code": code}).status_code == 302
    client.post(reverse("accounts:logout"))
    _post_login(client, owner.email)
    replay = client.post(reverse("accounts:mfa_verify"), {"code": code})
    assert replay.status_code == 200
    assert "not valid" in replay.content.decode()


def test_wrong_password_is_refused_and_audited(client, owner):
    response = _post_login(client, owner.email, "wrong password")
    assert response.status_code == 200
    assert "E-mail or password is incorrect." in response.content.decode()
    owner.refresh_from_db()
    assert owner.failed_auth_count == 1
    assert AuditEvent.objects.filter(action="auth.login_failed", outcome="failure").count() == 1


def test_unknown_email_gets_the_same_message(client, db):
    response = _post_login(client, "nobody@example.com", "whatever")
    assert "E-mail or password is incorrect." in response.content.decode()
    assert AuditEvent.objects.filter(action="auth.login_failed", actor_kind="anonymous").exists()


def test_repeated_failures_back_off_with_a_retry_time(client, owner):
    for _ in range(lockout.BACKOFF_AFTER):
        _post_login(client, owner.email, "wrong password")
    response = _post_login(client, owner.email)
    assert response.status_code == 429
    assert "Try again in" in response.content.decode()


def test_account_locks_after_the_limit_and_reset_unlocks(
    client, owner, django_capture_on_commit_callbacks
):
    User.objects.filter(pk=owner.pk).update(failed_auth_count=conf.settings.LOCK_AFTER_FAILURES - 1)
    owner.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        lockout.auth_failure(user=owner, action="auth.login_failed")
    owner.refresh_from_db()
    assert owner.locked_at is not None
    [notice] = mail.outbox  # the owner learns of the lock, and how to lift it, by e-mail
    assert notice.to == [owner.email] and "/account/password-reset/" in notice.body
    response = _post_login(client, owner.email)  # the right password, answered as a wrong one
    assert response.status_code == 200
    assert INVALID_LOGIN in response.content.decode()
    assert AuditEvent.objects.filter(action="auth.account_locked").exists()
    from accounts.services import user_password_set

    user_password_set(
        user=owner, password="another good passphrase 9", action="auth.password_reset"
    )
    owner.refresh_from_db()
    assert owner.locked_at is None and owner.failed_auth_count == 0


@pytest.mark.parametrize("rate", ["3/min"])
def test_login_attempts_are_limited_per_ip(client, db, settings, rate):
    settings.KEYWARD_LOGIN_IP_RATE = rate
    for _ in range(3):
        assert _post_login(client, "x@example.com", "nope").status_code == 200
    response = _post_login(client, "x@example.com", "nope")
    assert response.status_code == 429
    assert "Try again in" in response.content.decode()


def test_first_login_enrols_totp_then_shows_ten_backup_codes_once(client, tenant):
    user = factories.make_user("new@acme.example", totp=False)
    factories.add_member(tenant, "member", user)
    response = _post_login(client, user.email)
    assert response["Location"].startswith(reverse("accounts:mfa_enrol"))
    page = client.get(reverse("accounts:mfa_enrol"))
    assert page.status_code == 200
    assert page["Cache-Control"].count("no-store") == 1
    body = page.content.decode()
    assert "data:image/svg+xml" in body and "setup-key" in body
    from accounts.models import AuthenticatorDevice

    device = AuthenticatorDevice.objects.get(user=user, confirmed=False)
    device.confirmed = True
    device.save()
    code = factories.totp_code(user)
    device.confirmed = False
    device.save()
    done = client.post(reverse("accounts:mfa_enrol"), {"code": code})
    assert done.status_code == 200
    codes = done.context["codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    stored = list(BackupCode.objects.values_list("digest", flat=True))
    assert len(stored) == 10
    assert not any(c in d or c.replace("-", "") in d for c in codes for d in stored)
    assert client.get(reverse("accounts:tenant_home", kwargs={"slug": "acme"})).status_code == 200


def test_backup_code_works_once(client, owner):
    codes = mfa.backup_codes_generate(user=owner)
    _post_login(client, owner.email)
    assert client.post(reverse("accounts:mfa_verify"), {"code": codes[0]}).status_code == 302
    client.post(reverse("accounts:logout"))
    _post_login(client, owner.email)
    again = client.post(reverse("accounts:mfa_verify"), {"code": codes[0]})
    assert again.status_code == 200
    assert AuditEvent.objects.filter(action="mfa.backup_code_used").count() == 1


def test_another_tenants_pages_are_404(owner_client, other_tenant):
    response = owner_client.get(reverse("accounts:tenant_home", kwargs={"slug": "globex"}))
    assert response.status_code == 404
    assert b"Globex" not in response.content


def test_idle_session_ends(owner_client, settings):
    owner_client.get(reverse("accounts:security"))
    session = owner_client.session
    session["keyward_seen_at"] -= accounts_conf.settings.SESSION_IDLE_TIMEOUT + 1
    session.save()
    response = owner_client.get(reverse("accounts:security"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))
    assert AuditEvent.objects.filter(action="auth.session_expired").exists()


def test_sensitive_action_asks_for_a_fresh_code(client, owner):
    factories.verify_session(client, owner, sudo=False)
    response = client.post(reverse("accounts:backup_codes_regenerate"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:sudo"))


def test_a_wrong_app_code_does_not_throttle_the_backup_codes(client, owner):
    codes = mfa.backup_codes_generate(user=owner)
    _post_login(client, owner.email)
    client.post(reverse("accounts:mfa_verify"), {"code": "000000"})
    response = client.post(reverse("accounts:mfa_verify"), {"code": codes[1]})
    assert response.status_code == 302


def test_admin_tells_a_verified_non_operator_no_instead_of_looping(client, member):
    factories.verify_session(client, member.user)
    response = client.get("/admin/", follow=True)
    assert response.status_code == 403
    assert len(response.redirect_chain) == 1
