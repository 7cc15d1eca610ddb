import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from keyward_client import drf, introspection
from keyward_client.verify import JWKSCache, KeywardVerifier
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

ISSUER = "https://keyward.example"
AUDIENCE = "https://reports.example"
SETTINGS = {"ISSUER": ISSUER, "AUDIENCE": AUDIENCE}


class Reports(APIView):
    authentication_classes = [drf.KeywardJWTAuthentication]
    permission_classes = [drf.HasKeywardScope]
    required_scopes = {"GET": ["reports:read"], "POST": ["reports:write"]}

    def get(self, request):
        return Response({"sub": request.user.sub, "tenant": request.user.tenant})

    def post(self, request):
        return Response({"ok": True})


class Undeclared(Reports):
    required_scopes = None


@pytest.fixture
def service(issuer):
    with override_settings(KEYWARD_CLIENT=SETTINGS):
        drf._verifier = KeywardVerifier(
            issuer=ISSUER, audience=AUDIENCE, jwks=JWKSCache("https://x/jwks", fetch=issuer.jwks)
        )
        yield
    drf._verifier = None
    introspection.forget()


def call(view, method="get", token=None):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    request = getattr(APIRequestFactory(), method)("/reports/", **headers)
    return view.as_view()(request)


def test_a_jwt_with_the_scope_is_served(service, issuer):
    response = call(Reports, token=issuer.token())
    assert response.status_code == 200
    assert response.data == {"sub": "service_id:7", "tenant": "acme"}


def test_a_missing_scope_is_403(service, issuer):
    assert call(Reports, "post", token=issuer.token()).status_code == 403


@pytest.mark.parametrize("token", [None, "garbage", "a.b.c"])
def test_no_or_bad_token_is_401_with_a_challenge(service, token):
    response = call(Reports, token=token)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_token_for_another_service_is_401(service, issuer):
    assert call(Reports, token=issuer.token(aud="https://billing.example")).status_code == 401


def test_a_view_without_required_scopes_is_a_configuration_error(service, issuer):
    request = APIRequestFactory().get("/reports/")
    request.user = None
    with pytest.raises(ImproperlyConfigured):
        drf.HasKeywardScope().has_permission(request, Undeclared())


def test_opaque_keys_are_refused_unless_introspection_is_configured(service):
    assert call(Reports, token="kws_" + "a" * 38).status_code == 401


def test_opaque_keys_are_introspected_when_configured(service, monkeypatch):
    answers = {"kws_good": {"active": True, "scope": "reports:read", "sub": "service_id:3"}}
    posts = []

    def fake_introspect(token, **options):
        posts.append(options["service_key"])
        return answers.get(token, {"active": False})

    monkeypatch.setattr(drf._introspect, "introspect", fake_introspect)
    with override_settings(KEYWARD_CLIENT={**SETTINGS, "INTROSPECTION_KEY": "kws_gateway"}):
        assert call(Reports, token="kws_good").status_code == 200
        assert call(Reports, token="kws_bad").status_code == 401
    assert posts == ["kws_gateway", "kws_gateway"]


def test_settings_are_required():
    drf._verifier = None
    with override_settings(KEYWARD_CLIENT={}), pytest.raises(ImproperlyConfigured):
        drf.verifier()
