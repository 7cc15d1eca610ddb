"""The probe views: one trivial view, mounted once per row with different authentication.

The competitor rows import only DRF and the pinned competitors. The Keyward rows import
``keys.authentication``, ``keys.permissions``, ``keys.throttling`` and ``api.base`` lazily
(``keyward_views()``), so the bench runs while those modules are still being written: a row whose
classes cannot be imported answers 501 with the reason, and run.py reports it "not available".
"""

import traceback

from django.http import JsonResponse
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from rest_framework.authentication import TokenAuthentication
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_api_key.permissions import HasAPIKey

KEYWARD_SCOPES = ["keys:read"]


class Probe(APIView):
    renderer_classes = [JSONRenderer]
    authentication_classes: list = []
    permission_classes: list = [AllowAny]
    throttle_classes: list = []

    def get(self, request):
        return Response({"ok": True})


class BaselineProbe(Probe):
    pass


class DrfTokenProbe(Probe):
    authentication_classes = [TokenAuthentication]
    permission_classes = [IsAuthenticated]


class KnoxProbe(Probe):
    authentication_classes = [KnoxTokenAuthentication]
    permission_classes = [IsAuthenticated]


class ApiKeyProbe(Probe):
    authentication_classes = []
    permission_classes = [HasAPIKey]


def durability(request):
    """The audit durability settings as this worker sees them (bench/durability.py)."""
    from bench.durability import settings_now

    return JsonResponse(settings_now())


def _unavailable(reason: str):
    def view(request, *args, **kwargs):
        return JsonResponse({"code": "not_available", "detail": reason}, status=501)

    return view


def keyward_views() -> dict:
    """Return the Keyward probe views by row name; a row that cannot be built gets a 501 view."""
    views = {}
    try:
        from keys.authentication import BearerKeyAuthentication
        from keys.permissions import HasScope
    except Exception:  # noqa: BLE001 - any import failure means "not written yet"
        reason = "keys.authentication / keys.permissions: " + traceback.format_exc(limit=1)
        return {name: _unavailable(reason) for name in ("auth", "full", "malformed")}

    class KeywardAuthProbe(Probe):
        authentication_classes = [BearerKeyAuthentication]
        permission_classes = [HasScope]
        throttle_classes = []
        required_scopes = KEYWARD_SCOPES

    views["auth"] = KeywardAuthProbe.as_view()
    views["malformed"] = KeywardAuthProbe.as_view()
    try:
        from api.base import KeywardApiView
        from keys.throttling import KeyRateThrottle
    except Exception:  # noqa: BLE001
        reason = "api.base / keys.throttling: " + traceback.format_exc(limit=1)
        views["full"] = _unavailable(reason)
        return views

    class KeywardFullProbe(KeywardApiView):
        renderer_classes = [JSONRenderer]
        authentication_classes = [BearerKeyAuthentication]
        permission_classes = [HasScope]
        throttle_classes = [KeyRateThrottle]
        required_scopes = KEYWARD_SCOPES

        def get(self, request):
            return Response({"ok": True})

    views["full"] = KeywardFullProbe.as_view()
    # A malformed token sent to the API meets what every API v1 view is: the full stack.
    views["malformed"] = views["full"]
    return views
