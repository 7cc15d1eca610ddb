"""Middleware of the ground floor (common/middleware.py)."""

import pytest
from django.urls import reverse

from tests import factories

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]

PRIVATE_PAGES = [
    ("accounts:tenant_home", {}),
    ("keys:list", {}),
    ("keys:review", {}),
    ("keys:issue", {}),
    ("keys:policy", {}),
    ("accounts:members", {}),
    ("accounts:service_ids", {}),
    ("accounts:audit_list", {}),
]


@pytest.mark.parametrize(("name", "kwargs"), PRIVATE_PAGES)
def test_every_tenant_page_with_keys_members_or_audit_data_is_no_store(
    owner_client, tenant, name, kwargs
):
    response = owner_client.get(reverse(name, kwargs={"slug": tenant.slug, **kwargs}))
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]


def test_key_and_account_pages_are_no_store(owner_client, tenant, owner):
    key, _ = factories.make_api_key(owner, tenant)
    for url in (
        reverse("keys:detail", kwargs={"slug": tenant.slug, "pk": key.pk}),
        reverse("accounts:security"),
        "/admin/login/",
    ):
        response = owner_client.get(url)
        assert "no-store" in response.get("Cache-Control", ""), url


def test_a_page_that_reads_no_session_keeps_its_caching(client):
    assert not client.get("/healthz").has_header("Cache-Control")
