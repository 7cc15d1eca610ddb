import pytest

from tests import factories


@pytest.fixture
def tenant(db):
    return factories.make_tenant("acme")


@pytest.fixture
def owner(tenant):
    return tenant.memberships.get(role="owner").user


@pytest.fixture
def admin_member(tenant):
    return factories.add_member(tenant, "admin")


@pytest.fixture
def member(tenant):
    return factories.add_member(tenant, "member")


@pytest.fixture
def auditor(tenant):
    return factories.add_member(tenant, "auditor")


@pytest.fixture
def other_tenant(db):
    return factories.make_tenant("globex")


@pytest.fixture
def owner_client(client, owner):
    factories.verify_session(client, owner)
    return client


@pytest.fixture(autouse=True)
def _clear_cache():
    from django.core.cache import cache

    cache.clear()
    yield
