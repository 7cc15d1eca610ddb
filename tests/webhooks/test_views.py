"""Portal pages of webhooks: owners and admins only, sudo to add or rotate, the secret shown
once (no-store), the delivery log, the test button; other tenants' endpoints are 404."""

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from tests import factories
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]


def _url(name, slug="acme", **kwargs):
    return reverse(f"webhooks:{name}", kwargs={"slug": slug, **kwargs})


def test_owner_adds_an_endpoint_and_sees_its_secret_once(
    client, owner, receiver, local_receivers_allowed
):
    factories.verify_session(client, owner)
    response = client.post(
        _url("list"), {"url": receiver.url, "events": ["key.issued", "key.expiring"]}
    )
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    secret = response.context["secret"]
    assert secret.startswith("whsec_") and secret.encode() in response.content
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.events == ["key.expiring", "key.issued"]
    detail = client.get(_url("detail", pk=endpoint.pk))
    assert detail.status_code == 200 and secret.encode() not in detail.content


def test_adding_an_endpoint_needs_a_fresh_second_factor(client, owner, receiver):
    factories.verify_session(client, owner, sudo=False)
    response = client.post(_url("list"), {"url": receiver.url, "events": ["key.issued"]})
    assert response.status_code == 302 and reverse("accounts:sudo") in response["Location"]
    assert not WebhookEndpoint.objects.exists()


def test_a_private_url_is_a_400_with_the_reason(client, owner):
    factories.verify_session(client, owner)
    response = client.post(
        _url("list"), {"url": "https://169.254.169.254/latest", "events": ["key.issued"]}
    )
    assert response.status_code == 400
    assert b"not public" in response.content
    assert not WebhookEndpoint.objects.exists()
    assert not AuditEvent.objects.filter(action="webhook.endpoint_created").exists()


@pytest.mark.parametrize("role", ["member", "auditor"])
def test_members_and_auditors_get_403(client, tenant, role):
    user = factories.add_member(tenant, role).user
    factories.verify_session(client, user)
    assert client.get(_url("list")).status_code == 403


def test_another_tenants_endpoint_is_404(client, endpoint, other_tenant):
    other_owner = other_tenant.memberships.get(role="owner").user
    factories.verify_session(client, other_owner)
    ep, _ = endpoint
    assert client.get(_url("detail", slug="globex", pk=ep.pk)).status_code == 404
    for name in ("test", "rotate", "enable", "delete"):
        assert client.post(_url(name, slug="globex", pk=ep.pk)).status_code == 404
    assert WebhookEndpoint.objects.filter(pk=ep.pk).exists()


def test_the_test_button_delivers_and_the_log_shows_it(
    client, owner, endpoint, receiver, django_capture_on_commit_callbacks
):
    ep, secret = endpoint
    factories.verify_session(client, owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(_url("test", pk=ep.pk))
    assert response.status_code == 302
    assert receiver.received[0].verify(secret)["type"] == "webhook.test"
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.SUCCEEDED
    page = client.get(_url("detail", pk=ep.pk)).content.decode()
    assert delivery.msg_id in page and "delivered" in page and "HTTP 204" in page


def test_rotate_shows_the_new_secret_once_and_needs_sudo(client, owner, endpoint):
    ep, old = endpoint
    factories.verify_session(client, owner, sudo=False)
    assert client.post(_url("rotate", pk=ep.pk)).status_code == 302
    factories.verify_session(client, owner)
    response = client.post(_url("rotate", pk=ep.pk))
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    assert response.context["secret"] != old
    assert b"two signatures" in response.content


def test_delete_removes_the_endpoint_audited(client, owner, endpoint):
    ep, _ = endpoint
    factories.verify_session(client, owner)
    assert client.post(_url("delete", pk=ep.pk)).status_code == 302
    assert not WebhookEndpoint.objects.exists()
    assert AuditEvent.objects.filter(action="webhook.endpoint_deleted").count() == 1


def test_an_admin_enables_a_disabled_endpoint(client, tenant, endpoint):
    ep, _ = endpoint
    WebhookEndpoint.objects.update(disabled_at=ep.created_at, disabled_reason="x")
    admin = factories.add_member(tenant, "admin").user
    factories.verify_session(client, admin)
    assert b"Disabled" in client.get(_url("detail", pk=ep.pk)).content
    assert client.post(_url("enable", pk=ep.pk)).status_code == 302
    assert WebhookEndpoint.objects.get().is_enabled
    assert AuditEvent.objects.filter(action="webhook.endpoint_enabled").count() == 1


def test_get_on_an_action_is_405(client, owner, endpoint):
    factories.verify_session(client, owner)
    assert client.get(_url("delete", pk=endpoint[0].pk)).status_code == 405
