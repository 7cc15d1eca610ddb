from django.apps import AppConfig
from django.core import checks
from django.db.models.signals import post_save, pre_delete


class KeysConfig(AppConfig):
    name = "keys"
    verbose_name = "API keys"

    def ready(self) -> None:
        from accounts.models import Membership, User
        from keys import receivers
        from keys.checks import check_keyward_settings, check_leak_report_keys

        checks.register(check_keyward_settings, "keyward")
        checks.register(check_leak_report_keys, "keyward")
        pre_delete.connect(
            receivers.revoke_keys_of_removed_member,
            sender=Membership,
            dispatch_uid="keys.revoke_keys_of_removed_member",
        )
        post_save.connect(
            receivers.revoke_keys_of_deactivated_user,
            sender=User,
            dispatch_uid="keys.revoke_keys_of_deactivated_user",
        )
