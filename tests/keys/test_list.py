"""The keys list (issue 18, item 10): search, filters, sort, tabs, relative last use, pages
without a count and a constant number of queries; bulk revoke for owners and admins."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils import timezone

from accounts.principals import Principal
from audit.models import AuditEvent
from keys import selectors, services
from keys.models import ApiKey, KeyStatus
from keys.templatetags.keys_time import ago
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(tenant):
    return factories.add_member(tenant, "member")


def _url(tenant, **params):
    from django.utils.http import urlencode

    base = reverse("keys:list", kwargs={"slug": tenant.slug})
    return base + ("?" + urlencode(params, doseq=True) if params else "")


def _names(response):
    return [key.name for key in response.context["page"].keys]


def test_search_matches_name_or_hint(owner_client, tenant, alice):
    deploy, _ = factories.make_api_key(alice, name="deploy bot")
    other, _ = factories.make_api_key(alice, name="laptop")
    assert _names(owner_client.get(_url(tenant, q="DEPLOY"))) == ["deploy bot"]
    last4 = other.hint[-4:]
    assert _names(owner_client.get(_url(tenant, q=last4))) == ["laptop"]


def test_filters_by_status_owner_scope_and_expiry(owner_client, tenant, alice, owner):
    soon, _ = factories.make_api_key(alice, name="soon", days=5, scopes=["members:read"])
    later, _ = factories.make_api_key(alice, name="later", days=60)
    mine, _ = factories.make_api_key(owner, tenant, name="mine", days=60)
    assert _names(owner_client.get(_url(tenant, expiring=7))) == ["soon"]
    assert _names(owner_client.get(_url(tenant, scope="members:read"))) == ["soon"]
    assert _names(owner_client.get(_url(tenant, owner="me"))) == ["mine"]
    assert set(_names(owner_client.get(_url(tenant, owner=f"user:{alice.user.pk}")))) == {
        "soon",
        "later",
    }
    # A 5-day key is not "expiring" from birth (ApiKey.status); one issued long ago is.
    assert _names(owner_client.get(_url(tenant, status="expiring"))) == []
    ApiKey.objects.filter(pk=soon.pk).update(created_at=timezone.now() - timedelta(days=60))
    assert _names(owner_client.get(_url(tenant, status="expiring"))) == ["soon"]


def test_the_state_filter_agrees_with_status_for_every_state(tenant, alice, owner):
    now = timezone.now()
    made = [factories.make_api_key(alice, name=f"k{i}", days=d)[0] for i, d in enumerate((1, 40))]
    services.key_revoke(actor=Principal.of_membership(alice), key=made[0])
    old, _ = factories.make_api_key(alice, name="rotating", days=40)
    services.key_rotate(actor=Principal.of_membership(alice), key=old, grace="24h")
    ApiKey.objects.filter(name="k1").update(expires_at=now - timedelta(minutes=1))
    keys = list(ApiKey.objects.for_tenant(tenant))
    for state in KeyStatus.values:
        expected = {k.pk for k in keys if k.status(now) == state}
        found = set(
            ApiKey.objects.for_tenant(tenant)
            .filter(selectors.key_state_filter(state, now))
            .values_list("pk", flat=True)
        )
        assert found == expected, state


def test_tabs_split_working_keys_from_revoked_and_expired(owner_client, tenant, alice):
    live, _ = factories.make_api_key(alice, name="live")
    dead, _ = factories.make_api_key(alice, name="dead")
    services.key_revoke(actor=Principal.of_membership(alice), key=dead)
    assert _names(owner_client.get(_url(tenant))) == ["live"]
    assert _names(owner_client.get(_url(tenant, tab="inactive"))) == ["dead"]


def test_sort_orders(owner_client, tenant, alice):
    for name in ("b", "a", "c"):
        factories.make_api_key(alice, name=name)
    assert _names(owner_client.get(_url(tenant, sort="name"))) == ["a", "b", "c"]
    assert _names(owner_client.get(_url(tenant))) == ["c", "a", "b"]
    assert _names(owner_client.get(_url(tenant, sort="oldest"))) == ["b", "a", "c"]


@pytest.mark.parametrize(
    "params",
    [
        {"page": "0"},
        {"page": "abc"},
        {"sort": "digest"},
        {"status": "nope"},
        {"owner": "user:99999999999999999999"},
        {"expiring": "3"},
        {"q": "x" * 200},
        {"tab": "deleted"},
    ],
)
def test_bad_query_strings_are_400_not_500(owner_client, tenant, params):
    response = owner_client.get(_url(tenant, **params))
    assert response.status_code == 400
    assert "could not be read" in response.content.decode()


def test_members_see_only_their_own_keys_whatever_they_ask(client, tenant, alice, owner):
    factories.make_api_key(owner, tenant, name="owner's")
    factories.make_api_key(alice, name="alice's")
    factories.verify_session(client, alice.user)
    assert _names(client.get(_url(tenant))) == ["alice's"]
    assert client.get(_url(tenant, owner=f"user:{owner.pk}")).status_code == 400


def test_pages_have_no_count_and_the_first_costs_the_same(
    owner_client, tenant, alice, django_assert_num_queries, settings
):
    for i in range(3):
        factories.make_api_key(alice, name=f"first {i}")
    owner_client.get(_url(tenant))  # session, caches
    with django_assert_num_queries(_count(owner_client, tenant)) as few:
        owner_client.get(_url(tenant))
    for i in range(selectors.KEYS_PER_PAGE * 2):
        factories.make_api_key(alice, name=f"more {i}")
    with django_assert_num_queries(len(few.captured_queries)):
        response = owner_client.get(_url(tenant))
    assert len(response.context["page"].keys) == selectors.KEYS_PER_PAGE
    assert response.context["page"].has_next
    # No count of the list (only of the keys waiting for approval, on its partial index).
    counts = [q["sql"] for q in few if "COUNT(" in q["sql"].upper() and "apikey" in q["sql"]]
    assert all('"approval" = ' in sql for sql in counts), counts
    third = owner_client.get(_url(tenant, page=3))
    assert len(third.context["page"].keys) == 3 and not third.context["page"].has_next


def _count(client, tenant) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        client.get(_url(tenant))
    return len(queries)


def test_last_used_is_relative_with_the_exact_time_beside_it(owner_client, tenant, alice):
    key, _ = factories.make_api_key(alice, name="used")
    used = timezone.now() - timedelta(hours=3, minutes=5)
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=used)
    page = owner_client.get(_url(tenant)).content.decode()
    assert "3 hours ago" in page
    assert f'datetime="{used.isoformat()}' in page or used.strftime("%Y-%m-%d %H:%M") in page


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(seconds=5), "just now"),
        (timedelta(minutes=2), "2 minutes ago"),
        (timedelta(days=1, hours=2), "1 day ago"),
    ],
)
def test_ago(delta, text):
    now = timezone.now()
    assert ago(now - delta, now) == text


# --- Bulk revoke ---------------------------------------------------------------------------


def _bulk(tenant):
    return reverse("keys:bulk_revoke", kwargs={"slug": tenant.slug})


def test_bulk_revoke_confirms_then_revokes_all_with_one_event_each(owner_client, tenant, alice):
    keys = [factories.make_api_key(alice, name=f"k{i}")[0] for i in range(3)]
    ids = [k.pk for k in keys[:2]]
    confirm = owner_client.post(_bulk(tenant), {"keys": ids})
    assert confirm.status_code == 200
    page = confirm.content.decode()
    assert "Revoke 2 keys" in page and keys[0].hint in page and keys[2].hint not in page
    assert not ApiKey.objects.filter(pk__in=ids, revoked_at__isnull=False).exists()
    done = owner_client.post(_bulk(tenant), {"keys": ids, "confirm": "yes", "reason": "cleanup"})
    assert done.status_code == 302
    assert ApiKey.objects.filter(pk__in=ids, revoked_at__isnull=False).count() == 2
    events = AuditEvent.objects.filter(action="key.revoked", target_id__in=[str(i) for i in ids])
    assert events.count() == 2 and {e.metadata["reason"] for e in events} == {"cleanup"}
    keys[2].refresh_from_db()
    assert keys[2].revoked_at is None


def test_bulk_revoke_is_all_or_nothing(tenant, alice, owner):
    keys = [factories.make_api_key(alice, name=f"k{i}")[0] for i in range(2)]
    stranger_tenant = factories.make_tenant("initech")
    foreign, _ = factories.make_api_key(
        factories.add_member(stranger_tenant, "member"), name="theirs"
    )
    actor = Principal.of_membership(tenant.memberships.get(user=owner))
    with pytest.raises(PermissionDenied):  # another tenant's key: none of them is revoked
        services.keys_revoke_bulk(actor=actor, keys=[*keys, foreign])
    assert not ApiKey.objects.filter(revoked_at__isnull=False).exists()
    assert not AuditEvent.objects.filter(action="key.revoked").exists()


def test_bulk_revoke_drops_other_tenants_ids_and_needs_sudo(client, tenant, other_tenant, owner):
    theirs, _ = factories.make_api_key(factories.add_member(other_tenant, "member"), name="x")
    factories.verify_session(client, owner)
    response = client.post(_bulk(tenant), {"keys": [theirs.pk], "confirm": "yes"})
    assert response.status_code == 302
    theirs.refresh_from_db()
    assert theirs.revoked_at is None
    client.logout()
    factories.verify_session(client, owner, sudo=False)
    mine, _ = factories.make_api_key(owner, tenant, name="mine")
    response = client.post(_bulk(tenant), {"keys": [mine.pk], "confirm": "yes"})
    assert "/account/sudo/" in response.url
    mine.refresh_from_db()
    assert mine.revoked_at is None


def test_members_cannot_bulk_revoke(client, tenant, alice):
    key, _ = factories.make_api_key(alice, name="mine")
    factories.verify_session(client, alice.user)
    assert client.post(_bulk(tenant), {"keys": [key.pk], "confirm": "yes"}).status_code == 403
