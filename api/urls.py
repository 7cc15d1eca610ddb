"""API routes, included at /api/: v1, the OpenAPI schema and its docs (no key needed)."""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView

from api import accounts, audit, keys
from api.credentials import CredentialsRevokeApi
from api.errors import api_not_found
from api.schema import ApiDocsView

app_name = "api"

urlpatterns = [
    path("v1/whoami/", keys.WhoamiApi.as_view(), name="whoami"),
    path("v1/keys/", keys.KeyListApi.as_view(), name="keys"),
    path("v1/keys/<int:pk>/", keys.KeyDetailApi.as_view(), name="key"),
    path("v1/keys/<int:pk>/revoke/", keys.KeyRevokeApi.as_view(), name="key_revoke"),
    path("v1/keys/<int:pk>/usage/", keys.KeyUsageApi.as_view(), name="key_usage"),
    path("v1/leaks/", keys.LeakReportApi.as_view(), name="leaks"),
    path("v1/credentials/revoke", CredentialsRevokeApi.as_view(), name="credentials_revoke"),
    path("v1/service-ids/", accounts.ServiceIdListApi.as_view(), name="service_ids"),
    path("v1/service-ids/<int:pk>/", accounts.ServiceIdDetailApi.as_view(), name="service_id"),
    path("v1/members/", accounts.MemberListApi.as_view(), name="members"),
    path("v1/audit-events/", audit.AuditEventListApi.as_view(), name="audit_events"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", ApiDocsView.as_view(url_name="api:schema"), name="docs"),
    # Last: any other /api/ path is the API's JSON 404, not the portal's HTML page. DOTALL: a
    # path holding a newline (%0A) is an /api/ path too.
    re_path(r"^[\s\S]*\Z", api_not_found),
]
