"""API routes, included at /api/: v1 for keys, the OpenAPI schema and its docs (no key needed)."""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView

from audit import api as audit_api
from keys import api

app_name = "api"

urlpatterns = [
    path("v1/whoami/", api.WhoamiApi.as_view(), name="whoami"),
    path("v1/keys/", api.KeyListApi.as_view(), name="keys"),
    path("v1/keys/<int:pk>/", api.KeyDetailApi.as_view(), name="key"),
    path("v1/keys/<int:pk>/revoke/", api.KeyRevokeApi.as_view(), name="key_revoke"),
    path("v1/keys/<int:pk>/usage/", api.KeyUsageApi.as_view(), name="key_usage"),
    path("v1/leaks/", api.LeakReportApi.as_view(), name="leaks"),
    path("v1/service-ids/", api.ServiceIdListApi.as_view(), name="service_ids"),
    path("v1/service-ids/<int:pk>/", api.ServiceIdDetailApi.as_view(), name="service_id"),
    path("v1/members/", api.MemberListApi.as_view(), name="members"),
    path("v1/audit-events/", audit_api.AuditEventListApi.as_view(), name="audit_events"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", api.ApiDocsView.as_view(url_name="api:schema"), name="docs"),
    # Last: any other /api/ path is the API's JSON 404, not the portal's HTML page. DOTALL: a
    # path holding a newline (%0A) is an /api/ path too.
    re_path(r"^[\s\S]*\Z", api.api_not_found),
]
