"""Rotation that finishes itself (issue 18, item 13): with the grace "until the new key is first
used", the old key works until the successor's first authenticated request, then stops at once
(key.rotation_completed, reason rotated_successor_used); at most 7 days either way."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.principals import Principal
from audit.models import AuditEvent
from keys import services
from keys.models import ApiKey
from tests import factories

pytestmark = pytest.mark.django_db

WHOAMI = "/api/v1/whoami/"


def _auth(token):
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


@pytest.fixture
def rotated(tenant):
    alice = factories.add_member(tenant, "member")
    old, old_token = factories.make_api_key(alice, name="deploy", days=90)
    new, new_token = services.key_rotate(
        actor=Principal.of_membership(alice), key=old, grace=services.FIRST_USE
    )
    old.refresh_from_db()
    return old, old_token, new, new_token


def _completed():
    return AuditEvent.objects.filter(action="key.rotation_completed")


def test_the_grace_is_capped_at_seven_days(rotated):
    old, _, new, _ = rotated
    assert old.rotated_at is not None and old.revoked_at is None
    assert old.expires_at <= timezone.now() + timedelta(days=7)
    assert new.completes_rotation_on_use
    rotation = AuditEvent.objects.get(action="key.rotated", target_id=str(new.pk))
    assert rotation.metadata["grace"] == "first_use" and rotation.metadata["until_first_use"]


def test_the_old_key_works_until_the_successor_is_first_used_then_stops(client, rotated):
    old, old_token, new, new_token = rotated
    assert client.get(WHOAMI, **_auth(old_token)).status_code == 200
    assert client.get(WHOAMI, **_auth(old_token)).status_code == 200
    assert not _completed().exists()

    assert client.get(WHOAMI, **_auth(new_token)).status_code == 200
    event = _completed().get()
    assert event.target_id == str(old.pk)
    assert event.metadata["reason"] == "rotated_successor_used"
    assert event.actor_id == str(new.pk)
    old.refresh_from_db()
    new.refresh_from_db()
    assert old.revoked_at is not None and old.revoked_reason == "rotated_successor_used"
    assert not new.completes_rotation_on_use

    response = client.get(WHOAMI, **_auth(old_token))
    assert response.status_code == 401
    denied = AuditEvent.objects.filter(action="api.denied", target_id=str(old.pk)).latest("id")
    assert denied.metadata["reason"] == "rotated_successor_used"
    # The successor keeps working, and completes the rotation only once.
    assert client.get(WHOAMI, **_auth(new_token)).status_code == 200
    assert _completed().count() == 1


def test_a_kept_predecessor_is_refused_at_once(client, postgresql, rotated):
    """The per-process key memory kept the old key (its fingerprint): it must not serve it."""
    _, old_token, _, new_token = rotated
    assert client.get(WHOAMI, **_auth(old_token)).status_code == 200  # found, and kept
    assert client.get(WHOAMI, **_auth(old_token)).status_code == 200  # served from memory
    assert client.get(WHOAMI, **_auth(new_token)).status_code == 200
    assert client.get(WHOAMI, **_auth(old_token)).status_code == 401


def test_a_predecessor_kept_by_another_process_is_served_nothing(client, postgresql, rotated):
    old, old_token, new, _ = rotated
    assert client.get(WHOAMI, **_auth(old_token)).status_code == 200  # kept here
    # Another process serves the successor's first request: this one's memory is untouched.
    services.key_complete_rotation(key=ApiKey.objects.get(pk=new.pk))
    assert client.get(WHOAMI, **_auth(old_token)).status_code == 401


def test_completion_happens_once_even_when_called_twice(rotated):
    old, _, new, _ = rotated
    first = services.key_complete_rotation(key=ApiKey.objects.get(pk=new.pk))
    second = services.key_complete_rotation(key=ApiKey.objects.get(pk=new.pk))
    assert first is not None and first.pk == old.pk and second is None
    assert _completed().count() == 1


def test_a_successor_never_used_leaves_the_old_key_to_expire_with_its_grace(client, rotated):
    old, old_token, _, _ = rotated
    ApiKey.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert client.get(WHOAMI, **_auth(old_token)).status_code == 401
    assert not _completed().exists()


def test_the_rotate_page_offers_until_first_use(client, tenant):
    alice = factories.add_member(tenant, "member")
    key, _ = factories.make_api_key(alice, name="laptop")
    factories.verify_session(client, alice.user)
    url = f"/t/{tenant.slug}/keys/{key.pk}/rotate/"
    assert "Until the new key is first used" in client.get(url).content.decode()
    response = client.post(url, {"grace": "first_use"})
    assert response.status_code == 200
    successor = ApiKey.objects.get(rotated_from=key)
    assert successor.completes_rotation_on_use
