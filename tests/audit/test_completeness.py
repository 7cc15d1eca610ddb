"""Audit completeness: one registry names the actions, and each one is emitted by its entry point.

Two halves:

- Dynamic: ``SCENARIOS`` maps every name in ``audit.actions.ACTIONS`` to a scenario that drives
  the entry point a person, bot, operator or cron job really uses (a portal page through the test
  client, an API request with a Bearer key, a management command, an admin page) and shows that
  the action was recorded by that request or command, with the expected kind of actor.
- Static: the source of accounts/, keys/, audit/ and config/ is read with ``ast``; every action
  name it hands to ``audit.record()`` is in the registry (no unnamed action) and every registry
  name is handed to it somewhere (no dead name).
"""

import ast
import json
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from functools import cached_property
from io import StringIO
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
from django.core import mail
from django.core.management import call_command
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone
from django_otp.oath import TOTP

from accounts import conf, lockout, mfa
from accounts import conf as accounts_conf
from accounts import services as account_services
from accounts.models import AuthenticatorDevice, Membership, ServiceID, Tenant, User
from accounts.principals import Principal
from audit import summaries
from audit.actions import ACTIONS
from audit.models import AuditEvent
from keys import services as key_services
from keys.models import ApiKey
from tests import factories
from tests.accounts.soft_authenticator import SoftAuthenticator, make_passkey

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]

ROOT = Path(__file__).resolve().parents[2]
SOURCE_PACKAGES = (
    "accounts",
    "keys",
    "audit",
    "api",
    "common",
    "config",
    "webhooks",
    "federation",
    "metrics",
)
REGISTRY_FILE = Path("audit", "actions.py")
NEW_PASSWORD = "a brand new passphrase 77"


# --- The world a scenario acts in -----------------------------------------------------------


class World:
    """Test clients plus lazily built data: a scenario only pays for (and audits) what it uses.

    A scenario prepares what it needs, then drives its entry point inside ``acting()``; only the
    events recorded inside that block count as emitted by the entry point.
    """

    def __init__(self, client: Client, api_client) -> None:
        self.client = client
        self.api_client = api_client
        self.recorded: list[AuditEvent] | None = None

    @cached_property
    def tenant(self) -> Tenant:
        return factories.make_tenant("acme")

    @cached_property
    def owner_membership(self) -> Membership:
        return self.tenant.memberships.select_related("user", "tenant").get(role="owner")

    @property
    def owner(self) -> User:
        return self.owner_membership.user

    def add_member(self, role: str = "member") -> Membership:
        return factories.add_member(self.tenant, role)

    def as_user(self, user: User, *, sudo: bool = True) -> Client:
        """Return the portal client, logged in as ``user`` with a verified second factor."""
        factories.verify_session(self.client, user, sudo=sudo)
        return self.client

    def as_owner(self) -> Client:
        return self.as_user(self.owner)

    def as_operator(self) -> Client:
        """Return the portal client as a verified staff superuser (an operator)."""
        operator = factories.make_user("ops@example.com")
        operator.is_staff = operator.is_superuser = True
        operator.save(update_fields=["is_staff", "is_superuser"])
        return self.as_user(operator)

    def api_as(self, key_owner, *, scopes: list[str]):
        """Return ``(api_client with a Bearer key of key_owner, the key)``."""
        key, token = factories.make_api_key(key_owner, scopes=scopes)
        self.api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return self.api_client, key

    @contextmanager
    def acting(self) -> Iterator[None]:
        """Keep the events recorded inside this block: what the entry point emitted."""
        assert self.recorded is None, "a scenario drives its entry point in one acting() block"
        before = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
        yield
        self.recorded = list(AuditEvent.objects.filter(id__gt=before).order_by("id"))


def _url(name: str, **kwargs) -> str:
    return reverse(name, kwargs={"slug": "acme", **kwargs})


def _login(client: Client, user: User, password: str = factories.PASSWORD):
    return client.post(reverse("accounts:login"), {"email": user.email, "password": password})


def _code(device: AuthenticatorDevice) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"


def _old_audit_event() -> AuditEvent:
    """An event old enough to be sealed (outside audit_seal's safety window)."""
    return AuditEvent.objects.create(
        occurred_at=timezone.now() - timedelta(minutes=5),
        actor_kind="system",
        action="auth.logged_out",
    )


# --- Scenarios: one per registry action ----------------------------------------------------

SCENARIOS: dict[str, Callable[[World], None]] = {}
ACTOR_KINDS: dict[str, str] = {}


def scenario(action: str, *, actor: str) -> Callable:
    """Register the decorated function as the scenario of ``action``, recorded by ``actor``."""

    def register(fn: Callable[[World], None]) -> Callable[[World], None]:
        assert action not in SCENARIOS, f"two scenarios for {action}"
        SCENARIOS[action] = fn
        ACTOR_KINDS[action] = actor
        return fn

    return register


# Authentication (portal)


@scenario("auth.login_succeeded", actor="user")
def _login_succeeded(w: World) -> None:
    """POST /account/login/ with the right password."""
    with w.acting():
        response = _login(w.client, w.owner)
    assert response.status_code == 302


@scenario("auth.login_failed", actor="user")
def _login_failed(w: World) -> None:
    """POST /account/login/ with a wrong password."""
    with w.acting():
        response = _login(w.client, w.owner, "wrong password")
    assert response.status_code == 200


@scenario("auth.login_throttled", actor="user")
def _login_throttled(w: World) -> None:
    """POST /account/login/ while the e-mail backs off from this address after failures."""
    for _ in range(lockout.BACKOFF_AFTER):
        _login(w.client, w.owner, "wrong password")
    with w.acting():
        response = _login(w.client, w.owner)
    assert response.status_code == 429


@scenario("auth.account_locked", actor="user")
def _account_locked(w: World) -> None:
    """POST /account/login/ with a wrong password, one failure before the lock."""
    User.objects.filter(pk=w.owner.pk).update(
        failed_auth_count=conf.settings.LOCK_AFTER_FAILURES - 1
    )
    with w.acting():
        _login(w.client, w.owner, "wrong password")
    assert User.objects.get(pk=w.owner.pk).locked_at is not None


@scenario("auth.account_unlocked", actor="operator")
def _account_unlocked(w: World) -> None:
    """Admin user changelist, action "Unlock selected accounts"."""
    locked = w.owner
    User.objects.filter(pk=locked.pk).update(
        locked_at=timezone.now(), failed_auth_count=conf.settings.LOCK_AFTER_FAILURES
    )
    client = w.as_operator()
    with w.acting():
        response = client.post(
            reverse("admin:accounts_user_changelist"),
            {"action": "unlock_accounts", "_selected_action": [locked.pk]},
        )
    assert response.status_code == 302
    assert User.objects.get(pk=locked.pk).locked_at is None


@scenario("auth.logged_out", actor="user")
def _logged_out(w: World) -> None:
    """POST /account/logout/."""
    client = w.as_owner()
    with w.acting():
        response = client.post(reverse("accounts:logout"))
    assert response.status_code == 302


@scenario("auth.session_expired", actor="user")
def _session_expired(w: World) -> None:
    """A portal page opened after the idle timeout (SessionLifetimeMiddleware)."""
    client = w.as_owner()
    client.get(reverse("accounts:security"))
    session = client.session
    session["keyward_seen_at"] -= accounts_conf.settings.SESSION_IDLE_TIMEOUT + 1
    session.save()
    with w.acting():
        response = client.get(reverse("accounts:security"))
    assert response.status_code == 302


@scenario("auth.password_changed", actor="user")
def _password_changed(w: World) -> None:
    """POST /account/password/."""
    client = w.as_owner()
    with w.acting():
        response = client.post(
            reverse("accounts:password_change"),
            {
                "old_password": factories.PASSWORD,
                "new_password1": NEW_PASSWORD,
                "new_password2": NEW_PASSWORD,
            },
        )
    assert response.status_code == 302


@scenario("auth.password_reset", actor="user")
def _password_reset(w: World) -> None:
    """POST the set-password form reached through the e-mailed reset link."""
    w.client.post(reverse("accounts:password_reset"), {"email": w.owner.email})
    link = next(word for word in mail.outbox[-1].body.split() if "/account/reset/" in word)
    form_page = w.client.get(urlsplit(link).path, follow=True)
    assert form_page.context["validlink"]
    with w.acting():
        response = w.client.post(
            form_page.redirect_chain[-1][0],
            {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
        )
    assert response.status_code == 302


@scenario("auth.password_reset_requested", actor="anonymous")
def _password_reset_requested(w: World) -> None:
    """POST /account/password-reset/."""
    with w.acting():
        response = w.client.post(reverse("accounts:password_reset"), {"email": w.owner.email})
    assert response.status_code == 302


@scenario("auth.password_reset_throttled", actor="anonymous")
def _password_reset_throttled(w: World) -> None:
    """POST /account/password-reset/ once more than KEYWARD_PASSWORD_RESET_ACCOUNT_RATE allows."""
    with override_settings(KEYWARD_PASSWORD_RESET_ACCOUNT_RATE="1/hour"):
        w.client.post(reverse("accounts:password_reset"), {"email": w.owner.email})
        with w.acting():
            response = w.client.post(reverse("accounts:password_reset"), {"email": w.owner.email})
    assert response.status_code == 429


# Second factor


@scenario("mfa.enrolled", actor="user")
def _mfa_enrolled(w: World) -> None:
    """POST /account/mfa/enrol/ with the app's code, after a first password login."""
    user = factories.make_user("new@acme.example", totp=False)
    factories.add_member(w.tenant, "member", user)
    _login(w.client, user)
    assert w.client.get(reverse("accounts:mfa_enrol")).status_code == 200
    device = AuthenticatorDevice.objects.get(user=user, confirmed=False)
    with w.acting():
        response = w.client.post(reverse("accounts:mfa_enrol"), {"code": _code(device)})
    assert response.status_code == 200


@scenario("mfa.verified", actor="user")
def _mfa_verified(w: World) -> None:
    """POST /account/mfa/verify/ with the app's code after the password."""
    _login(w.client, w.owner)
    with w.acting():
        response = w.client.post(
            reverse("accounts:mfa_verify"), {"code": factories.totp_code(w.owner)}
        )
    assert response.status_code == 302


@scenario("mfa.verify_failed", actor="user")
def _mfa_verify_failed(w: World) -> None:
    """POST /account/mfa/verify/ with a wrong code."""
    _login(w.client, w.owner)
    wrong = "000000" if factories.totp_code(w.owner) != "000000" else "111111"
    with w.acting():
        response = w.client.post(reverse("accounts:mfa_verify"), {"code": wrong})
    assert response.status_code == 200


@scenario("mfa.sudo_verified", actor="user")
def _mfa_sudo_verified(w: World) -> None:
    """POST /account/sudo/ with the app's code, in a verified session without fresh sudo."""
    client = w.as_user(w.owner, sudo=False)
    with w.acting():
        response = client.post(reverse("accounts:sudo"), {"code": factories.totp_code(w.owner)})
    assert response.status_code == 302


@scenario("mfa.device_removed", actor="user")
def _mfa_device_removed(w: World) -> None:
    """POST /account/security/authenticators/<pk>/remove/ (not the last one)."""
    client = w.as_owner()
    second = AuthenticatorDevice.objects.create(user=w.owner, name="tablet", confirmed=True)
    with w.acting():
        response = client.post(reverse("accounts:totp_remove", kwargs={"pk": second.pk}))
    assert response.status_code == 302
    assert not AuthenticatorDevice.objects.filter(pk=second.pk).exists()


@scenario("mfa.passkey_added", actor="user")
def _mfa_passkey_added(w: World) -> None:
    """The registration ceremony: POST /account/security/passkeys/add/ (a name), then
    /account/mfa/passkeys/register/begin/ and .../complete/ (a software authenticator)."""
    client = w.as_owner()
    authenticator = SoftAuthenticator()
    client.post(reverse("accounts:passkey_add"), {"name": "laptop"})
    options = client.post(reverse("accounts:passkey_register_begin")).json()
    answer = json.dumps(authenticator.create(options))
    with w.acting():
        response = client.post(
            reverse("accounts:passkey_register_complete"), answer, content_type="application/json"
        )
    assert response.status_code == 200


@scenario("mfa.passkey_removed", actor="user")
def _mfa_passkey_removed(w: World) -> None:
    """POST /account/security/passkeys/<pk>/remove/ (not the last factor)."""
    client = w.as_owner()
    passkey = make_passkey(w.owner)
    with w.acting():
        response = client.post(reverse("accounts:passkey_remove", kwargs={"pk": passkey.pk}))
    assert response.status_code == 302


@scenario("auth.session_ended", actor="user")
def _session_ended(w: World) -> None:
    """POST /account/security/sessions/<pk>/end/: another of one's own sessions."""
    client = w.as_owner()
    other = Client()
    factories.verify_session(other, w.owner)
    assert other.get(reverse("accounts:security")).status_code == 200
    with w.acting():
        response = client.post(
            reverse("accounts:session_end", kwargs={"pk": other.session["keyward_session_ref"]})
        )
    assert response.status_code == 302


@scenario("mfa.backup_codes_generated", actor="user")
def _mfa_backup_codes_generated(w: World) -> None:
    """POST /account/security/backup-codes/."""
    client = w.as_owner()
    with w.acting():
        response = client.post(reverse("accounts:backup_codes_regenerate"))
    assert response.status_code == 200


@scenario("mfa.backup_code_used", actor="user")
def _mfa_backup_code_used(w: World) -> None:
    """POST /account/mfa/verify/ with a backup code after the password."""
    codes = mfa.backup_codes_generate(user=w.owner)
    _login(w.client, w.owner)
    with w.acting():
        response = w.client.post(reverse("accounts:mfa_verify"), {"code": codes[0]})
    assert response.status_code == 302


# Tenants, members, service IDs


@scenario("tenant.created", actor="cli")
def _tenant_created(w: World) -> None:
    """manage.py createtenant."""
    with w.acting():
        call_command(
            "createtenant",
            "--name",
            "Initech",
            "--slug",
            "initech",
            "--owner-email",
            "boss@initech.example",
            stdout=StringIO(),
        )


@scenario("tenant.policy_changed", actor="user")
def _tenant_policy_changed(w: World) -> None:
    """POST /t/<slug>/policy/ as the owner."""
    client = w.as_owner()
    policy = {
        "max_key_lifetime_days": "90",
        "default_key_lifetime_days": "7",
        "allow_non_expiring_keys": "",
        "revoke_unused_after_days": "",
        "leak_policy": "revoke_and_notify",
        "allowed_ips": "",
        "key_rate": "",
    }
    with w.acting():
        response = client.post(_url("keys:policy"), policy)
    assert response.status_code == 302


@scenario("member.invited", actor="user")
def _member_invited(w: World) -> None:
    """POST /t/<slug>/members/invite/."""
    client = w.as_owner()
    with w.acting():
        response = client.post(
            _url("accounts:member_invite"), {"email": "new@example.com", "role": "member"}
        )
    assert response.status_code == 302


@scenario("member.invitation_revoked", actor="user")
def _member_invitation_revoked(w: World) -> None:
    """POST /t/<slug>/invitations/<pk>/revoke/."""
    invitation, _ = account_services.invitation_create(
        actor=Principal.of_membership(w.owner_membership), email="new@example.com", role="member"
    )
    client = w.as_owner()
    with w.acting():
        response = client.post(_url("accounts:invitation_revoke", pk=invitation.pk))
    assert response.status_code == 302


@scenario("member.joined", actor="user")
def _member_joined(w: World) -> None:
    """Open the invitation link, then POST /invite/accept/ as a new user."""
    _, link = account_services.invitation_create(
        actor=Principal.of_membership(w.owner_membership), email="bob@example.com", role="member"
    )
    assert w.client.get(urlsplit(link).path).status_code == 302
    with w.acting():
        response = w.client.post(
            reverse("accounts:invitation_accept"),
            {
                "full_name": "Bob",
                "password1": factories.PASSWORD,
                "password2": factories.PASSWORD,
            },
        )
    assert response.status_code == 302


@scenario("member.role_changed", actor="user")
def _member_role_changed(w: World) -> None:
    """POST /t/<slug>/members/<pk>/role/."""
    member = w.add_member()
    client = w.as_owner()
    with w.acting():
        response = client.post(_url("accounts:member_role", pk=member.pk), {"role": "auditor"})
    assert response.status_code == 302


@scenario("member.removed", actor="user")
def _member_removed(w: World) -> None:
    """POST /t/<slug>/members/<pk>/remove/."""
    member = w.add_member()
    client = w.as_owner()
    with w.acting():
        response = client.post(_url("keys:member_remove", pk=member.pk))
    assert response.status_code == 302


@scenario("service_id.created", actor="user")
def _service_id_created(w: World) -> None:
    """POST /t/<slug>/service-ids/."""
    client = w.as_owner()
    with w.acting():
        response = client.post(
            _url("accounts:service_ids"),
            {"name": "ci-deployer", "description": "CI", "role": "member"},
        )
    assert response.status_code == 302


@scenario("service_id.changed", actor="key")
def _service_id_changed(w: World) -> None:
    """PATCH /api/v1/service-ids/<pk>/ (the portal only enables and disables)."""
    service_id = factories.make_service_id(w.tenant)
    api, _ = w.api_as(w.owner_membership, scopes=["service_ids:write"])
    with w.acting():
        response = api.patch(
            f"/api/v1/service-ids/{service_id.pk}/", {"description": "deploys"}, format="json"
        )
    assert response.status_code == 200


@scenario("service_id.disabled", actor="user")
def _service_id_disabled(w: World) -> None:
    """POST /t/<slug>/service-ids/<pk>/toggle/ on an active service ID."""
    service_id = factories.make_service_id(w.tenant)
    client = w.as_owner()
    with w.acting():
        response = client.post(_url("accounts:service_id_toggle", pk=service_id.pk))
    assert response.status_code == 302


@scenario("service_id.enabled", actor="user")
def _service_id_enabled(w: World) -> None:
    """POST /t/<slug>/service-ids/<pk>/toggle/ on a disabled service ID."""
    service_id = factories.make_service_id(w.tenant)
    ServiceID.objects.filter(pk=service_id.pk).update(is_active=False)
    client = w.as_owner()
    with w.acting():
        response = client.post(_url("accounts:service_id_toggle", pk=service_id.pk))
    assert response.status_code == 302


# Keys


@scenario("key.issued", actor="user")
def _key_issued(w: World) -> None:
    """POST /t/<slug>/keys/new/."""
    client = w.as_owner()
    with w.acting():
        response = client.post(
            _url("keys:issue"),
            {"name": "ci deploy", "expiry": "30", "scopes": ["keys:read"], "allowed_ips": ""},
        )
    assert response.status_code == 200
    assert ApiKey.objects.filter(name="ci deploy").exists()


@scenario("key.rotated", actor="user")
def _key_rotated(w: World) -> None:
    """POST /t/<slug>/keys/<pk>/rotate/."""
    key, _ = factories.make_api_key(w.owner_membership)
    client = w.as_owner()
    with w.acting():
        response = client.post(_url("keys:rotate", pk=key.pk), {"grace": "24h"})
    assert response.status_code == 200
    assert ApiKey.objects.filter(rotated_from=key).exists()


@scenario("key.revoked", actor="user")
def _key_revoked(w: World) -> None:
    """POST /t/<slug>/keys/<pk>/revoke/."""
    key, _ = factories.make_api_key(w.owner_membership)
    client = w.as_owner()
    with w.acting():
        response = client.post(_url("keys:revoke", pk=key.pk), {"reason": "laptop stolen"})
    assert response.status_code == 302


@scenario("key.expired", actor="system")
def _key_expired(w: World) -> None:
    """manage.py keys_maintain (cron) after a key's expiry passed."""
    key, _ = factories.make_api_key(w.owner_membership)
    ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(days=1))
    with w.acting():
        call_command("keys_maintain", stdout=StringIO())


@scenario("key.exposed", actor="anonymous")
def _key_exposed(w: World) -> None:
    """GET /api/v1/whoami/?access_token=<a real token>."""
    _, token = factories.make_api_key(w.owner_membership)
    with w.acting():
        response = w.api_client.get(f"/api/v1/whoami/?access_token={token}")
    assert response.status_code == 400


@scenario("key.scanned", actor="cli")
def _key_scanned(w: World) -> None:
    """manage.py keyward_scan PATH (a pre-commit hook) over a file without tokens."""
    path = Path(tempfile.mkdtemp()) / "README"
    path.write_text("no secrets here\n")
    with w.acting():
        call_command("keyward_scan", str(path), stdout=StringIO())


@scenario("key.expiry_warning_sent", actor="system")
def _key_expiry_warning_sent(w: World) -> None:
    """manage.py keys_maintain (cron) six days before a 30-day key expires."""
    key, _ = factories.make_api_key(w.owner_membership)
    now = timezone.now()
    ApiKey.objects.filter(pk=key.pk).update(
        created_at=now - timedelta(days=24), expires_at=now + timedelta(days=6)
    )
    with w.acting():
        call_command("keys_maintain", stdout=StringIO())


@scenario("key.unused_warning_sent", actor="system")
def _key_unused_warning_sent(w: World) -> None:
    """manage.py keys_maintain (cron) 61 days into a 90-day inactivity policy."""
    Tenant.objects.filter(pk=w.tenant.pk).update(revoke_unused_after_days=90)
    key, _ = factories.make_api_key(w.owner_membership, days=365)
    ApiKey.objects.filter(pk=key.pk).update(created_at=timezone.now() - timedelta(days=61))
    with w.acting():
        call_command("keys_maintain", stdout=StringIO())


@scenario("key.new_network", actor="system")
def _key_new_network(w: World) -> None:
    """manage.py keys_maintain (cron) after a key's first request from a second network (its
    very first network is no new one)."""
    api, _ = w.api_as(w.owner_membership, scopes=["keys:read"])
    assert api.get("/api/v1/whoami/", REMOTE_ADDR="198.51.100.7").status_code == 200
    assert api.get("/api/v1/whoami/", REMOTE_ADDR="203.0.113.7").status_code == 200
    with w.acting(), override_settings(KEYWARD_USAGE_ROLLUP_DELAY=0):
        call_command("keys_maintain", stdout=StringIO())


@scenario("key.network_alert_changed", actor="user")
def _key_network_alert_changed(w: World) -> None:
    """POST /t/<slug>/keys/<pk>/alerts/ with enabled=on."""
    key, _ = factories.make_api_key(w.owner_membership)
    client = w.as_owner()
    with w.acting():
        response = client.post(_url("keys:alerts", pk=key.pk), {"enabled": "on"})
    assert response.status_code == 302
    assert ApiKey.objects.get(pk=key.pk).alert_on_new_network is True


@scenario("key.scopes_narrowed", actor="user")
def _key_scopes_narrowed(w: World) -> None:
    """POST /t/<slug>/keys/<pk>/narrow/ (the preview's confirmation) after a key observed for
    90 days used one of its two scopes."""
    api, key = w.api_as(w.owner_membership, scopes=["keys:read", "members:read"])
    assert api.get("/api/v1/keys/").status_code == 200
    with override_settings(KEYWARD_USAGE_ROLLUP_DELAY=0):
        call_command("keys_maintain", stdout=StringIO())
    ApiKey.objects.filter(pk=key.pk).update(created_at=timezone.now() - timedelta(days=91))
    client = w.as_owner()
    with w.acting():
        response = client.post(_url("keys:narrow", pk=key.pk), {"keep": ["keys:read"]})
    assert response.status_code == 302
    assert ApiKey.objects.get(pk=key.pk).scopes == ["keys:read"]


@scenario("key.leak_reported", actor="system")
def _key_leak_reported(w: World) -> None:
    """POST /api/v1/leaks/ with a signed report naming a live key."""
    _, token = factories.make_api_key(w.owner_membership)
    private_key, pem = factories.make_leak_signer()
    body = json.dumps([{"token": token, "type": "keyward", "url": "https://x.test/a"}]).encode()
    with w.acting(), override_settings(KEYWARD_LEAK_REPORT_PUBLIC_KEYS={"scanner": pem}):
        response = w.api_client.post(
            "/api/v1/leaks/",
            body,
            content_type="application/json",
            HTTP_KEYWARD_KEY_ID="scanner",
            HTTP_KEYWARD_SIGNATURE=factories.sign_leak_report(private_key, body),
        )
    assert response.status_code == 200


@scenario("key.leak_report_refused", actor="anonymous")
def _key_leak_report_refused(w: World) -> None:
    """POST /api/v1/leaks/ without a signature."""
    with w.acting():
        response = w.api_client.post("/api/v1/leaks/", "[]", content_type="application/json")
    assert response.status_code == 401


@scenario("key.looked_up", actor="cli")
def _key_looked_up(w: World) -> None:
    """manage.py keyward_lookup_token with a token on standard input."""
    _, token = factories.make_api_key(w.owner_membership)
    with w.acting():
        call_command("keyward_lookup_token", stdin=StringIO(token + "\n"), stdout=StringIO())


@scenario("key.updated", actor="user")
def _key_updated(w: World) -> None:
    """POST /t/<slug>/keys/<pk>/edit/ narrowing a key and renaming it."""
    key, _ = factories.make_api_key(w.owner_membership, scopes=["keys:read", "members:read"])
    client = w.as_owner()
    data = {
        "name": "renamed",
        "description": "",
        "scopes": ["keys:read"],
        "expires_on": key.expires_at.date().isoformat(),
        "allowed_ips": "",
        "rate": "",
    }
    with w.acting():
        response = client.post(_url("keys:edit", pk=key.pk), data)
    assert response.status_code == 302


@scenario("key.rotation_completed", actor="key")
def _key_rotation_completed(w: World) -> None:
    """GET /api/v1/whoami/ with the successor of a key rotated "until the new key is first
    used": its first request retires the old key."""
    key, _ = factories.make_api_key(w.owner_membership)
    _, token = key_services.key_rotate(
        actor=Principal.of_membership(w.owner_membership), key=key, grace="first_use"
    )
    with w.acting():
        response = w.api_client.get("/api/v1/whoami/", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200


@scenario("key.approval_requested", actor="user")
def _key_approval_requested(w: World) -> None:
    """POST /t/<slug>/keys/new/ where the tenant's policy holds every key for approval."""
    Tenant.objects.filter(pk=w.tenant.pk).update(key_approval="all")
    client = w.as_owner()
    with w.acting():
        response = client.post(
            _url("keys:issue"),
            {"name": "pending", "expiry": "30", "scopes": ["keys:read"], "allowed_ips": ""},
        )
    assert response.status_code == 200


def _pending_key(w: World):
    Tenant.objects.filter(pk=w.tenant.pk).update(key_approval="all")
    w.tenant.refresh_from_db()
    return factories.make_api_key(w.add_member("member"))[0]


@scenario("key.approved", actor="user")
def _key_approved(w: World) -> None:
    """POST /t/<slug>/keys/approvals/<pk>/ by an owner, with a reason."""
    key = _pending_key(w)
    client = w.as_owner()
    with w.acting():
        response = client.post(
            _url("keys:approval_decide", pk=key.pk), {"decision": "approve", "reason": "ok"}
        )
    assert response.status_code == 302


@scenario("key.approval_denied", actor="system")
def _key_approval_denied(w: World) -> None:
    """manage.py keys_maintain (cron) after a key waited longer than the policy's days."""
    key = _pending_key(w)
    ApiKey.objects.filter(pk=key.pk).update(created_at=timezone.now() - timedelta(days=8))
    with w.acting():
        call_command("keys_maintain", stdout=StringIO())


@scenario("key.approval_digest_sent", actor="system")
def _key_approval_digest_sent(w: World) -> None:
    """manage.py keys_approval_digest (daily cron) with a key waiting for approval."""
    _pending_key(w)
    with w.acting():
        call_command("keys_approval_digest", stdout=StringIO())


@scenario("key.inventory_exported", actor="user")
def _key_inventory_exported(w: World) -> None:
    """POST /t/<slug>/keys/export.csv."""
    client = w.as_owner()
    with w.acting():
        response = client.post(_url("keys:export"))
        b"".join(response.streaming_content)
    assert response.status_code == 200


# API


@scenario("api.request", actor="key")
def _api_request(w: World) -> None:
    """GET /api/v1/whoami/ with a Bearer key."""
    api, _ = w.api_as(w.owner_membership, scopes=["keys:read"])
    with w.acting():
        response = api.get("/api/v1/whoami/")
    assert response.status_code == 200


@scenario("api.denied", actor="key")
def _api_denied(w: World) -> None:
    """GET /api/v1/members/ with a Bearer key that lacks members:read."""
    api, _ = w.api_as(w.owner_membership, scopes=["keys:read"])
    with w.acting():
        response = api.get("/api/v1/members/")
    assert response.status_code == 403


@scenario("api.refused", actor="anonymous")
def _api_refused(w: World) -> None:
    """GET /api/v1/whoami/ with a malformed key, three times: counted, written per minute."""
    with w.acting():
        for _ in range(3):
            response = Client().get("/api/v1/whoami/", HTTP_AUTHORIZATION="Bearer kwp_nope")
            assert response.status_code == 401
        summaries.flush(everything=True)  # what the first request after the minute does


@scenario("api.throttled", actor="key")
def _api_throttled(w: World) -> None:
    """GET /api/v1/whoami/ with a key over its tenant's rate: its 429s, one event a minute."""
    Tenant.objects.filter(pk=w.tenant.pk).update(key_rate="2/min")
    api, _ = w.api_as(w.owner_membership, scopes=["keys:read"])
    assert [api.get("/api/v1/whoami/").status_code for _ in range(2)] == [200, 200]
    with w.acting():
        for _ in range(3):
            assert api.get("/api/v1/whoami/").status_code == 429
        summaries.flush(everything=True)


# Audit log itself


@scenario("audit.sealed", actor="cli")
def _audit_sealed(w: World) -> None:
    """manage.py audit_seal (cron) with an event older than the safety window."""
    _old_audit_event()
    with w.acting():
        call_command("audit_seal", stdout=StringIO())


@scenario("audit.pruned", actor="cli")
def _audit_pruned(w: World) -> None:
    """manage.py audit_prune --before <tomorrow> over one sealed event."""
    _old_audit_event()
    call_command("audit_seal", stdout=StringIO())
    tomorrow = (timezone.now() + timedelta(days=1)).date().isoformat()
    with w.acting():
        call_command("audit_prune", "--before", tomorrow, stdout=StringIO())


@scenario("audit.verified", actor="cli")
def _audit_verified(w: World) -> None:
    """manage.py audit_verify."""
    with w.acting():
        call_command("audit_verify", stdout=StringIO())


# Operators


def _service_id_admin_form(service_id: ServiceID | None, tenant: Tenant, **overrides) -> dict:
    now = timezone.now()
    return {
        "tenant": tenant.pk,
        "name": service_id.name if service_id else "from-admin",
        "description": service_id.description if service_id else "",
        "role": service_id.role if service_id else "member",
        "is_active": "on",
        "created_by": "",
        "created_at_0": now.date().isoformat(),
        "created_at_1": now.time().replace(microsecond=0).isoformat(),
        "_save": "Save",
    } | overrides


@scenario("admin.added", actor="operator")
def _admin_added(w: World) -> None:
    """POST /admin/accounts/serviceid/add/."""
    tenant = w.tenant
    client = w.as_operator()
    with w.acting():
        response = client.post(
            reverse("admin:accounts_serviceid_add"), _service_id_admin_form(None, tenant)
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert ServiceID.objects.filter(name="from-admin").exists()


@scenario("admin.changed", actor="operator")
def _admin_changed(w: World) -> None:
    """POST /admin/accounts/serviceid/<pk>/change/."""
    service_id = factories.make_service_id(w.tenant)
    client = w.as_operator()
    with w.acting():
        response = client.post(
            reverse("admin:accounts_serviceid_change", args=[service_id.pk]),
            _service_id_admin_form(service_id, w.tenant, description="changed by ops"),
        )
    assert response.status_code == 302, response.content.decode()[:2000]


@scenario("admin.deleted", actor="operator")
def _admin_deleted(w: World) -> None:
    """POST /admin/accounts/serviceid/<pk>/delete/."""
    service_id = factories.make_service_id(w.tenant)
    client = w.as_operator()
    with w.acting():
        response = client.post(
            reverse("admin:accounts_serviceid_delete", args=[service_id.pk]), {"post": "yes"}
        )
    assert response.status_code == 302
    assert not ServiceID.objects.filter(pk=service_id.pk).exists()


@scenario("admin.denied", actor="user")
def _admin_denied(w: World) -> None:
    """GET /admin/ as a verified person who is not an operator."""
    client = w.as_user(w.add_member().user)
    with w.acting():
        response = client.get("/admin/", follow=True)
    assert response.status_code == 403


# Webhooks


def _webhook_endpoint(w: World):
    """An endpoint of the tenant's, added through the service (loopback allowed for it)."""
    from webhooks import services as webhook_services

    with override_settings(KEYWARD_WEBHOOKS_ALLOW_LOOPBACK=True, KEYWARD_WEBHOOKS_ALLOW_HTTP=True):
        endpoint, _ = webhook_services.endpoint_create(
            actor=Principal.of_membership(w.owner_membership),
            url="http://127.0.0.1:9/hook",
            events=["key.issued"],
        )
    return endpoint


@scenario("webhook.endpoint_created", actor="user")
def _webhook_endpoint_created(w: World) -> None:
    """POST /t/<slug>/webhooks/ with a URL and events."""
    client = w.as_owner()
    with (
        w.acting(),
        override_settings(KEYWARD_WEBHOOKS_ALLOW_LOOPBACK=True, KEYWARD_WEBHOOKS_ALLOW_HTTP=True),
    ):
        response = client.post(
            _url("webhooks:list"), {"url": "http://127.0.0.1:9/hook", "events": ["key.issued"]}
        )
    assert response.status_code == 200 and b"whsec_" in response.content


@scenario("webhook.endpoint_deleted", actor="user")
def _webhook_endpoint_deleted(w: World) -> None:
    """POST /t/<slug>/webhooks/<pk>/delete/."""
    endpoint = _webhook_endpoint(w)
    client = w.as_owner()
    with w.acting():
        response = client.post(_url("webhooks:delete", pk=endpoint.pk))
    assert response.status_code == 302


@scenario("webhook.secret_rotated", actor="user")
def _webhook_secret_rotated(w: World) -> None:
    """POST /t/<slug>/webhooks/<pk>/rotate/."""
    endpoint = _webhook_endpoint(w)
    client = w.as_owner()
    with w.acting():
        response = client.post(_url("webhooks:rotate", pk=endpoint.pk))
    assert response.status_code == 200


@scenario("webhook.test_sent", actor="user")
def _webhook_test_sent(w: World) -> None:
    """POST /t/<slug>/webhooks/<pk>/test/."""
    endpoint = _webhook_endpoint(w)
    client = w.as_owner()
    with w.acting():
        response = client.post(_url("webhooks:test", pk=endpoint.pk))
    assert response.status_code == 302


@scenario("webhook.endpoint_disabled", actor="system")
def _webhook_endpoint_disabled(w: World) -> None:
    """manage.py webhooks_sweep (cron) when an endpoint's deliveries failed for a day."""
    from webhooks.models import WebhookDelivery, WebhookEndpoint

    endpoint = _webhook_endpoint(w)
    factories.make_api_key(w.owner_membership)  # key.issued: one outbox row
    long_ago = timezone.now() - timedelta(days=2)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=long_ago)
    WebhookDelivery.objects.update(created_at=long_ago, next_attempt_at=long_ago)
    with w.acting():  # the production default refuses loopback: the attempt fails
        call_command("webhooks_sweep", stdout=StringIO())
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).disabled_at is not None


@scenario("webhook.endpoint_enabled", actor="user")
def _webhook_endpoint_enabled(w: World) -> None:
    """POST /t/<slug>/webhooks/<pk>/enable/ for a disabled endpoint."""
    from webhooks.models import WebhookEndpoint

    endpoint = _webhook_endpoint(w)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(disabled_at=timezone.now())
    client = w.as_owner()
    with w.acting():
        response = client.post(_url("webhooks:enable", pk=endpoint.pk))
    assert response.status_code == 302


# Federation (token exchange, keyless CI)


def _exchange(client: Client, subject_token: str):
    body = {
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "subject_token": subject_token,
        "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
    }
    return client.post(
        "/oauth/token", urlencode(body), content_type="application/x-www-form-urlencoded"
    )


@scenario("signing_key.rotated", actor="cli")
def _signing_key_rotated(w: World) -> None:
    """manage.py jwt_rotate_key."""
    with w.acting():
        call_command("jwt_rotate_key", stdout=StringIO())


@scenario("token.exchanged", actor="key")
def _token_exchanged(w: World) -> None:
    """POST /oauth/token with a Keyward key as the subject token."""
    _, token = factories.make_api_key(w.owner_membership, scopes=["keys:read"])
    with w.acting():
        response = _exchange(Client(), token)
    assert response.status_code == 200, response.content[:300]


@scenario("token.exchange_refused", actor="anonymous")
def _token_exchange_refused(w: World) -> None:
    """POST /oauth/token with a well-formed token that is no key."""
    _, token = factories.make_api_key(w.owner_membership, scopes=["keys:read"])
    unknown = token[:-10] + ("A" if token[-10] != "A" else "B") + token[-9:]
    with w.acting():
        response = _exchange(Client(), unknown)
    assert response.status_code in (400, 401), response.content[:300]


@scenario("token.revoked", actor="anonymous")
def _token_revoked(w: World) -> None:
    """POST /oauth/revoke with a Keyward JWT."""
    _, token = factories.make_api_key(w.owner_membership, scopes=["keys:read"])
    jwt = _exchange(Client(), token).json()["access_token"]
    with w.acting():
        response = Client().post(
            "/oauth/revoke",
            urlencode({"token": jwt}),
            content_type="application/x-www-form-urlencoded",
        )
    assert response.status_code == 200


def _trusts_url(w: World, service_id: ServiceID) -> str:
    return f"/t/{w.tenant.slug}/service-ids/{service_id.pk}/trusts/"


_TRUST_FORM = {
    "issuer": "https://ci.example",
    "audience": "keyward",
    "subject_pattern": "repo:acme/app:ref:refs/heads/main",
    "scopes": ["keys:read"],
}


@scenario("trust.added", actor="user")
def _trust_added(w: World) -> None:
    """POST /t/<slug>/service-ids/<id>/trusts/ by an owner with sudo."""
    deployer = factories.make_service_id(w.tenant, name="deployer", role="admin")
    client = w.as_owner()
    with w.acting():
        response = client.post(_trusts_url(w, deployer), _TRUST_FORM)
    assert response.status_code == 302


@scenario("trust.removed", actor="user")
def _trust_removed(w: World) -> None:
    """POST /t/<slug>/service-ids/<id>/trusts/<trust>/remove/ by an owner with sudo."""
    from federation.models import WorkloadTrust

    deployer = factories.make_service_id(w.tenant, name="deployer", role="admin")
    client = w.as_owner()
    assert client.post(_trusts_url(w, deployer), _TRUST_FORM).status_code == 302
    trust = WorkloadTrust.objects.get(service_id=deployer)
    with w.acting():
        response = client.post(f"{_trusts_url(w, deployer)}{trust.pk}/remove/")
    assert response.status_code == 302


# --- Dynamic: each action comes out of its entry point -------------------------------------


@pytest.fixture
def world(client, api_client) -> World:
    return World(client, api_client)


def test_every_registry_action_has_exactly_one_scenario():
    missing = sorted(set(ACTIONS) - set(SCENARIOS))
    extra = sorted(set(SCENARIOS) - set(ACTIONS))
    assert not missing and not extra, (
        f"Actions in audit/actions.py without a scenario (unnamed/untested action): {missing}; "
        f"scenarios for actions not in the registry (dead names): {extra}"
    )


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_each_action_is_recorded_by_the_entry_point_that_should_emit_it(world, action):
    drive = SCENARIOS.get(action)
    if drive is None:
        pytest.fail(f"{action} has no scenario: add one to SCENARIOS in {__name__}")
    drive(world)
    entry_point = drive.__doc__.strip().rstrip(".")
    assert world.recorded is not None, f"the scenario of {action} never entered world.acting()"
    emitted = [event for event in world.recorded if event.action == action]
    assert emitted, (
        f"{action} was not recorded by its entry point ({entry_point}); "
        f"that recorded {[event.action for event in world.recorded]}"
    )
    kinds = {event.actor_kind for event in emitted}
    assert ACTOR_KINDS[action] in kinds, (
        f"{action} from {entry_point} was recorded with actor kinds {sorted(kinds)}, "
        f"expected {ACTOR_KINDS[action]!r}"
    )


# --- Static: the code names only registry actions, and names all of them -------------------

_ACTION_SHAPE = re.compile(r"^[a-z]+(?:_[a-z]+)*\.[a-z]+(?:_[a-z]+)*$")
# Functions that take an action name, and the position of that argument in a call: the audit
# services (checked below against audit/services.py) and the admin's _record(request, obj, ...).
_RECORD_FUNCTIONS = {
    "record": 0,
    "record_request": 0,
    "build_event": 0,
    "_record": 2,
    "record_exchange": 0,  # federation/services.py: a token exchange's event
}
_AUDIT_SERVICE_FILES = (Path("audit", "__init__.py"), Path("audit", "services.py"))
_ACTION_VARIABLE = "action"


def _string_literals(node: ast.AST) -> list[str] | None:
    """Return the strings ``node`` can evaluate to (a literal or a conditional of literals),
    or None when it is anything else."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        body, orelse = _string_literals(node.body), _string_literals(node.orelse)
        return body + orelse if body is not None and orelse is not None else None
    return None


def _callee_name(call: ast.Call) -> str:
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    if isinstance(call.func, ast.Name):
        return call.func.id
    return ""


def _assignments(function: ast.AST) -> dict[str, list[ast.AST]]:
    """Return, per local name, the expressions ``function`` assigns to it (tuples unpacked)."""
    found: dict[str, list[ast.AST]] = {}
    for node in ast.walk(function):
        if not isinstance(node, ast.Assign):
            continue
        for target in node.targets:
            if isinstance(target, ast.Name):
                found.setdefault(target.id, []).append(node.value)
            elif isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                for element, value in zip(target.elts, node.value.elts, strict=False):
                    if isinstance(element, ast.Name):
                        found.setdefault(element.id, []).append(value)
    return found


class ActionNames(ast.NodeVisitor):
    """Collect the action names a module hands to the audit log, and what it cannot check.

    An action is named by: the action argument of ``record()`` / ``audit.record()`` /
    ``record_request()`` / ``build_event()`` / the admin's ``_record(request, obj, action, ...)``
    (a literal, a conditional of literals, a local variable assigned only such values, or a
    parameter of the calling function); an ``action=`` keyword of any call
    (``lockout.auth_failure``, ``user_password_set``, which pass it on to ``record``); a comparison
    with a variable called ``action``.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.names: dict[str, list[str]] = {}  # name -> ["file:line", ...]
        self.record_calls = 0
        self.unchecked: list[str] = []
        self._scopes: list[tuple[set[str], dict[str, list[ast.AST]]]] = []

    def _add(self, node: ast.AST, values: list[str]) -> None:
        for value in values:
            self.names.setdefault(value, []).append(f"{self.path}:{node.lineno}")

    def _unchecked(self, node: ast.AST, where: ast.AST) -> None:
        self.unchecked.append(f"{self.path}:{where.lineno}: {ast.unparse(node)}")

    def _literals(self, node: ast.AST, where: ast.AST) -> bool:
        values = _string_literals(node)
        if values is not None:
            self._add(where, values)
        return values is not None

    def _action_argument(self, node: ast.AST, where: ast.AST) -> None:
        """Collect what ``node``, passed as record()'s action, can be; flag what it cannot."""
        if self._literals(node, where):
            return
        if not isinstance(node, ast.Name) or not self._scopes:
            self._unchecked(node, where)
            return
        parameters, assigned = self._scopes[-1]
        values = assigned.get(node.id, [])
        if not values and node.id not in parameters:
            self._unchecked(node, where)
        for value in values:
            if not self._literals(value, where):
                self._unchecked(value, where)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        arguments = node.args
        parameters = {
            a.arg for a in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
        }
        self._scopes.append((parameters, _assignments(node)))
        self.generic_visit(node)
        self._scopes.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Call(self, node: ast.Call) -> None:
        callee = _callee_name(node)
        if callee in _RECORD_FUNCTIONS:
            self.record_calls += 1
            position = _RECORD_FUNCTIONS[callee]
            if position < len(node.args):
                self._action_argument(node.args[position], node)
        for keyword in node.keywords:
            if keyword.arg == _ACTION_VARIABLE:
                if callee in _RECORD_FUNCTIONS:
                    self._action_argument(keyword.value, node)
                else:
                    self._literals(keyword.value, node)
        self.generic_visit(node)

    def visit_Compare(self, node: ast.Compare) -> None:
        sides = [node.left, *node.comparators]
        if any(isinstance(s, ast.Name) and s.id == _ACTION_VARIABLE for s in sides):
            for side in sides:
                self._literals(side, node)
        self.generic_visit(node)


def _source_files() -> list[Path]:
    files = []
    for package in SOURCE_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if "migrations" in relative.parts or relative == REGISTRY_FILE:
                continue
            files.append(path)
    return files


def _scan(source: str, path: str = "<snippet>") -> ActionNames:
    visitor = ActionNames(path)
    visitor.visit(ast.parse(source, filename=path))
    return visitor


@pytest.fixture(scope="module")
def scanned() -> ActionNames:
    """Every action name in the source of accounts/, keys/, audit/ and config/."""
    total = ActionNames("<all>")
    for path in _source_files():
        found = _scan(path.read_text(), str(path.relative_to(ROOT)))
        for name, places in found.names.items():
            total.names.setdefault(name, []).extend(places)
        total.record_calls += found.record_calls
        total.unchecked.extend(found.unchecked)
    return total


def test_scanner_reads_every_way_this_code_names_an_action():
    found = _scan(
        "audit.record('a.first', actor=None)\n"
        "record('a.second' if x else 'a.third', actor=None)\n"
        "self._record(request, obj, 'a.fourth', {})\n"
        "record_request('a.ninth', actor=None)\n"
        "lockout.auth_failure(user=u, action='a.fifth')\n"
        "def service(flag):\n"
        "    action = 'a.sixth'\n"
        "    if flag:\n"
        "        action, outcome = 'a.seventh', 'denied'\n"
        "    audit.record(action, actor=None)\n"
        "def password_set(*, action):\n"
        "    audit.record(action, actor=None)\n"
        "    if action == 'a.eighth': pass\n"
        "def computed(kind):\n"
        "    action = f'a.{kind}'\n"
        "    audit.record(action, actor=None)\n"
        "    audit.record(GLOBAL_NAME, actor=None)\n"
        "    audit.record('a.' + kind, actor=None)\n"
        "serializers.CharField(source='tenant.slug')\n"
        "action = models.CharField(max_length=64)\n"
    )
    expected = "first second third fourth fifth sixth seventh eighth ninth".split()
    assert set(found.names) == {f"a.{name}" for name in expected}
    assert found.record_calls == 9
    assert found.unchecked == [
        "<snippet>:16: f'a.{kind}'",
        "<snippet>:17: GLOBAL_NAME",
        "<snippet>:18: 'a.' + kind",
    ]


def test_every_audit_service_that_takes_an_action_is_known_to_the_scanner():
    takers = set()
    for relative in _AUDIT_SERVICE_FILES:
        for node in ast.parse((ROOT / relative).read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.args.args[:1]:
                if node.args.args[0].arg == _ACTION_VARIABLE:
                    takers.add(node.name)
    assert takers and takers <= set(_RECORD_FUNCTIONS), (
        f"Teach the scanner the new audit writer(s): {sorted(takers - set(_RECORD_FUNCTIONS))}"
    )


def test_the_code_never_builds_an_action_name_the_scanner_cannot_read(scanned):
    assert scanned.record_calls >= len(ACTIONS) - 10, "the scanner found too few record() calls"
    assert not scanned.unchecked, (
        f"Pass action names as literals (or a variable assigned from literals): {scanned.unchecked}"
    )


def test_every_action_named_in_the_code_is_in_the_registry(scanned):
    unnamed = {name: places for name, places in scanned.names.items() if name not in ACTIONS}
    assert not unnamed, f"Actions recorded but missing from audit/actions.py: {unnamed}"
    assert all(_ACTION_SHAPE.match(name) for name in scanned.names)


def test_every_registry_action_is_named_by_the_code(scanned):
    dead = sorted(set(ACTIONS) - set(scanned.names))
    assert not dead, f"Registry actions that no code hands to audit.record() (dead names): {dead}"
