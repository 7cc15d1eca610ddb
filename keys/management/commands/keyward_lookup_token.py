"""Look up a plaintext token for incident response (audited as a CLI action).

The token is read from standard input, never from the command line (argv ends up in shell
history, process lists and audit logs of the host):

    read -rs TOKEN && printf '%s\\n' "$TOKEN" | python manage.py keyward_lookup_token
"""

import argparse
import sys

from django.core.management.base import BaseCommand, CommandError

from audit.services import Actor
from keys import tokens
from keys.services import LookupResult, key_lookup_token

MAX_INPUT = 4096
TOKEN_IN_ARGV = (
    "Refusing a token on the command line: it is now in your shell history and the process "
    "list, so treat it as exposed. Pipe it on standard input instead."
)
NO_ARGUMENTS = "This command takes no arguments: pipe the token on standard input."
NOTHING_READ = "Pipe the token on standard input."


class Command(BaseCommand):
    help = "Read a token from standard input and print the key it belongs to (never from argv)."
    stealth_options = ("stdin",)

    def run_from_argv(self, argv):
        # SECURITY: refuse before argparse, whose error messages would echo the token.
        if any(tokens.looks_like(arg) for arg in argv[2:]):
            sys.stderr.write(TOKEN_IN_ARGV + "\n")
            sys.exit(2)
        super().run_from_argv(argv)

    def add_arguments(self, parser):
        # Swallow stray arguments here, so that argparse never repeats them in an error.
        parser.add_argument("arguments", nargs="*", help=argparse.SUPPRESS)

    def handle(self, *args, arguments=(), **options):
        if arguments:
            raise CommandError(
                TOKEN_IN_ARGV if any(tokens.looks_like(a) for a in arguments) else NO_ARGUMENTS
            )
        stream = options.get("stdin") or sys.stdin
        token = stream.readline(MAX_INPUT).strip()
        if not token:
            raise CommandError(NOTHING_READ)
        result = key_lookup_token(actor=Actor.cli("keyward_lookup_token"), token=token)
        if result.outcome != LookupResult.FOUND:
            raise CommandError(result.message)
        width = max(len(label) for label, _ in result.facts())
        for label, value in result.facts():
            self.stdout.write(f"{label + ':':<{width + 2}}{value}")
