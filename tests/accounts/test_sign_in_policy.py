"""The tenant's sign-in policy "require a phishing-resistant factor" (a passkey)."""

import time

import pytest
from django.urls import reverse

from accounts.decorators import SUDO_PASSKEY_SESSION_KEY, SUDO_SESSION_KEY
from accounts.services.sign_in_policy import PASSKEY_FIRST
from audit.models import AuditEvent
from tests import factories
from tests.accounts.soft_authenticator import make_passkey

pytestmark = pytest.mark.django_db


def _policy_url(tenant) -> str:
    return reverse("accounts:sign_in_policy", kwargs={"slug": tenant.slug})


def _require(tenant, value: bool = True) -> None:
    tenant.require_phishing_resistant_mfa = value
    tenant.save(update_fields=["require_phishing_resistant_mfa"])


def _passkey_sudo(client) -> None:
    session = client.session
    session[SUDO_SESSION_KEY] = session[SUDO_PASSKEY_SESSION_KEY] = time.time()
    session.save()


def test_an_owner_without_a_passkey_cannot_require_one(owner_client, tenant):
    response = owner_client.post(_policy_url(tenant), {"require_passkey": "on"})
    assert response.status_code == 200
    assert PASSKEY_FIRST in response.content.decode()
    tenant.refresh_from_db()
    assert tenant.require_phishing_resistant_mfa is False
    assert not AuditEvent.objects.filter(action="tenant.policy_changed").exists()


def test_an_owner_with_a_passkey_requires_one_and_it_is_audited(owner_client, owner, tenant):
    make_passkey(owner)
    factories.add_member(tenant, "member")
    page = owner_client.get(_policy_url(tenant)).content.decode()
    assert "1 member of" in page  # the new member; the owner holds one
    response = owner_client.post(_policy_url(tenant), {"require_passkey": "on"})
    assert response.status_code == 302
    tenant.refresh_from_db()
    assert tenant.require_phishing_resistant_mfa is True
    [event] = AuditEvent.objects.filter(action="tenant.policy_changed")
    assert event.metadata == {"changed": {"require_phishing_resistant_mfa": [False, True]}}
    assert event.tenant_id == tenant.pk and event.actor_id == str(owner.pk)


@pytest.mark.parametrize("role", ["admin", "member", "auditor"])
def test_only_owners_change_the_sign_in_policy(client, tenant, role):
    membership = factories.add_member(tenant, role)
    make_passkey(membership.user)
    factories.verify_session(client, membership.user)
    assert client.post(_policy_url(tenant), {"require_passkey": "on"}).status_code == 403
    tenant.refresh_from_db()
    assert tenant.require_phishing_resistant_mfa is False


def test_another_tenants_policy_page_is_a_404(owner_client, other_tenant):
    assert owner_client.get(_policy_url(other_tenant)).status_code == 404


def test_a_member_without_a_passkey_is_sent_to_add_one_before_any_tenant_page(
    client, tenant, member
):
    _require(tenant)
    factories.verify_session(client, member.user)
    for url in (f"/t/{tenant.slug}/", f"/t/{tenant.slug}/keys/", f"/t/{tenant.slug}/members/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response.url == f"/account/security/passkeys/add/?next={url.replace('/', '%2F')}"
    assert client.get("/account/security/").status_code == 200  # the account stays open
    make_passkey(member.user)
    assert client.get(f"/t/{tenant.slug}/").status_code == 200


def test_a_code_alone_no_longer_opens_sudo_for_the_tenant(client, tenant, member):
    _require(tenant)
    make_passkey(member.user)
    factories.verify_session(client, member.user)  # sudo, fresh, from a code
    url = f"/t/{tenant.slug}/keys/new/"
    response = client.get(url)
    assert response.status_code == 302
    assert response.url == f"/account/sudo/?next={url.replace('/', '%2F')}&passkey=1"
    page = client.get(response.url).content.decode()
    assert "requires a passkey" in page and 'name="code"' not in page
    # A code posted there anyway opens nothing.
    client.post(response.url, {"code": factories.totp_code(member.user)})
    assert client.get(url).status_code == 302
    _passkey_sudo(client)
    assert client.get(url).status_code == 200
    # Elsewhere (the account, another tenant) a code still opens sudo.
    factories.verify_session(client, member.user)
    assert client.get(reverse("accounts:passkey_add")).status_code == 200


def test_without_the_policy_a_code_opens_sudo(client, tenant, member):
    factories.verify_session(client, member.user)
    assert client.get(f"/t/{tenant.slug}/keys/new/").status_code == 200
