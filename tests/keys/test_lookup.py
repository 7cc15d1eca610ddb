import pytest

from accounts.models import Membership
from keys import tokens
from keys.lookup import key_by_digest
from keys.models import ApiKey
from tests import factories

pytestmark = pytest.mark.django_db


def _orm(key_id):
    return ApiKey.objects.select_related("tenant", "user", "service_id").get(pk=key_id)


def _same(a, b, fields):
    return all(getattr(a, f) == getattr(b, f) for f in fields)


def test_personal_key_matches_what_the_orm_builds(tenant, owner, django_assert_num_queries):
    key, token = factories.make_api_key(
        owner, tenant, scopes=["keys:read"], allowed_ips=["10.0.0.0/8"]
    )
    with django_assert_num_queries(1):
        found, role = key_by_digest(tokens.digest(token))
        assert found.tenant.slug == "acme" and found.user.email == owner.email  # no lazy loads
    expected = _orm(key.pk)
    key_fields = [f.attname for f in ApiKey._meta.concrete_fields if f.name != "digest"]
    assert _same(found, expected, key_fields)
    assert found.scopes == ["keys:read"] and found.allowed_ips == ["10.0.0.0/8"]
    assert _same(found.tenant, expected.tenant, [f.attname for f in tenant._meta.concrete_fields])
    assert found.service_id is None and role == "owner"


def test_service_key_has_no_user_and_its_service_id_role(tenant):
    service_id = factories.make_service_id(tenant, "ci", role="auditor")
    _, token = factories.make_api_key(service_id, scopes=["audit:read"])
    found, role = key_by_digest(tokens.digest(token))
    assert found.user is None and role == "auditor"
    assert found.service_id.name == "ci" and found.service_id.role == "auditor"


def test_removed_member_has_no_role_and_unknown_digest_is_none(tenant, member):
    _, token = factories.make_api_key(member, scopes=["keys:read"])
    Membership.objects.filter(pk=member.pk).delete()
    assert key_by_digest(tokens.digest(token))[1] is None
    assert key_by_digest(b"\0" * 32) is None
