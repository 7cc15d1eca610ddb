"""The ApiKey admin: metadata only, never the digest, read-only, audited bulk revoke."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from keys.admin import ADMIN_REVOKE_REASON
from keys.models import ApiKey
from tests import factories

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]

CHANGELIST = reverse("admin:keys_apikey_changelist")


@pytest.fixture
def operator(db):
    user = factories.make_user("ops@example.com")
    user.is_staff = user.is_superuser = True
    user.save(update_fields=["is_staff", "is_superuser"])
    return user


@pytest.fixture
def operator_client(client, operator):
    factories.verify_session(client, operator)
    return client


@pytest.fixture
def keys(tenant, member):
    personal, _ = factories.make_api_key(member, name="laptop")
    bot = factories.make_service_id(tenant, "deploy-bot")
    service, _ = factories.make_api_key(bot, name="ci")
    soon, _ = factories.make_api_key(member, name="soon", days=3)
    gone, _ = factories.make_api_key(member, name="gone")
    ApiKey.objects.filter(pk=gone.pk).update(revoked_at=timezone.now())
    old, _ = factories.make_api_key(member, name="old")
    ApiKey.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(days=1))
    return {"personal": personal, "service": service, "soon": soon, "gone": gone, "old": old}


def _names(response) -> set[str]:
    return {key.name for key in response.context["cl"].result_list}


def test_changelist_shows_metadata_and_never_a_digest(operator_client, keys):
    response = operator_client.get(CHANGELIST)
    assert response.status_code == 200
    html = response.content.decode()
    for key in ApiKey.objects.all():
        assert bytes(key.digest).hex() not in html
        assert key.hint in html
    assert "service:deploy-bot" in html and "laptop" in html


def test_change_page_is_read_only_and_shows_no_digest(operator_client, keys):
    key = keys["personal"]
    response = operator_client.get(reverse("admin:keys_apikey_change", args=[key.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "digest" not in html.lower()
    assert bytes(key.digest).hex() not in html
    assert 'name="_save"' not in html  # view-only
    posted = operator_client.post(
        reverse("admin:keys_apikey_change", args=[key.pk]), {"name": "renamed"}
    )
    assert posted.status_code == 403
    key.refresh_from_db()
    assert key.name == "laptop"


def test_keys_cannot_be_added_or_deleted_in_the_admin(operator_client, keys):
    assert operator_client.get(reverse("admin:keys_apikey_add")).status_code == 403
    delete = reverse("admin:keys_apikey_delete", args=[keys["personal"].pk])
    assert operator_client.post(delete, {"post": "yes"}).status_code == 403
    assert ApiKey.objects.filter(pk=keys["personal"].pk).exists()


@pytest.mark.parametrize(
    "lookup", ["digest", "digest__exact", "digest__startswith", "digest__isnull"]
)
def test_filtering_on_the_digest_is_refused(operator_client, keys, lookup):
    response = operator_client.get(CHANGELIST, {lookup: "00"})
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"kind": "personal"}, {"laptop", "soon", "gone", "old"}),
        ({"kind": "service"}, {"ci"}),
        ({"status": "active"}, {"laptop", "ci", "soon"}),
        ({"status": "expired"}, {"old"}),
        ({"status": "revoked"}, {"gone"}),
        ({"expiring": "7d"}, {"soon"}),
        ({"q": "deploy-bot"}, {"ci"}),
        ({"q": "member"}, {"laptop", "soon", "gone", "old"}),  # user e-mail
        ({"q": "laptop"}, {"laptop"}),
    ],
)
def test_filters_and_search(operator_client, keys, query, expected):
    response = operator_client.get(CHANGELIST, query)
    assert response.status_code == 200
    assert _names(response) == expected


def test_changelist_query_count_does_not_grow_with_keys(
    operator_client, keys, member, django_assert_max_num_queries
):
    for i in range(10):
        factories.make_api_key(member, name=f"extra {i}")
    operator_client.get(CHANGELIST)  # the session's first request also records where it is
    with django_assert_max_num_queries(15):
        operator_client.get(CHANGELIST)


def test_bulk_revoke_revokes_through_the_service_with_an_operator_event(
    operator_client, operator, keys
):
    chosen = [keys["personal"], keys["service"], keys["gone"]]
    response = operator_client.post(
        CHANGELIST,
        {"action": "revoke_selected", "_selected_action": [k.pk for k in chosen]},
    )
    assert response.status_code == 302
    for key in chosen[:2]:
        key.refresh_from_db()
        assert key.revoked_at is not None
        assert key.revoked_reason == ADMIN_REVOKE_REASON
    events = AuditEvent.objects.filter(action="key.revoked")
    assert {e.target_id for e in events} == {str(keys["personal"].pk), str(keys["service"].pk)}
    assert {(e.actor_kind, e.actor_label) for e in events} == {("operator", operator.email)}
    keys["soon"].refresh_from_db()
    assert keys["soon"].revoked_at is None


def test_admin_needs_a_verified_second_factor(client, operator, keys):
    client.force_login(operator)
    response = client.get(CHANGELIST)
    assert response.status_code == 302
