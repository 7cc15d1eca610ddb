"""clients/python/example against a live Keyward server: a key is exchanged over HTTP for a JWT
for the example's audience, which the example verifies offline against Keyward's JWKS (fetched
over HTTP); an opaque key is accepted through introspection; revocation and scopes hold."""

import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from keyward_client import drf, introspection
from rest_framework.test import APIRequestFactory

from audit.services import Actor
from keys.services import key_revoke
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)

# The example service (clients/python/example) is a project of its own, not a package.
EXAMPLE = Path(__file__).resolve().parents[2] / "clients" / "python" / "example"
if str(EXAMPLE) not in sys.path:
    sys.path.insert(0, str(EXAMPLE))

AUDIENCE = "https://reports.example.com"
GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS = "urn:ietf:params:oauth:token-type:access_token"


def _post(url: str, form: dict) -> tuple[int, dict]:
    request = urllib.request.Request(  # noqa: S310 - the live test server
        url,
        data=urllib.parse.urlencode(form).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - test server
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _exchange(keyward: str, key: str, **form) -> str:
    status, body = _post(
        f"{keyward}/oauth/token",
        {"grant_type": GRANT, "subject_token": key, "subject_token_type": ACCESS, **form},
    )
    assert status == 200, body
    return body["access_token"]


def _call(path: str, token: str | None):
    from example_service import views

    view = {"/reports/": views.ReportListApi, "/whoami/": views.WhoamiApi}[path]
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return view.as_view()(APIRequestFactory().get(path, **headers))


@pytest.fixture
def keyward(live_server, settings, tenant):
    settings.KEYWARD_EXTRA_SCOPES = {"reports:read": "Read reports (the example service)"}
    gateway = factories.make_service_id(tenant, name="reports-gateway", role="admin")
    _, introspection_key = factories.make_api_key(gateway, scopes=["tokens:introspect"])
    settings.KEYWARD_CLIENT = {
        "ISSUER": live_server.url,
        "AUDIENCE": AUDIENCE,
        "INTROSPECTION_KEY": introspection_key,
    }
    drf._verifier = None
    introspection.forget()
    yield live_server.url
    drf._verifier = None
    introspection.forget()


@pytest.fixture
def reports_key(tenant):
    bot = factories.make_service_id(tenant, name="reports-bot", role="admin")
    return factories.make_api_key(bot, scopes=["reports:read", "keys:read"])


def test_a_jwt_exchanged_at_keyward_is_served_by_the_example(keyward, reports_key, tenant):
    key, plaintext = reports_key
    token = _exchange(keyward, plaintext, audience=AUDIENCE)
    response = _call("/reports/", token)
    assert response.status_code == 200, response.data
    assert response.data["tenant"] == tenant.slug and len(response.data["reports"]) == 2
    whoami = _call("/whoami/", token).data
    assert whoami["sub"] == f"service_id:{key.service_id_id}"
    assert whoami["scopes"] == ["keys:read", "reports:read"]
    assert drf.verifier().jwks.fetches == 1  # Keyward's JWKS, over HTTP, once


def test_the_example_enforces_audience_and_scope(keyward, reports_key):
    _, plaintext = reports_key
    for_keyward = _exchange(keyward, plaintext)  # no audience: a token for Keyward itself
    assert _call("/reports/", for_keyward).status_code == 401
    narrowed = _exchange(keyward, plaintext, audience=AUDIENCE, scope="keys:read")
    assert _call("/reports/", narrowed).status_code == 403
    assert _call("/reports/", None).status_code == 401


def test_an_opaque_key_is_accepted_through_introspection_until_revoked(keyward, reports_key):
    key, plaintext = reports_key
    assert _call("/reports/", plaintext).status_code == 200
    key_revoke(actor=Actor.cli("test"), key=key, reason="leaked")
    introspection.forget()  # the example's short cache (30 s by default) would hold it
    assert _call("/reports/", plaintext).status_code == 401
    status, body = _post(
        f"{keyward}/oauth/token",
        {"grant_type": GRANT, "subject_token": plaintext, "subject_token_type": ACCESS},
    )
    assert status == 400 and body["error"] == "invalid_grant"


def test_a_rotated_signing_key_is_picked_up_by_the_example(keyward, reports_key, settings):
    from django.core.management import call_command

    _, plaintext = reports_key
    assert _call("/reports/", _exchange(keyward, plaintext, audience=AUDIENCE)).status_code == 200
    call_command("jwt_rotate_key", stdout=open("/dev/null", "w"))  # noqa: SIM115
    settings.KEYWARD_CLIENT = {**settings.KEYWARD_CLIENT, "JWKS_MIN_REFRESH_SECONDS": 0}
    token = _exchange(keyward, plaintext, audience=AUDIENCE)
    assert _call("/reports/", token).status_code == 200
