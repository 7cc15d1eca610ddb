"""Find Keyward tokens in files: `manage.py keyward_scan PATH…` (a pre-commit hook, a CI step)."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

import audit
from audit.services import Actor
from keys import tokens
from keys.models import ApiKey, KeyStatus

MAX_FILE_BYTES = 5 * 1024 * 1024
SKIP_DIRS = {".git", ".venv", "node_modules", "__pycache__", ".hypothesis"}
# A key in one of these still works: whoever holds the file holds the key.
LIVE = (KeyStatus.ACTIVE, KeyStatus.EXPIRING, KeyStatus.ROTATED)


def _files(paths):
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and not SKIP_DIRS & set(child.parts):
                    yield child
        elif path.is_file():
            yield path
        else:
            raise CommandError(f"No such file or directory: {raw}")


class Command(BaseCommand):
    help = (
        "Find Keyward tokens in files (prefix and checksum: no false positives); print "
        "file:line, hint and status; exit 1 when a live key is found."
    )

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", metavar="PATH")

    def handle(self, *args, paths, **options):
        found = live = 0
        for path in _files(paths):
            if path.stat().st_size > MAX_FILE_BYTES:
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
            for number, line in enumerate(text.splitlines(), 1):
                for token in tokens.find_all(line):
                    found += 1
                    key = ApiKey.objects.filter(digest=tokens.digest(token)).first()
                    status = key.status() if key else "unknown to this installation"
                    is_live = key is not None and status in LIVE
                    live += is_live
                    # SECURITY: print the hint, never the token (the output may land in CI logs).
                    self.stdout.write(f"{path}:{number}: {tokens.hint(token)} {status}")
        audit.record(
            "key.scanned",
            actor=Actor.cli("keyward_scan"),
            metadata={"paths": [str(p)[:200] for p in paths][:20], "found": found, "live": live},
        )
        if live:
            raise CommandError(f"{live} live key(s) found: revoke them and remove them from files.")
        self.stdout.write(f"{found} token(s) found, none live." if found else "No tokens found.")
