from django.contrib.auth import views as auth_views
from django.urls import path
from django.views.i18n import JavaScriptCatalog

from accounts.views import audit, auth, passkeys, security, service_ids, tenants

app_name = "accounts"

urlpatterns = [
    path("", tenants.home_view, name="home"),
    path("account/login/", auth.login_view, name="login"),
    path("account/logout/", auth.logout_view, name="logout"),
    path("account/mfa/enrol/", auth.mfa_enrol_view, name="mfa_enrol"),
    path("account/mfa/verify/", auth.mfa_verify_view, name="mfa_verify"),
    path("account/sudo/", auth.sudo_view, name="sudo"),
    # The WebAuthn ceremonies, under /account/mfa/ (open before the second factor is verified).
    path(
        "account/mfa/passkeys/register/begin/",
        passkeys.PasskeyRegisterBeginView.as_view(),
        name="passkey_register_begin",
    ),
    path(
        "account/mfa/passkeys/register/complete/",
        passkeys.PasskeyRegisterCompleteView.as_view(),
        name="passkey_register_complete",
    ),
    path(
        "account/mfa/passkeys/verify/begin/",
        passkeys.PasskeyVerifyBeginView.as_view(),
        name="passkey_verify_begin",
    ),
    path(
        "account/mfa/passkeys/verify/complete/",
        passkeys.PasskeyVerifyCompleteView.as_view(),
        name="passkey_verify_complete",
    ),
    path(
        "account/mfa/passkeys/jsi18n/",
        JavaScriptCatalog.as_view(packages=["django_otp_webauthn"]),
        name="passkey_jsi18n",
    ),
    path("account/security/passkeys/add/", passkeys.passkey_add_view, name="passkey_add"),
    path("account/security/passkeys/create/", passkeys.passkey_create_view, name="passkey_create"),
    path(
        "account/security/passkeys/<int:pk>/remove/",
        passkeys.passkey_remove_view,
        name="passkey_remove",
    ),
    path("account/security/", security.security_view, name="security"),
    path(
        "account/security/backup-codes/",
        security.backup_codes_regenerate_view,
        name="backup_codes_regenerate",
    ),
    path(
        "account/security/sessions/<int:pk>/end/",
        security.session_end_view,
        name="session_end",
    ),
    path(
        "account/security/sessions/end-others/",
        security.session_end_others_view,
        name="session_end_others",
    ),
    path("account/security/log/", security.security_log_view, name="security_log"),
    path(
        "account/security/authenticators/<int:pk>/remove/",
        security.totp_remove_view,
        name="totp_remove",
    ),
    path("account/password/", security.PasswordChangeView.as_view(), name="password_change"),
    path("account/password-reset/", security.PasswordResetView.as_view(), name="password_reset"),
    path(
        "account/password-reset/sent/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "account/reset/<uidb64>/<token>/",
        security.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "account/reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("invite/accept/", tenants.invitation_accept_view, name="invitation_accept"),
    path("invite/<str:secret>/", tenants.invitation_view, name="invitation"),
    path("t/<slug:slug>/", tenants.tenant_home_view, name="tenant_home"),
    path("t/<slug:slug>/members/", tenants.member_list_view, name="members"),
    path("t/<slug:slug>/members/invite/", tenants.member_invite_view, name="member_invite"),
    path("t/<slug:slug>/members/<int:pk>/role/", tenants.member_role_view, name="member_role"),
    path(
        "t/<slug:slug>/invitations/<int:pk>/revoke/",
        tenants.invitation_revoke_view,
        name="invitation_revoke",
    ),
    path("t/<slug:slug>/sign-in-policy/", tenants.sign_in_policy_view, name="sign_in_policy"),
    path("t/<slug:slug>/service-ids/", service_ids.service_id_list_view, name="service_ids"),
    path(
        "t/<slug:slug>/service-ids/<int:pk>/toggle/",
        service_ids.service_id_toggle_view,
        name="service_id_toggle",
    ),
    path("t/<slug:slug>/audit/", audit.event_list_view, name="audit_list"),
    path("t/<slug:slug>/audit/<int:pk>/", audit.event_detail_view, name="audit_detail"),
    path(
        "t/<slug:slug>/audit/export.csv",
        audit.event_export_view,
        {"fmt": "csv"},
        name="audit_export_csv",
    ),
    path(
        "t/<slug:slug>/audit/export.jsonl",
        audit.event_export_view,
        {"fmt": "jsonl"},
        name="audit_export_jsonl",
    ),
]
