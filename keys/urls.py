from django.urls import path

from keys import views
from keys.views import approvals, edit, inventory
from keys.views import listing as key_list

app_name = "keys"

urlpatterns = [
    path("t/<slug:slug>/keys/", key_list.key_list_view, name="list"),
    path("t/<slug:slug>/keys/revoke/", key_list.key_bulk_revoke_view, name="bulk_revoke"),
    path("t/<slug:slug>/keys/export.csv", inventory.key_export_view, name="export"),
    path("t/<slug:slug>/keys/new/", views.key_issue_view, name="issue"),
    path("t/<slug:slug>/keys/review/", views.key_review_view, name="review"),
    path("t/<slug:slug>/keys/approvals/", approvals.approval_queue_view, name="approvals"),
    path(
        "t/<slug:slug>/keys/<int:pk>/approval/",
        approvals.approval_decide_view,
        name="approval_decide",
    ),
    path("t/<slug:slug>/keys/<int:pk>/", views.key_detail_view, name="detail"),
    path("t/<slug:slug>/keys/<int:pk>/revoke/", views.key_revoke_view, name="revoke"),
    path("t/<slug:slug>/keys/<int:pk>/rotate/", views.key_rotate_view, name="rotate"),
    path("t/<slug:slug>/keys/<int:pk>/narrow/", views.key_narrow_view, name="narrow"),
    path("t/<slug:slug>/keys/<int:pk>/alerts/", views.key_network_alert_view, name="alerts"),
    path("t/<slug:slug>/keys/<int:pk>/edit/", edit.key_edit_view, name="edit"),
    path(
        "t/<slug:slug>/service-ids/<int:sid>/keys/new/",
        views.service_key_issue_view,
        name="service_issue",
    ),
    path(
        "t/<slug:slug>/service-ids/<int:pk>/",
        views.service_id_detail_view,
        name="service_id_detail",
    ),
    path("t/<slug:slug>/policy/", views.tenant_policy_view, name="policy"),
    path("t/<slug:slug>/members/<int:pk>/remove/", views.member_remove_view, name="member_remove"),
]
