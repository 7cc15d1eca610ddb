"""A key sent in a URL: the 400 says what the tenant's leak policy did with it, never "revoke
it" about a key that was already revoked."""

import pytest

from accounts.models import LeakPolicy, Tenant
from keys import leaks, tokens
from tests import factories

pytestmark = pytest.mark.django_db


def _sent_in_url(api_client, token: str):
    response = api_client.get(f"/api/v1/whoami/?access_token={token}")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"
    return response.json()["detail"]


@pytest.mark.parametrize(
    ("policy", "action"),
    [
        (LeakPolicy.REVOKE, leaks.Action.REVOKED),
        (LeakPolicy.REVOKE_AND_NOTIFY, leaks.Action.REVOKED_AND_NOTIFIED),
        (LeakPolicy.NOTIFY, leaks.Action.NOTIFIED),
    ],
)
def test_the_answer_says_what_the_leak_policy_did(api_client, tenant, owner, policy, action):
    Tenant.objects.filter(pk=tenant.pk).update(leak_policy=policy)
    key, token = factories.make_api_key(owner, tenant)
    detail = _sent_in_url(api_client, token)
    assert detail == leaks.TOKEN_IN_QUERY_DONE[action]
    key.refresh_from_db()
    if policy == LeakPolicy.NOTIFY:
        assert key.revoked_at is None and "still works" in detail
        assert "revoke" in detail  # the holder is asked to act: the key still works
    else:
        assert key.revoked_at is not None
        assert "was revoked" in detail and "no longer works" in detail
        assert "revoke it" not in detail
    assert token not in detail


def test_the_default_policy_revokes_and_the_answer_says_so(api_client, tenant, owner):
    assert Tenant.objects.get(pk=tenant.pk).leak_policy == LeakPolicy.REVOKE
    _, token = factories.make_api_key(owner, tenant)
    assert "was revoked under your tenant's leak policy" in _sent_in_url(api_client, token)


def test_sending_the_revoked_key_again_says_it_was_already_revoked(api_client, tenant, owner):
    _, token = factories.make_api_key(owner, tenant)
    _sent_in_url(api_client, token)
    assert _sent_in_url(api_client, token) == leaks.TOKEN_IN_QUERY_INACTIVE


def test_an_unknown_token_gets_the_general_advice(api_client, tenant):
    assert _sent_in_url(api_client, tokens.generate("p")) == leaks.TOKEN_IN_QUERY
