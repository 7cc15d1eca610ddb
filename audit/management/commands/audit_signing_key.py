from django.core.management.base import BaseCommand

from audit.signing import new_key_pair


class Command(BaseCommand):
    help = (
        "Print a new Ed25519 key pair for signing audit seals: the private key goes to "
        "KEYWARD_AUDIT_SIGNING_KEY (never into the database), the public key to wherever "
        "audit_verify runs (KEYWARD_AUDIT_VERIFY_KEYS once the key is rotated)."
    )

    def handle(self, *args, **options):
        private, public, key_id = new_key_pair()
        self.stdout.write(f"# key id {key_id}\n# private key (KEYWARD_AUDIT_SIGNING_KEY):")
        self.stdout.write(private, ending="")
        self.stdout.write("# public key (KEYWARD_AUDIT_VERIFY_KEYS after rotation):")
        self.stdout.write(public, ending="")
