from django.apps import AppConfig
from django.db.models.signals import post_save


class FederationConfig(AppConfig):
    name = "federation"
    verbose_name = "Federation (signed tokens, trusts)"

    def ready(self) -> None:
        from federation import receivers
        from keys.models import ApiKey

        # A key revoked through any door (the portal, the API, the admin, a member removed):
        # its JWTs are refused by Keyward's own API within the documented bound.
        post_save.connect(
            receivers.revoke_tokens_of_revoked_key,
            sender=ApiKey,
            dispatch_uid="federation.revoke_tokens_of_revoked_key",
        )
