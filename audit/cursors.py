"""Opaque cursors for keyset pagination of the audit API: ``base64url("v1:<last id>")``."""

import base64
import binascii

PREFIX = "v1:"


def encode(last_id: int) -> str:
    """Return the cursor that continues after event ``last_id``."""
    return base64.urlsafe_b64encode(f"{PREFIX}{last_id}".encode()).decode().rstrip("=")


def decode(cursor: str) -> int | None:
    """Return the event id a cursor continues after, or None if it is not a valid cursor."""
    if not isinstance(cursor, str) or not 1 <= len(cursor) <= 40:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if not raw.startswith(PREFIX):
        return None
    number = raw[len(PREFIX) :]
    if not number.isascii() or not number.isdigit() or len(number) > 18:
        return None
    return int(number)
