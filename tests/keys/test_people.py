"""A removed person's keys die with the membership (keys/services/people.py, keys/receivers.py,
keys/views.py ``member_remove_view``)."""

import time

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client
from django.urls import reverse

from accounts import conf
from accounts import services as account_services
from accounts.decorators import SUDO_SESSION_KEY
from accounts.models import Membership, User
from accounts.principals import Principal
from audit.models import AuditEvent
from keys import services
from keys.models import ApiKey
from keys.services import people
from tests import factories

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]


class InjectedFailure(Exception):
    pass


@pytest.fixture
def leaver(tenant, other_tenant):
    """An admin of acme with two tokens there (one in a rotation's grace), a token in globex, a
    service key they issued; and a colleague's token that must survive."""
    admin = factories.add_member(tenant, "admin")
    laptop, laptop_token = factories.make_api_key(admin, name="laptop")
    old, _ = factories.make_api_key(admin, name="ci")
    rotated, _ = services.key_rotate(actor=Principal.of_membership(admin), key=old, grace="24h")
    globex = factories.add_member(other_tenant, "member", user=admin.user)
    elsewhere, _ = factories.make_api_key(globex, name="globex laptop")
    bot = factories.make_service_id(tenant, "deploy-bot", role="member")
    service_key, _ = services.key_issue(
        actor=Principal.of_membership(admin),
        tenant=tenant,
        owner=bot,
        name="deploy",
        scopes=["keys:read"],
        expires_at=laptop.expires_at,
    )
    colleague, _ = factories.make_api_key(factories.add_member(tenant, "member"), name="theirs")
    return {
        "membership": admin,
        "token": laptop_token,
        "acme": {laptop.pk, old.pk, rotated.pk},
        "globex": elsewhere,
        "service": service_key,
        "colleague": colleague,
    }


def _remove_url(membership) -> str:
    return reverse("keys:member_remove", kwargs={"slug": "acme", "pk": membership.pk})


def _revoked(*, reason: str | None = None) -> set[int]:
    keys = ApiKey.objects.exclude(revoked_at=None).exclude(revoked_reason="rotated")
    if reason is not None:
        keys = keys.filter(revoked_reason=reason)
    return set(keys.values_list("pk", flat=True))


def test_removal_in_the_portal_revokes_exactly_their_tokens_in_that_tenant(
    owner_client, owner, leaver
):
    response = owner_client.post(_remove_url(leaver["membership"]))
    assert response.status_code == 302
    assert not Membership.objects.filter(pk=leaver["membership"].pk).exists()
    # The old key rotated out with a grace period still worked: it is revoked too.
    assert _revoked(reason=people.MEMBERSHIP_REMOVED) == leaver["acme"]
    assert _revoked() == leaver["acme"]  # not globex's, not the service key, not a colleague's
    events = list(
        AuditEvent.objects.filter(action__in=["key.revoked", "member.removed"]).order_by("id")
    )
    assert [e.action for e in events] == ["key.revoked"] * 3 + ["member.removed"]
    for event in events[:3]:
        assert (event.actor_kind, event.actor_id) == ("user", str(owner.pk))
        assert event.metadata == {"reason": people.MEMBERSHIP_REMOVED}
        assert event.ip == "127.0.0.1" and event.request_id
    assert {int(e.target_id) for e in events[:3]} == leaver["acme"]
    assert set(
        ApiKey.objects.filter(pk__in=leaver["acme"]).values_list("revoked_by", flat=True)
    ) == {owner.pk}


def test_a_reinvited_person_s_old_token_still_gets_401(owner_client, tenant, leaver, api_client):
    whoami = {"HTTP_AUTHORIZATION": f"Bearer {leaver['token']}"}
    assert api_client.get("/api/v1/whoami/", **whoami).status_code == 200
    owner_client.post(_remove_url(leaver["membership"]))
    user = leaver["membership"].user
    invitation, _ = account_services.invitation_create(
        actor=Principal.of_membership(tenant.memberships.get(role="owner")),
        email=user.email,
        role="admin",
    )
    account_services.invitation_accept(invitation_id=invitation.pk, user=user)
    assert Membership.objects.filter(user=user, tenant=tenant, role="admin").exists()
    response = api_client.get("/api/v1/whoami/", **whoami)
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


def test_a_refused_removal_revokes_nothing(tenant, owner, leaver):
    last_owner = tenant.memberships.get(role="owner")
    mine, _ = factories.make_api_key(last_owner, name="owner laptop")
    last = AuditEvent.objects.latest("id").pk
    with pytest.raises(ValidationError):
        services.member_remove(actor=Principal.of_membership(last_owner), target=last_owner)
    as_admin = Principal.of_membership(leaver["membership"])
    with pytest.raises(PermissionDenied):
        services.member_remove(actor=as_admin, target=last_owner)
    assert ApiKey.objects.get(pk=mine.pk).revoked_at is None
    assert Membership.objects.filter(pk=last_owner.pk).exists()
    assert not AuditEvent.objects.filter(pk__gt=last).exists()


def test_a_crash_deleting_the_membership_rolls_back_the_revocations(tenant, leaver, monkeypatch):
    last = AuditEvent.objects.latest("id").pk

    def delete(self, *args, **kwargs):
        raise InjectedFailure("crash deleting the membership")

    monkeypatch.setattr(Membership, "delete", delete)
    with pytest.raises(InjectedFailure):
        services.member_remove(
            actor=Principal.of_membership(tenant.memberships.get(role="owner")),
            target=leaver["membership"],
        )
    assert _revoked() == set()
    assert Membership.objects.filter(pk=leaver["membership"].pk).exists()
    assert not AuditEvent.objects.filter(pk__gt=last).exists()


def test_a_crash_revoking_a_key_keeps_the_membership_and_every_key(tenant, leaver, monkeypatch):
    last = AuditEvent.objects.latest("id").pk
    real = people.key_revoke
    calls = []

    def key_revoke(**kwargs):
        calls.append(kwargs["key"].pk)
        if len(calls) == 2:
            raise InjectedFailure("crash revoking the second key")
        return real(**kwargs)

    monkeypatch.setattr(people, "key_revoke", key_revoke)
    with pytest.raises(InjectedFailure):
        services.member_remove(
            actor=Principal.of_membership(tenant.memberships.get(role="owner")),
            target=leaver["membership"],
        )
    assert _revoked() == set()
    assert Membership.objects.filter(pk=leaver["membership"].pk).exists()
    assert not AuditEvent.objects.filter(pk__gt=last).exists()


@pytest.mark.parametrize("how", ["instance", "queryset"])
def test_deleting_a_membership_by_any_other_door_revokes_the_tokens(leaver, how):
    membership = leaver["membership"]
    if how == "instance":
        membership.delete()
    else:
        Membership.objects.filter(pk=membership.pk).delete()
    assert _revoked(reason=people.MEMBERSHIP_REMOVED) == leaver["acme"]
    events = AuditEvent.objects.filter(action="key.revoked")
    assert {e.actor_kind for e in events} == {"system"}
    assert all(e.tenant_id == membership.tenant_id for e in events)


def test_an_operator_deleting_a_membership_in_the_admin_revokes_the_tokens(client, leaver):
    staff = factories.make_user("ops@example.com")
    staff.is_staff = staff.is_superuser = True
    staff.save(update_fields=["is_staff", "is_superuser"])
    factories.verify_session(client, staff)
    url = reverse("admin:accounts_membership_delete", args=[leaver["membership"].pk])
    assert client.post(url, {"post": "yes"}).status_code == 302
    assert _revoked(reason=people.MEMBERSHIP_REMOVED) == leaver["acme"]
    assert AuditEvent.objects.filter(action="admin.deleted").exists()


def test_deactivating_a_user_revokes_their_tokens_in_every_tenant(leaver):
    user = leaver["membership"].user
    user.is_active = False
    user.save()
    assert _revoked(reason=people.USER_DEACTIVATED) == leaver["acme"] | {leaver["globex"].pk}
    assert ApiKey.objects.get(pk=leaver["service"].pk).revoked_at is None
    assert Membership.objects.filter(user=user).count() == 2  # memberships stay
    user.is_active = True
    user.save(update_fields=["is_active"])  # coming back brings no key back
    assert ApiKey.objects.filter(user=user).usable().count() == 0


def test_saving_an_active_user_or_other_fields_revokes_nothing(leaver):
    user = User.objects.get(pk=leaver["membership"].user_id)
    user.full_name = "Still Here"
    user.save()
    user.is_active = False
    user.save(update_fields=["full_name"])  # is_active not written: nothing changed in the row
    assert _revoked() == set()


def test_deleting_a_user_or_tenant_records_no_revocation_of_keys_it_deletes(leaver):
    User.objects.filter(pk=leaver["membership"].user_id).delete()
    assert not ApiKey.objects.filter(pk__in=leaver["acme"]).exists()
    assert not AuditEvent.objects.filter(action="key.revoked").exists()


# --- The confirmation page -----------------------------------------------------------------


def test_the_confirmation_page_lists_the_tokens_removal_revokes(owner_client, leaver):
    response = owner_client.get(_remove_url(leaver["membership"]))
    assert response.status_code == 200
    listed = {key.pk for key in response.context["keys"]}
    assert listed == leaver["acme"]
    html = response.content.decode()
    for key in ApiKey.objects.filter(pk__in=leaver["acme"]):
        assert key.hint in html
    assert leaver["globex"].hint not in html and leaver["service"].hint not in html
    assert leaver["colleague"].hint not in html
    assert "Remove and revoke 3 keys" in html
    assert Membership.objects.filter(pk=leaver["membership"].pk).exists()  # a GET removes no one
    assert _revoked() == set()


def test_the_members_page_links_to_the_confirmation(owner_client, leaver):
    page = owner_client.get(reverse("accounts:members", kwargs={"slug": "acme"}))
    assert f'href="{_remove_url(leaver["membership"])}"' in page.content.decode()


def test_the_confirmation_page_needs_sudo_and_the_right_to_remove(client, tenant, leaver):
    owner = tenant.memberships.get(role="owner")
    factories.verify_session(client, owner.user)
    session = client.session
    session[SUDO_SESSION_KEY] = time.time() - conf.settings.SUDO_SECONDS - 1
    session.save()
    response = client.get(_remove_url(leaver["membership"]))
    assert response["Location"].startswith(reverse("accounts:sudo"))
    admin_client = Client()
    factories.verify_session(admin_client, leaver["membership"].user)
    assert admin_client.get(_remove_url(owner)).status_code == 403
    member_client = Client()
    factories.verify_session(member_client, factories.add_member(tenant, "member").user)
    assert member_client.get(_remove_url(leaver["membership"])).status_code == 403


def test_the_confirmation_page_of_another_tenants_member_is_a_404(owner_client, other_tenant):
    theirs = other_tenant.memberships.get(role="owner")
    assert owner_client.get(_remove_url(theirs)).status_code == 404
    assert owner_client.post(_remove_url(theirs)).status_code == 404
    assert Membership.objects.filter(pk=theirs.pk).exists()


# --- Key review ------------------------------------------------------------------------------


def test_key_review_flags_service_keys_issued_by_a_removed_member(owner_client, leaver):
    owner_client.post(_remove_url(leaver["membership"]))
    response = owner_client.get(reverse("keys:review", kwargs={"slug": "acme"}))
    review = response.context["review"]
    assert [k.pk for k in review.created_by_former_members] == [leaver["service"].pk]
    html = response.content.decode()
    assert leaver["membership"].user.email in html and leaver["service"].hint in html


def test_key_review_does_not_flag_service_keys_of_current_members(owner_client, leaver):
    response = owner_client.get(reverse("keys:review", kwargs={"slug": "acme"}))
    assert response.context["review"].created_by_former_members == []
