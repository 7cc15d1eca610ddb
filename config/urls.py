from django.contrib import admin
from django.urls import include, path

from api import oauth
from config import views
from federation import urls as federation_urls
from metrics.views import metrics_view

# The OAuth endpoints and published keys (/oauth/…, /.well-known/…: RFC 8693, 7662, 7009, 8414)
# and the trusts pages, in one namespace.
federation_patterns = (oauth.urlpatterns + federation_urls.urlpatterns, "federation")

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("metrics", metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/", include("api.urls")),
    path("", include(federation_patterns)),
    path("", include("keys.urls")),
    path("", include("webhooks.urls")),
    path("", include("accounts.urls")),
]
