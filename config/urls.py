from django.contrib import admin
from django.urls import include, path

from config import views
from metrics.views import metrics_view

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("metrics", metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/", include("api.urls")),
    path("", include("federation.urls")),  # /oauth/… and /.well-known/… (RFC 8693, 8414)
    path("", include("keys.urls")),
    path("", include("webhooks.urls")),
    path("", include("accounts.urls")),
]
