"""A test-only URLconf: an installation's own DRF views, one of each kind, that take Keyward
keys without inheriting anything from Keyward's API (tests/api/test_recording.py)."""

from django.urls import include, path
from rest_framework import viewsets
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter
from rest_framework.views import APIView


class PlainView(APIView):
    required_scopes = []  # any valid key (the default permission, keys.permissions.HasScope)

    def get(self, request):
        return Response({"key": request.auth.pk})

    def post(self, request):
        return Response({"got": request.data})


class ThingViewSet(viewsets.ViewSet):
    required_scopes = []

    def list(self, request):
        return Response([{"id": 1}])

    def retrieve(self, request, pk=None):
        raise RuntimeError("a bug in the installation's view")


@api_view(["GET"])
@permission_classes([IsAuthenticated])
def function_view(request):
    return Response({"function": True})


router = SimpleRouter()
router.register("things", ThingViewSet, basename="things")

# Under /api/ like Keyward's own (the portal asks for a login elsewhere), before Keyward's URLs.
urlpatterns = [
    path("api/custom/plain/", PlainView.as_view()),
    path("api/custom/function/", function_view),
    path("api/custom/", include(router.urls)),
    path("", include("config.urls")),
]
