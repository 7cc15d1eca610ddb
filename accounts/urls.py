from django.contrib.auth import views as auth_views
from django.urls import path

from accounts import audit_views, views

app_name = "accounts"

urlpatterns = [
    path("", views.home_view, name="home"),
    path("account/login/", views.login_view, name="login"),
    path("account/logout/", views.logout_view, name="logout"),
    path("account/mfa/enrol/", views.mfa_enrol_view, name="mfa_enrol"),
    path("account/mfa/verify/", views.mfa_verify_view, name="mfa_verify"),
    path("account/sudo/", views.sudo_view, name="sudo"),
    path("account/security/", views.security_view, name="security"),
    path(
        "account/security/backup-codes/",
        views.backup_codes_regenerate_view,
        name="backup_codes_regenerate",
    ),
    path(
        "account/security/authenticators/<int:pk>/remove/",
        views.totp_remove_view,
        name="totp_remove",
    ),
    path("account/password/", views.PasswordChangeView.as_view(), name="password_change"),
    path("account/password-reset/", views.PasswordResetView.as_view(), name="password_reset"),
    path(
        "account/password-reset/sent/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "account/reset/<uidb64>/<token>/",
        views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "account/reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("invite/accept/", views.invitation_accept_view, name="invitation_accept"),
    path("invite/<str:secret>/", views.invitation_view, name="invitation"),
    path("t/<slug:slug>/", views.tenant_home_view, name="tenant_home"),
    path("t/<slug:slug>/members/", views.member_list_view, name="members"),
    path("t/<slug:slug>/members/invite/", views.member_invite_view, name="member_invite"),
    path("t/<slug:slug>/members/<int:pk>/role/", views.member_role_view, name="member_role"),
    path("t/<slug:slug>/members/<int:pk>/remove/", views.member_remove_view, name="member_remove"),
    path(
        "t/<slug:slug>/invitations/<int:pk>/revoke/",
        views.invitation_revoke_view,
        name="invitation_revoke",
    ),
    path("t/<slug:slug>/service-ids/", views.service_id_list_view, name="service_ids"),
    path(
        "t/<slug:slug>/service-ids/<int:pk>/toggle/",
        views.service_id_toggle_view,
        name="service_id_toggle",
    ),
    path("t/<slug:slug>/audit/", audit_views.event_list_view, name="audit_list"),
    path("t/<slug:slug>/audit/<int:pk>/", audit_views.event_detail_view, name="audit_detail"),
    path(
        "t/<slug:slug>/audit/export.csv",
        audit_views.event_export_view,
        {"fmt": "csv"},
        name="audit_export_csv",
    ),
    path(
        "t/<slug:slug>/audit/export.jsonl",
        audit_views.event_export_view,
        {"fmt": "jsonl"},
        name="audit_export_jsonl",
    ),
]
