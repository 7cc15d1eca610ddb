from django.apps import AppConfig
from django.core import checks


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit log"

    def ready(self) -> None:
        from audit.checks import check_seals_are_signed, check_signing_keys

        checks.register(check_signing_keys, "keyward")
        checks.register(check_seals_are_signed, "keyward", deploy=True)
