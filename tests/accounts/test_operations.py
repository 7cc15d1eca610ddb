import os
import subprocess
import sys
from io import StringIO

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import call_command
from django.urls import reverse

from accounts.models import Tenant
from audit.models import AuditEvent
from tests import factories

pytestmark = pytest.mark.django_db


def test_healthz_answers_without_session(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers


def test_readyz_checks_database_and_cache(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_admin_refuses_a_password_only_staff_session(client):
    staff = factories.make_user("ops@example.com")
    staff.is_staff = staff.is_superuser = True
    staff.save()
    client.force_login(staff)
    response = client.get("/admin/", follow=True)
    assert response.redirect_chain[-1][0].startswith(reverse("accounts:mfa_verify"))
    assert "Keyward operations" not in response.content.decode()
    factories.verify_session(client, staff)
    assert client.get("/admin/").status_code == 200


def test_admin_changes_are_audited(client, tenant):
    staff = factories.make_user("ops@example.com")
    staff.is_staff = staff.is_superuser = True
    staff.save()
    factories.verify_session(client, staff)
    url = reverse("admin:accounts_tenant_change", args=[tenant.pk])
    data = {
        "name": "Acme Corp",
        "slug": "acme",
        "max_key_lifetime_days": 365,
        "default_key_lifetime_days": 30,
        "revoke_unused_after_days": 365,
        "leak_policy": "revoke",
        "allowed_ips": "[]",
        "key_rate": "",
        "max_token_lifetime_minutes": 15,
        "expiry_warning_days": "[30, 7, 1]",
        "key_approval": "none",
        "approval_default_scopes": "[]",
        "approval_expire_days": 7,
        "is_active": "on",
        "created_at_0": "2026-01-01",
        "created_at_1": "00:00:00",
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
    }
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    event = AuditEvent.objects.get(action="admin.changed")
    assert event.actor_kind == "operator" and "Name" in event.metadata["fields"]
    assert event.tenant == tenant


def test_createtenant_prints_a_set_password_link_and_is_audited():
    out = StringIO()
    call_command(
        "createtenant",
        "--name",
        "Initech",
        "--slug",
        "initech",
        "--owner-email",
        "b@x.io",
        stdout=out,
    )
    assert "/account/reset/" in out.getvalue()
    tenant = Tenant.objects.get(slug="initech")
    event = AuditEvent.objects.get(action="tenant.created", tenant=tenant)
    assert event.actor_kind == "cli" and event.actor_label == "manage.py createtenant"


def test_createtenant_refuses_a_taken_slug(tenant):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="already exists"):
        call_command("createtenant", "--name", "X", "--slug", "acme", "--owner-email", "c@x.io")


def test_security_headers_on_portal_pages(owner_client):
    response = owner_client.get(reverse("accounts:security"))
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


def test_check_deploy_is_clean_with_production_environment(tmp_path):
    signing_key = tmp_path / "audit-signing.pem"
    signing_key.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    env = {
        "KEYWARD_AUDIT_SIGNING_KEY": str(signing_key),  # else keyward.W010: seals unsigned
        "PATH": os.environ["PATH"],
        "DEBUG": "false",
        "SECRET_KEY": "x" * 20 + "-production-secret-key-with-plenty-of-entropy-0123456789",
        "ALLOWED_HOSTS": "keyward.example.com",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "EMAIL_URL": "smtp+tls://keyward:secret@mail.example.com:587",
        "STATIC_ROOT": str(tmp_path / "static"),  # as collectstatic leaves it (keyward.E030)
    }
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "staticfiles.json").write_text('{"paths": {}, "version": "1.1"}')
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=env,
        capture_output=True,
        text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
