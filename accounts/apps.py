from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and tenants"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in, user_login_failed
        from django_otp.forms import otp_verification_failed

        from accounts import signals
        from audit.signals import event_recorded

        user_logged_in.connect(signals.login_succeeded, dispatch_uid="accounts.login_succeeded")
        user_login_failed.connect(signals.login_failed, dispatch_uid="accounts.login_failed")
        otp_verification_failed.connect(signals.code_refused, dispatch_uid="accounts.code_refused")
        event_recorded.connect(signals.key_issued_notify, dispatch_uid="accounts.key_issued_notify")
