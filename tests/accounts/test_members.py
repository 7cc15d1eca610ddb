import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.test import Client
from django.urls import reverse

from accounts.models import Invitation, Membership, ServiceID, User
from accounts.principals import Principal
from accounts.services import LAST_OWNER, SERVICE_ID_NAME_TAKEN, service_id_create
from audit.models import AuditEvent
from tests import factories

pytestmark = pytest.mark.django_db


def _members_url(name, **kwargs):
    return reverse(f"accounts:{name}", kwargs={"slug": "acme", **kwargs})


def _remove_url(membership):
    return reverse("keys:member_remove", kwargs={"slug": "acme", "pk": membership.pk})


def _invite(client, email="new@example.com", role="member"):
    return client.post(_members_url("member_invite"), {"email": email, "role": role})


def test_owner_invites_by_email_and_the_link_secret_is_stored_only_as_a_digest(
    owner_client, tenant, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = _invite(owner_client)
    assert response.status_code == 302
    invitation = Invitation.objects.get(email="new@example.com")
    assert len(mail.outbox) == 1
    link = next(w for w in mail.outbox[0].body.split() if "/invite/" in w)
    secret = link.rstrip("/").rsplit("/", 1)[1]
    assert secret.encode() not in bytes(invitation.digest)
    assert not AuditEvent.objects.filter(metadata__icontains=secret).exists()
    assert AuditEvent.objects.filter(action="member.invited", target_id=str(invitation.pk)).exists()


def test_invitee_sets_a_password_then_must_enrol_2fa(
    owner_client, client, tenant, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        _invite(owner_client, "bob@example.com", "admin")
    link = next(w for w in mail.outbox[0].body.split() if "/invite/" in w)
    path = link.split("8000", 1)[1]
    response = client.get(path)
    assert response.status_code == 302 and response["Location"] == reverse(
        "accounts:invitation_accept"
    )
    page = client.post(
        reverse("accounts:invitation_accept"),
        {"full_name": "Bob", "password1": factories.PASSWORD, "password2": factories.PASSWORD},
    )
    assert page.status_code == 302
    assert page["Location"] == reverse("accounts:mfa_enrol")
    bob = User.objects.get(email="bob@example.com")
    assert Membership.objects.get(user=bob, tenant=tenant).role == "admin"
    # The portal stays closed until the second factor is enrolled.
    tenant_page = client.get(reverse("accounts:tenant_home", kwargs={"slug": "acme"}))
    assert tenant_page["Location"].startswith(reverse("accounts:mfa_enrol"))
    # The link works once.
    assert client.get(path).status_code == 404


def test_unknown_invitation_link_is_a_clear_404(client, db):
    response = client.get(reverse("accounts:invitation", kwargs={"secret": "nope"}))
    assert response.status_code == 404
    assert "not valid" in response.content.decode()


def test_member_cannot_invite(client, member):
    factories.verify_session(client, member.user)
    assert _invite(client).status_code == 403
    assert not Invitation.objects.exists()


def test_admin_cannot_grant_owner(client, admin_member):
    factories.verify_session(client, admin_member.user)
    response = _invite(client, role="owner")
    assert response.status_code == 400
    assert not Invitation.objects.exists()


def test_duplicate_invitation_is_refused_with_a_message(owner_client, tenant):
    _invite(owner_client, "dup@example.com")
    response = _invite(owner_client, "dup@example.com")
    assert response.status_code == 400
    assert "already has a pending invitation" in response.content.decode()
    assert Invitation.objects.count() == 1


def test_owner_changes_a_role_and_it_is_audited(owner_client, member):
    response = owner_client.post(_members_url("member_role", pk=member.pk), {"role": "auditor"})
    assert response.status_code == 302
    member.refresh_from_db()
    assert member.role == "auditor"
    event = AuditEvent.objects.get(action="member.role_changed")
    assert event.metadata == {"from": "member", "to": "auditor"}


def test_the_last_owner_cannot_be_demoted_or_removed(owner_client, tenant):
    owner_membership = tenant.memberships.get(role="owner")
    owner_client.post(_members_url("member_role", pk=owner_membership.pk), {"role": "admin"})
    owner_client.post(_remove_url(owner_membership))
    owner_membership.refresh_from_db()
    assert owner_membership.role == "owner"
    assert not AuditEvent.objects.filter(action__in=["member.role_changed", "member.removed"])
    page = owner_client.get(_members_url("members"))
    assert LAST_OWNER in page.content.decode()


def test_removed_member_loses_access_at_once(owner_client, member):
    member_client = Client()
    factories.verify_session(member_client, member.user)
    home = reverse("accounts:tenant_home", kwargs={"slug": "acme"})
    assert member_client.get(home).status_code == 200
    owner_client.post(_remove_url(member))
    assert member_client.get(home).status_code == 404
    assert AuditEvent.objects.filter(action="member.removed").exists()


def test_admin_cannot_remove_an_owner(client, admin_member, tenant):
    factories.verify_session(client, admin_member.user)
    owner_membership = tenant.memberships.get(role="owner")
    response = client.post(_remove_url(owner_membership))
    assert response.status_code == 403
    assert Membership.objects.filter(pk=owner_membership.pk).exists()


def test_members_of_another_tenant_are_404(owner_client, other_tenant):
    globex_owner = other_tenant.memberships.get()
    url = reverse("accounts:member_role", kwargs={"slug": "acme", "pk": globex_owner.pk})
    assert owner_client.post(url, {"role": "member"}).status_code == 404
    listing = owner_client.get(_members_url("members"))
    assert globex_owner.user.email not in listing.content.decode()


def test_service_ids_are_created_by_admins_and_listed_per_tenant(owner_client, other_tenant):
    response = owner_client.post(
        reverse("accounts:service_ids", kwargs={"slug": "acme"}),
        {"name": "ci-deployer", "description": "CI", "role": "member"},
    )
    assert response.status_code == 302
    assert AuditEvent.objects.filter(action="service_id.created").exists()
    page = owner_client.get(reverse("accounts:service_ids", kwargs={"slug": "acme"}))
    assert "ci-deployer" in page.content.decode()
    globex = owner_client.get(reverse("accounts:service_ids", kwargs={"slug": "globex"}))
    assert globex.status_code == 404


def test_member_cannot_create_service_ids(client, member):
    factories.verify_session(client, member.user)
    response = client.post(
        reverse("accounts:service_ids", kwargs={"slug": "acme"}), {"name": "x", "role": "member"}
    )
    assert response.status_code == 403


# --- Service ID names: unique in a tenant, ignoring case ---------------------------------------


def test_a_service_id_name_differing_only_in_case_is_a_form_error(owner_client, tenant):
    factories.make_service_id(tenant, "Deploy-Bot")
    last = AuditEvent.objects.latest("id").pk
    response = owner_client.post(
        reverse("accounts:service_ids", kwargs={"slug": "acme"}),
        {"name": "deploy-bot", "description": "", "role": "member"},
    )
    assert response.status_code == 400
    assert response.context["form"].errors["name"] == [
        SERVICE_ID_NAME_TAKEN % {"name": "deploy-bot"}
    ]
    assert list(ServiceID.objects.values_list("name", flat=True)) == ["Deploy-Bot"]
    assert not AuditEvent.objects.filter(pk__gt=last).exists()


def test_another_tenant_may_use_the_same_name(tenant, other_tenant):
    factories.make_service_id(tenant, "Deploy-Bot")
    factories.make_service_id(other_tenant, "deploy-bot")
    assert ServiceID.objects.filter(name__iexact="deploy-bot").count() == 2


def test_the_database_refuses_a_name_differing_only_in_case(tenant):
    factories.make_service_id(tenant, "Deploy-Bot")
    with pytest.raises(IntegrityError), transaction.atomic():
        ServiceID.objects.create(tenant=tenant, name="DEPLOY-BOT", role="member")


def test_a_creation_that_loses_a_race_for_its_name_is_a_validation_error(tenant, monkeypatch):
    factories.make_service_id(tenant, "Deploy-Bot")
    # As if another transaction committed the name between the checks and the insert: every
    # check sees no row, the unique index refuses it.
    exists = QuerySet.exists
    monkeypatch.setattr(
        QuerySet, "exists", lambda self: False if self.model is ServiceID else exists(self)
    )
    owner = Principal.of_membership(tenant.memberships.get(role="owner"))
    with pytest.raises(ValidationError) as raised:
        service_id_create(actor=owner, name="deploy-bot", role="member")
    assert raised.value.message_dict == {"name": [SERVICE_ID_NAME_TAKEN % {"name": "deploy-bot"}]}
    monkeypatch.undo()
    assert ServiceID.objects.count() == 1
    assert not AuditEvent.objects.filter(
        action="service_id.created", target_label="service:deploy-bot"
    )
