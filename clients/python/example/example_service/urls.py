from django.urls import path

from example_service import views

urlpatterns = [
    path("whoami/", views.WhoamiApi.as_view()),
    path("reports/", views.ReportListApi.as_view()),
]
