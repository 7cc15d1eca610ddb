from django.apps import AppConfig
from django.core import checks


class KeysConfig(AppConfig):
    name = "keys"
    verbose_name = "API keys"

    def ready(self) -> None:
        from keys.checks import check_keyward_settings, check_leak_report_keys

        checks.register(check_keyward_settings, "keyward")
        checks.register(check_leak_report_keys, "keyward")
