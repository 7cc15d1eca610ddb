from django.contrib.admin.apps import AdminConfig
from django.core import checks


class KeywardAdminConfig(AdminConfig):
    default_site = "config.admin.KeywardAdminSite"

    def ready(self) -> None:
        super().ready()
        from config.checks import check_static_manifest

        # Not tagged "staticfiles": collectstatic runs those checks, and it is what writes the
        # manifest.
        checks.register(check_static_manifest, "keyward")
