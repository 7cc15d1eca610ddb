"""bench/urls.py plus the probes of the federation rows: the same trivial view, authenticated
by a Keyward JWT through Keyward's API classes, by the JWT class alone, or by keyward_client."""

from django.urls import path
from keyward_client import drf as client_drf
from rest_framework.renderers import JSONRenderer

from bench.probes import KEYWARD_SCOPES, Probe
from bench.urls import urlpatterns as bench_urlpatterns
from federation.authentication import KeywardJWTAuthentication
from keys.authentication import BearerKeyAuthentication
from keys.permissions import HasScope


class JwtProbe(Probe):
    """What API v1 views are: a JWT or a key (the JWT class answers first), HasScope; the
    request's api.request event is written by KeyAuditMiddleware before the response."""

    authentication_classes = [KeywardJWTAuthentication, BearerKeyAuthentication]
    permission_classes = [HasScope]
    required_scopes = KEYWARD_SCOPES


class JwtOnlyProbe(Probe):
    """The JWT authentication class alone, without the key class: its api.request event is
    written all the same (the class marks the request as made with a credential)."""

    authentication_classes = [KeywardJWTAuthentication]
    permission_classes = [HasScope]
    required_scopes = KEYWARD_SCOPES


class ClientProbe(Probe):
    """Another DRF service: keyward_client verifies the JWT offline."""

    renderer_classes = [JSONRenderer]
    authentication_classes = [client_drf.KeywardJWTAuthentication]
    permission_classes = [client_drf.HasKeywardScope]
    required_scopes = KEYWARD_SCOPES


urlpatterns = [
    path("api/bench/fed/jwt/", JwtProbe.as_view()),
    path("api/bench/fed/jwt_only/", JwtOnlyProbe.as_view()),
    path("api/bench/fed/client/", ClientProbe.as_view()),
    *bench_urlpatterns,
]
