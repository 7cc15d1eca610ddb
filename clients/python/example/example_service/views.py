"""The example's API: who is calling, and the reports (scope ``reports:read``)."""

from keyward_client.drf import HasKeywardScope, KeywardJWTAuthentication
from rest_framework.response import Response
from rest_framework.views import APIView

REPORTS = [{"id": 1, "title": "Q3 usage"}, {"id": 2, "title": "Q4 usage"}]


class KeywardApiView(APIView):
    authentication_classes = [KeywardJWTAuthentication]
    permission_classes = [HasKeywardScope]


class WhoamiApi(KeywardApiView):
    required_scopes: list[str] = []

    def get(self, request):
        user = request.user
        return Response({"sub": user.sub, "tenant": user.tenant, "scopes": sorted(user.scopes)})


class ReportListApi(KeywardApiView):
    required_scopes = ["reports:read"]

    def get(self, request):
        return Response({"tenant": request.user.tenant, "reports": REPORTS})
