import pytest
from django.core import mail
from django.core.management import call_command
from django.urls import reverse

from accounts import mfa
from accounts.models import BackupCode, User
from audit.models import AuditEvent
from tests import factories

pytestmark = pytest.mark.django_db


def test_regenerating_backup_codes_invalidates_the_old_ones(owner_client, owner):
    old = mfa.backup_codes_generate(user=owner)
    response = owner_client.post(reverse("accounts:backup_codes_regenerate"))
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    new = response.context["codes"]
    assert len(new) == 10 and not set(new) & set(old)
    device = mfa.BackupCodeDevice.objects.get(user=owner)
    assert not device.verify_token(old[0])
    device.throttle_reset()  # the failure above started django-otp's per-device back-off
    assert device.verify_token(new[0])
    assert BackupCode.objects.filter(device=device).count() == 10


def test_change_password_keeps_the_session_and_is_audited(owner_client, owner):
    response = owner_client.post(
        reverse("accounts:password_change"),
        {
            "old_password": factories.PASSWORD,
            "new_password1": "a brand new passphrase 77",
            "new_password2": "a brand new passphrase 77",
        },
    )
    assert response.status_code == 302
    owner.refresh_from_db()
    assert owner.check_password("a brand new passphrase 77")
    assert owner.password.startswith("argon2$")
    assert owner_client.get(reverse("accounts:security")).status_code == 200
    assert AuditEvent.objects.filter(action="auth.password_changed").exists()


def test_the_last_authenticator_cannot_be_removed(owner_client, owner):
    device = owner.authenticatordevice_set.get()
    owner_client.post(reverse("accounts:totp_remove", kwargs={"pk": device.pk}))
    assert owner.authenticatordevice_set.filter(pk=device.pk).exists()


def test_password_reset_by_email_sets_a_password_and_unlocks(client, owner):
    User.objects.filter(pk=owner.pk).update(locked_at="2026-01-01T00:00Z", failed_auth_count=60)
    client.post(reverse("accounts:password_reset"), {"email": owner.email.upper()})
    assert len(mail.outbox) == 1
    link = next(w for w in mail.outbox[0].body.split() if "/account/reset/" in w)
    path = link.split("://", 1)[1].split("/", 1)[1]
    form_page = client.get("/" + path, follow=True)
    assert form_page.context["validlink"]
    done = client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": "fresh passphrase 12345", "new_password2": "fresh passphrase 12345"},
    )
    assert done.status_code == 302
    owner.refresh_from_db()
    assert owner.check_password("fresh passphrase 12345") and owner.locked_at is None
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {
        "auth.password_reset_requested",
        "auth.password_reset",
        "auth.account_unlocked",
    } <= actions
    # The link works once.
    assert not client.get("/" + path, follow=True).context["validlink"]


def test_password_reset_for_an_unknown_email_looks_the_same(client, db):
    response = client.post(reverse("accounts:password_reset"), {"email": "ghost@example.com"})
    assert response.status_code == 302 and not mail.outbox


def test_createsuperuser_works_with_the_email_login(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "operator passphrase 99")
    call_command("createsuperuser", "--noinput", "--email", "ops@example.com")
    user = User.objects.get(email="ops@example.com")
    assert user.is_staff and user.is_superuser and user.check_password("operator passphrase 99")
