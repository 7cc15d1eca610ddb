"""The key inventory (issue 18, item 15): a CSV of the tenant's keys streamed in constant memory
for owners and admins (and operators in the admin), audited; the API list's filters."""

import csv
import io
import tracemalloc
from datetime import timedelta

import pytest
from django.http import StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone

from accounts.principals import Principal
from audit.models import AuditEvent
from keys import services, tokens
from keys.models import ApiKey
from keys.services import inventory
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(tenant):
    return factories.add_member(tenant, "member")


def _rows(response):
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


def test_owners_download_every_key_as_csv_and_it_is_audited(owner_client, tenant, alice):
    key, token = factories.make_api_key(alice, name="=cmd|' /C calc'!A0", scopes=["keys:read"])
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now(), last_used_ip="192.0.2.7")
    response = owner_client.post(reverse("keys:export", kwargs={"slug": tenant.slug}))
    assert response.status_code == 200
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = _rows(response)
    assert len(rows) == 1
    row = rows[0]
    assert row["owner"] == alice.user.email and row["kind"] == "personal"
    assert row["scopes"] == "keys:read" and row["status"] == "active"
    assert row["last_used_ip"] == "192.0.2.7" and row["created_at"] and row["expires_at"]
    assert row["name"].startswith("'=")  # never a formula in a spreadsheet
    body = str(rows)
    assert token not in body and tokens.digest(token).hex() not in body
    event = AuditEvent.objects.get(action="key.inventory_exported")
    assert event.tenant_id == tenant.pk


def test_the_export_is_a_post(owner_client, tenant):
    url = reverse("keys:export", kwargs={"slug": tenant.slug})
    assert owner_client.get(url).status_code == 405
    assert not AuditEvent.objects.filter(action="key.inventory_exported").exists()


def test_members_may_not_export(client, tenant, alice):
    factories.verify_session(client, alice.user)
    assert client.post(reverse("keys:export", kwargs={"slug": tenant.slug})).status_code == 403
    assert not AuditEvent.objects.filter(action="key.inventory_exported").exists()


def test_another_tenants_keys_are_never_exported(owner_client, tenant, other_tenant):
    factories.make_api_key(factories.add_member(other_tenant, "member"), name="theirs")
    response = owner_client.post(reverse("keys:export", kwargs={"slug": tenant.slug}))
    assert _rows(response) == []


def _bulk_keys(tenant, user, count):
    now = timezone.now()
    ApiKey.objects.bulk_create(
        ApiKey(
            tenant=tenant,
            user=user,
            name=f"bulk {i}",
            scopes=["keys:read"],
            digest=tokens.digest(f"bulk-{tenant.pk}-{i}"),
            hint=f"kwp_…{i:04d}",
            expires_at=now + timedelta(days=30),
        )
        for i in range(count)
    )


def _peak(tenant, owner_membership) -> int:
    lines = inventory.key_inventory_export(actor=Principal.of_membership(owner_membership))
    tracemalloc.start()
    try:
        for _ in lines:
            pass
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_export_streams_in_constant_memory(tenant, owner, monkeypatch):
    monkeypatch.setattr(inventory, "CHUNK", 100)
    membership = tenant.memberships.get(user=owner)
    _bulk_keys(tenant, owner, 300)
    small = _peak(tenant, membership)
    other = factories.make_tenant("big")
    big_owner = other.memberships.get(role="owner")
    _bulk_keys(other, big_owner.user, 3000)
    big = _peak(other, big_owner)
    # Ten times the keys, about the same memory: one chunk of rows at a time.
    assert big < small * 3, (small, big)


def test_operators_export_the_selection_from_the_admin(tenant, alice):
    from django.contrib.admin.sites import site
    from django.test import RequestFactory

    from accounts.models import User

    key, _ = factories.make_api_key(alice, name="ops")
    factories.make_api_key(alice, name="not selected")
    request = RequestFactory().post("/admin/keys/apikey/")
    request.user = User.objects.create_superuser("ops@example.com", factories.PASSWORD)
    model_admin = site._registry[ApiKey]
    assert "export_selected" in model_admin.get_actions(request)
    response = model_admin.export_selected(request, ApiKey.objects.filter(pk=key.pk))
    assert isinstance(response, StreamingHttpResponse)
    assert [row["name"] for row in _rows(response)] == ["ops"]
    event = AuditEvent.objects.get(action="key.inventory_exported")
    assert event.actor_kind == "operator"


# --- API filters -----------------------------------------------------------------------------


@pytest.fixture
def api_owner(tenant, owner):
    _, token = factories.make_api_key(owner, tenant, name="api", scopes=["keys:read"])
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def test_api_filters_by_state_last_use_and_expiry(client, tenant, alice, api_owner):
    now = timezone.now()
    used, _ = factories.make_api_key(alice, name="used long ago", days=60)
    ApiKey.objects.filter(pk=used.pk).update(last_used_at=now - timedelta(days=100))
    short, _ = factories.make_api_key(alice, name="short", days=3)
    gone, _ = factories.make_api_key(alice, name="gone")
    services.key_revoke(actor=Principal.of_membership(alice), key=gone)

    def names(**params):
        response = client.get("/api/v1/keys/", params, **api_owner)
        assert response.status_code == 200, response.content
        return {row["name"] for row in response.json()}

    assert names(state="revoked") == {"gone"}
    cutoff = (now - timedelta(days=30)).isoformat()
    assert names(last_used_before=cutoff) == {"used long ago"}
    assert names(expires_before=(now + timedelta(days=10)).isoformat()) == {"short"}
    assert "short" in names(state="active") and "gone" not in names(state="active")


@pytest.mark.parametrize(
    ("params", "bad"),
    [
        ({"state": "deleted"}, {"state"}),
        ({"last_used_before": "yesterday"}, {"last_used_before"}),
        ({"expires_before": "2026-13-40"}, {"expires_before"}),
        ({"state": "active", "expires_before": "1e9"}, {"expires_before"}),
    ],
)
def test_api_filters_refuse_bad_values_with_400(client, api_owner, params, bad):
    response = client.get("/api/v1/keys/", params, **api_owner)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid" and set(body["errors"]) == bad
