from urllib.parse import urlencode

import pytest

from federation import authentication, revocation, signing
from tests import factories

GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS = "urn:ietf:params:oauth:token-type:access_token"
ISSUER = "http://testserver"


@pytest.fixture(autouse=True)
def _jwt_events_committed(settings):
    """These tests read a JWT request's event right after its response, in the test's own
    transaction: its event is committed in the request (KEYWARD_AUDIT_JWT_EVENTS=committed).
    The default, batched, is tested in test_jwt_batched.py with committed transactions."""
    settings.KEYWARD_AUDIT_JWT_EVENTS = "committed"


@pytest.fixture(autouse=True)
def _fresh_federation_state():
    signing.forget()
    revocation.forget()
    authentication.forget_verified()
    yield
    signing.forget()
    revocation.forget()
    authentication.forget_verified()


def exchange(client, subject_token, /, **form):
    """POST /oauth/token as a form, the way curl and RFC 8693 clients send it."""
    body = {"grant_type": GRANT, "subject_token": subject_token, "subject_token_type": ACCESS}
    body.update(form)
    return post_form(client, "/oauth/token", body)


def post_form(client, path, body, **headers):
    return client.post(
        path, urlencode(body), content_type="application/x-www-form-urlencoded", **headers
    )


def jwt_for(client, subject_token, /, **form) -> str:
    response = exchange(client, subject_token, **form)
    assert response.status_code == 200, response.content
    return response.json()["access_token"]


@pytest.fixture
def owner_key(tenant, owner):
    return factories.make_api_key(owner, tenant, scopes=["keys:read", "audit:read"])


@pytest.fixture
def introspector(tenant):
    service_id = factories.make_service_id(tenant, name="gateway", role="admin")
    return factories.make_api_key(service_id, scopes=["tokens:introspect"])
