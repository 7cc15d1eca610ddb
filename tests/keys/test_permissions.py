"""HasScope: the key's scopes, bounded by its owner's current role; misconfiguration is loud."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory

from accounts import services as account_services
from accounts.principals import Principal
from api.base import KeywardApiView
from keys.permissions import ROLE_LACKS_SCOPE, HasScope, required_scopes_for
from tests import factories

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]


class ForgetfulApi(KeywardApiView):
    def get(self, request):
        return Response({})


class AuditReaderApi(KeywardApiView):
    permission_classes = [HasScope("audit:read")]

    def get(self, request):
        return Response({"ok": True})


class PerMethodApi(KeywardApiView):
    required_scopes = {"GET": ["keys:read"]}

    def get(self, request):
        return Response({})

    def post(self, request):
        return Response({})


def _call(view_class, token: str | None = None, method: str = "get"):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    request = getattr(APIRequestFactory(), method)("/api/v1/test/", **headers)
    return view_class.as_view()(request)


@pytest.fixture
def admin(tenant):
    return factories.add_member(tenant, "admin")


def test_view_without_required_scopes_is_improperly_configured(admin):
    _, token = factories.make_api_key(admin)
    with pytest.raises(ImproperlyConfigured, match="ForgetfulApi"):
        required_scopes_for(ForgetfulApi(), "GET")
    response = _call(ForgetfulApi, token)
    assert response.status_code == 500  # never silently open


def test_dict_without_an_implemented_method_is_improperly_configured():
    with pytest.raises(ImproperlyConfigured, match="POST"):
        required_scopes_for(PerMethodApi(), "POST")
    assert required_scopes_for(PerMethodApi(), "HEAD") == ["keys:read"]
    assert required_scopes_for(PerMethodApi(), "DELETE") == []  # the view answers 405


def test_has_scope_instance_requires_its_own_scopes(admin):
    _, without = factories.make_api_key(admin, name="a", scopes=["keys:read"])
    _, with_scope = factories.make_api_key(admin, name="b", scopes=["audit:read"])
    refused = _call(AuditReaderApi, without)
    assert refused.status_code == 403
    assert refused["WWW-Authenticate"] == (
        'Bearer realm="api", error="insufficient_scope", scope="audit:read"'
    )
    assert _call(AuditReaderApi, with_scope).data == {"ok": True}


def test_unauthenticated_request_is_401_not_403():
    response = _call(AuditReaderApi)
    assert response.status_code == 401
    assert response.data["code"] == "not_authenticated"
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_demoted_owner_loses_scopes_above_the_new_role_at_once(api_client, tenant, admin):
    _, token = factories.make_api_key(admin, scopes=["service_ids:write", "keys:read"])
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    body = {"name": "bot", "role": "member"}
    owner = tenant.memberships.get(role="owner")
    account_services.membership_change_role(
        actor=Principal.of_membership(owner), target=admin, role="member"
    )
    response = api_client.post("/api/v1/service-ids/", body, format="json", **headers)
    assert response.status_code == 403
    assert response.json() == {
        "code": "insufficient_scope",
        "detail": ROLE_LACKS_SCOPE % {"scopes": "service_ids:write"},
    }
    assert api_client.get("/api/v1/keys/", **headers).status_code == 200  # still within role


def test_whoami_shows_only_the_scopes_the_role_still_allows(api_client, tenant, admin):
    _, token = factories.make_api_key(admin, scopes=["keys:read", "service_ids:write"])
    owner = tenant.memberships.get(role="owner")
    account_services.membership_change_role(
        actor=Principal.of_membership(owner), target=admin, role="member"
    )
    key = api_client.get("/api/v1/whoami/", HTTP_AUTHORIZATION=f"Bearer {token}").json()["key"]
    assert key["scopes"] == ["keys:read", "service_ids:write"]
    assert key["effective_scopes"] == ["keys:read"]


def test_every_api_view_declares_its_scopes_and_uses_the_keyward_base():
    from api import urls as api_urls

    views = [
        p.callback.view_class for p in api_urls.urlpatterns if hasattr(p.callback, "view_class")
    ]
    api_views = [v for v in views if v.__module__.startswith("api.") and v.__name__.endswith("Api")]
    assert len(api_views) == 11
    for view in api_views:
        assert issubclass(view, KeywardApiView)
        assert "required_scopes" in vars(view), view.__name__
        for method in view.http_method_names:
            if hasattr(view, method) and method not in ("options", "head"):
                required_scopes_for(view(), method.upper())  # raises if missing
