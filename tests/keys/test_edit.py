"""Editing a key (issue 18, item 11): narrow freely, widen only with sudo within the owner's
ceiling and the tenant's policy; every edit is one key.updated event with before and after."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from accounts.models import KeyApproval
from accounts.principals import Principal
from audit.models import AuditEvent
from keys import services
from keys.models import ApiKey
from keys.services.edit import RATE_ABOVE_TENANT, networks_widen
from keys.throttling import rate_of
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(tenant):
    return factories.add_member(tenant, "member")


@pytest.fixture
def key(alice):
    key, _ = factories.make_api_key(
        alice, name="ci", scopes=["keys:read", "members:read"], allowed_ips=["10.0.0.0/8"]
    )
    return key


def _update(membership, key, sudo=False, **values):
    return services.key_update(
        actor=Principal.of_membership(membership), key=key, values=values, sudo=sudo
    )


def _events(key):
    return AuditEvent.objects.filter(action="key.updated", target_id=str(key.pk))


def test_narrowing_needs_no_sudo_and_records_before_and_after(alice, key):
    _update(alice, key, scopes=["keys:read"], name="ci deploy", description="the CI runner")
    key.refresh_from_db()
    assert key.scopes == ["keys:read"] and key.name == "ci deploy"
    assert key.description == "the CI runner"
    event = _events(key).get()
    changed = event.metadata["changed"]
    assert changed["scopes"] == {"before": ["keys:read", "members:read"], "after": ["keys:read"]}
    assert changed["name"] == {"before": "ci", "after": "ci deploy"}
    assert event.metadata["widened"] == []
    assert "digest" not in str(event.metadata) and key.hint not in str(event.metadata)


def test_widening_scopes_without_sudo_is_refused_and_writes_nothing(alice, key):
    with pytest.raises(services.SudoRequired):
        _update(alice, key, scopes=["keys:read", "members:read", "keys:revoke"])
    key.refresh_from_db()
    assert key.scopes == ["keys:read", "members:read"]
    assert not _events(key).exists()


def test_widening_with_sudo_within_the_ceiling_is_recorded_as_widened(alice, key):
    _update(alice, key, sudo=True, scopes=["keys:read", "members:read", "keys:revoke"])
    key.refresh_from_db()
    assert "keys:revoke" in key.scopes
    assert _events(key).get().metadata["widened"] == ["scopes"]


def test_widening_above_the_owners_ceiling_is_refused_even_with_sudo(alice, key):
    with pytest.raises(ValidationError) as error:
        _update(alice, key, sudo=True, scopes=["keys:read", "audit:read"])
    assert "scopes" in error.value.message_dict
    key.refresh_from_db()
    assert key.scopes == ["keys:read", "members:read"] and not _events(key).exists()


def test_extending_expiry_needs_sudo_and_stays_within_the_tenants_maximum(tenant, alice, key):
    later = key.expires_at + timedelta(days=10)
    with pytest.raises(services.SudoRequired):
        _update(alice, key, expires_at=later)
    too_late = timezone.now() + timedelta(days=tenant.max_key_lifetime_days + 2)
    with pytest.raises(ValidationError) as error:
        _update(alice, key, sudo=True, expires_at=too_late)
    assert "expires_at" in error.value.message_dict
    _update(alice, key, sudo=True, expires_at=later)
    key.refresh_from_db()
    assert key.expires_at == later
    assert _events(key).get().metadata["widened"] == ["expires_at"]


def test_shortening_expiry_needs_no_sudo_but_never_into_the_past(alice, key):
    sooner = timezone.now() + timedelta(days=2)
    _update(alice, key, expires_at=sooner)
    with pytest.raises(ValidationError):
        _update(alice, key, expires_at=timezone.now() - timedelta(minutes=1))
    key.refresh_from_db()
    assert key.expires_at == sooner


@pytest.mark.parametrize(
    ("before", "after", "widens"),
    [
        ([], ["10.0.0.0/8"], False),
        (["10.0.0.0/8"], ["10.1.0.0/16"], False),
        (["10.0.0.0/8"], [], True),
        (["10.0.0.0/8"], ["10.0.0.0/8", "192.0.2.0/24"], True),
        (["10.1.0.0/16"], ["10.0.0.0/8"], True),
        (["10.0.0.0/8"], ["2001:db8::/32"], True),
    ],
)
def test_networks_widen(before, after, widens):
    assert networks_widen(before, after) is widens


def test_allowing_every_address_needs_sudo(alice, key):
    with pytest.raises(services.SudoRequired):
        _update(alice, key, allowed_ips=[])
    _update(alice, key, allowed_ips=["10.2.0.0/16"], alert_on_new_network=True)
    key.refresh_from_db()
    assert key.allowed_ips == ["10.2.0.0/16"] and key.alert_on_new_network


@pytest.mark.parametrize("bad", ["10.0.0.0/33", "not-an-ip"])
def test_bad_networks_are_refused_by_field(alice, key, bad):
    with pytest.raises(ValidationError) as error:
        _update(alice, key, sudo=True, allowed_ips=[bad])
    assert "allowed_ips" in error.value.message_dict


def test_a_key_rate_never_exceeds_the_tenants(tenant, alice, key):
    tenant.key_rate = "600/min"
    tenant.save()
    key.tenant.refresh_from_db()
    with pytest.raises(ValidationError) as error:
        _update(alice, key, rate="20/s")
    assert error.value.message_dict["rate"] == [RATE_ABOVE_TENANT % {"rate": "600/min"}]
    with pytest.raises(ValidationError):
        _update(alice, key, rate="lots")
    _update(alice, key, rate="60/min")
    key.refresh_from_db()
    assert rate_of(key) == (60, 60)
    # The tenant lowering its rate lowers the key's too.
    tenant.key_rate = "30/min"
    tenant.save()
    key = ApiKey.objects.select_related("tenant").get(pk=key.pk)
    assert rate_of(key) == (30, 60)


def test_name_must_stay_unique_among_the_owners_active_keys(alice, key):
    factories.make_api_key(alice, name="other")
    with pytest.raises(ValidationError) as error:
        _update(alice, key, name="other")
    assert "name" in error.value.message_dict


def test_someone_else_may_not_edit_a_members_key(tenant, key):
    other = factories.add_member(tenant, "member")
    with pytest.raises(PermissionDenied):
        _update(other, key, name="mine now")
    admin = factories.add_member(tenant, "admin")
    _update(admin, key, name="renamed by admin")
    assert _events(key).get().actor_id == str(admin.user.pk)


def test_revoked_keys_cannot_be_edited(alice, key):
    services.key_revoke(actor=Principal.of_membership(alice), key=key)
    with pytest.raises(ValidationError):
        _update(alice, key, name="again")


def test_widening_is_refused_where_the_policy_would_need_approval(tenant, alice, key):
    tenant.key_approval = KeyApproval.OUTSIDE_DEFAULT
    tenant.approval_default_scopes = ["keys:read", "members:read"]
    tenant.save()
    key.tenant.refresh_from_db()
    with pytest.raises(ValidationError) as error:
        _update(alice, key, sudo=True, scopes=["keys:read", "members:read", "keys:revoke"])
    assert services.WIDEN_NEEDS_APPROVAL in error.value.message_dict["scopes"]


# --- The page ------------------------------------------------------------------------------


def _edit_url(key):
    return reverse("keys:edit", kwargs={"slug": key.tenant.slug, "pk": key.pk})


def _post(key, **overrides):
    data = {
        "name": key.name,
        "description": key.description,
        "scopes": list(key.scopes),
        "expires_on": key.expires_at.astimezone(UTC).date().isoformat(),
        "allowed_ips": "\n".join(key.allowed_ips),
        "rate": key.rate,
    }
    data.update(overrides)
    return data


def test_the_edit_page_saves_a_narrowing_without_sudo(client, alice, key):
    factories.verify_session(client, alice.user, sudo=False)
    assert client.get(_edit_url(key)).status_code == 200
    response = client.post(_edit_url(key), _post(key, scopes=["keys:read"], description="x"))
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.scopes == ["keys:read"] and key.description == "x"


def test_a_widening_without_sudo_keeps_the_input_through_the_detour(client, alice, key):
    factories.verify_session(client, alice.user, sudo=False)
    wider = _post(key, scopes=["keys:read", "members:read", "keys:revoke"], description="wide")
    response = client.post(_edit_url(key), wider)
    assert response.status_code == 400
    assert services.SUDO_NEEDED in response.content.decode()
    key.refresh_from_db()
    assert "keys:revoke" not in key.scopes
    # After the verification, the form comes back filled in, not empty.
    factories.verify_session(client, alice.user, sudo=True)
    page = client.get(_edit_url(key)).content.decode()
    assert re.search(r">\s*wide</textarea>", page)
    assert re.search(r'<input [^>]*value="keys:revoke"[^>]*checked', page)
    assert "Verified. Your changes are filled in again" in page
    assert client.post(_edit_url(key), wider).status_code == 302
    key.refresh_from_db()
    assert "keys:revoke" in key.scopes


def test_the_edit_page_of_another_tenants_key_is_404(client, other_tenant, key):
    stranger = factories.add_member(other_tenant, "owner")
    factories.verify_session(client, stranger.user)
    url = reverse("keys:edit", kwargs={"slug": other_tenant.slug, "pk": key.pk})
    assert client.get(url).status_code == 404


def test_a_bad_date_is_a_400_with_the_form(client, alice, key):
    factories.verify_session(client, alice.user)
    response = client.post(_edit_url(key), _post(key, expires_on="2020-13-45"))
    assert response.status_code == 400
    far = datetime(9999, 12, 31, tzinfo=UTC).date().isoformat()
    assert client.post(_edit_url(key), _post(key, expires_on=far)).status_code == 400
    key.refresh_from_db()
    assert not _events(key).exists()
