from django.urls import path

from audit import views

app_name = "audit"

urlpatterns = [
    path("t/<slug:slug>/audit/", views.event_list_view, name="list"),
    path("t/<slug:slug>/audit/<int:pk>/", views.event_detail_view, name="detail"),
    path(
        "t/<slug:slug>/audit/export.csv", views.event_export_view, {"fmt": "csv"}, name="export_csv"
    ),
    path(
        "t/<slug:slug>/audit/export.jsonl",
        views.event_export_view,
        {"fmt": "jsonl"},
        name="export_jsonl",
    ),
]
