"""The OAuth endpoints and the published keys, included at the root (config/urls.py)."""

from django.urls import path

from federation import views

app_name = "federation"

urlpatterns = [
    path("oauth/token", views.TokenExchangeApi.as_view(), name="token"),
    path("oauth/introspect", views.TokenIntrospectApi.as_view(), name="introspect"),
    path("oauth/revoke", views.TokenRevokeApi.as_view(), name="revoke"),
    path(".well-known/jwks.json", views.JwksApi.as_view(), name="jwks"),
    path(
        ".well-known/oauth-authorization-server",
        views.AuthorizationServerMetadataApi.as_view(),
        name="metadata",
    ),
]
