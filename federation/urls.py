"""The keyless CI trusts pages of a service ID. config/urls.py includes them in the
``federation`` namespace together with the OAuth endpoints and published keys (api/oauth.py)."""

from django.urls import path

from federation import views

urlpatterns = [
    path("t/<slug:slug>/service-ids/<int:pk>/trusts/", views.trust_list_view, name="trusts"),
    path(
        "t/<slug:slug>/service-ids/<int:pk>/trusts/<int:trust_pk>/remove/",
        views.trust_remove_view,
        name="trust_remove",
    ),
]
