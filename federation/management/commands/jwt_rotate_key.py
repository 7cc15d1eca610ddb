"""Make a new JWT signing key; the previous one stays published until its tokens expire
(audited as a CLI action)."""

from django.core.management.base import BaseCommand

from audit.services import Actor
from federation.signing import publish_seconds, signing_key_rotate


class Command(BaseCommand):
    help = (
        "Rotate the key that signs Keyward's JWTs. The previous public key stays in "
        "/.well-known/jwks.json for the longest token lifetime."
    )

    def handle(self, *args, **options):
        key = signing_key_rotate(actor=Actor.cli("jwt_rotate_key"))
        self.stdout.write(
            f"New signing key {key.kid} ({key.algorithm}); the previous one stays published "
            f"for {publish_seconds()} s."
        )
