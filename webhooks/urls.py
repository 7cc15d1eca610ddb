from django.urls import path

from webhooks import views

app_name = "webhooks"

urlpatterns = [
    path("t/<slug:slug>/webhooks/", views.endpoint_list_view, name="list"),
    path("t/<slug:slug>/webhooks/<int:pk>/", views.endpoint_detail_view, name="detail"),
    path("t/<slug:slug>/webhooks/<int:pk>/test/", views.endpoint_test_view, name="test"),
    path("t/<slug:slug>/webhooks/<int:pk>/rotate/", views.endpoint_rotate_view, name="rotate"),
    path("t/<slug:slug>/webhooks/<int:pk>/enable/", views.endpoint_enable_view, name="enable"),
    path("t/<slug:slug>/webhooks/<int:pk>/delete/", views.endpoint_delete_view, name="delete"),
]
