"""The OAuth endpoints, the published keys and the trusts pages, included at the root
(config/urls.py)."""

from django.urls import path

from federation import api, views

app_name = "federation"

urlpatterns = [
    path("oauth/token", api.TokenExchangeApi.as_view(), name="token"),
    path("oauth/introspect", api.TokenIntrospectApi.as_view(), name="introspect"),
    path("oauth/revoke", api.TokenRevokeApi.as_view(), name="revoke"),
    path(".well-known/jwks.json", api.JwksApi.as_view(), name="jwks"),
    path(
        ".well-known/oauth-authorization-server",
        api.AuthorizationServerMetadataApi.as_view(),
        name="metadata",
    ),
    # Portal: keyless CI trusts of a service ID.
    path("t/<slug:slug>/service-ids/<int:pk>/trusts/", views.trust_list_view, name="trusts"),
    path(
        "t/<slug:slug>/service-ids/<int:pk>/trusts/<int:trust_pk>/remove/",
        views.trust_remove_view,
        name="trust_remove",
    ),
]
