import pytest

from tests.api.world import make_world


@pytest.fixture
def world(tenant, owner, other_tenant):
    return make_world(tenant, owner, other_tenant)
