from django.core.management.base import BaseCommand
from django.urls import reverse

from accounts import conf, services
from accounts.models import Tenant, User
from audit.services import Actor

DEMO_EMAIL = "owner@acme.example"


class Command(BaseCommand):
    help = "Create the demo tenant Acme and its owner (idempotent) and print how to log in."

    def handle(self, *args, **options):
        owner = User.objects.filter(email=DEMO_EMAIL).first()
        if not Tenant.objects.filter(slug="acme").exists():
            _, owner = services.tenant_create(
                name="Acme", slug="acme", owner_email=DEMO_EMAIL, actor=Actor.cli("seed_demo")
            )
        out = self.stdout.write
        login_url = conf.settings.BASE_URL.rstrip("/") + reverse("accounts:login")
        out("")
        out("Keyward demo: tenant Acme (/t/acme/), owner " + DEMO_EMAIL)
        if owner is not None and owner.has_usable_password():
            out(f"  Log in at {login_url} with the password you chose.")
        else:
            out("  1. Open this one-time link and choose a password (12+ characters):")
            out("     " + services.set_password_link(owner))
            out(f"  2. Log in at {login_url} as {DEMO_EMAIL}")
            out("  3. Scan the QR code with an authenticator app, enter its code,")
            out("     and keep the 10 backup codes somewhere safe.")
        out("  Sent e-mails (invitations, resets) are printed on this console.")
        out("")
