"""Opaque cursors for the audit API's feed: a position in commit order, (txid, id).

``base64url("v2:<txid>:<id>")`` continues after the event ``id`` of transaction ``txid``.
Version 1 cursors (``base64url("v1:<id>")``, from before events carried their transaction's id)
are still accepted: ``decode`` returns ``(None, id)`` and the feed looks the event's txid up.
"""

import base64
import binascii

V1 = "v1:"
V2 = "v2:"
MAX_DIGITS = 19  # both numbers are non-negative bigints

Position = tuple[int | None, int]


def encode(position: tuple[int, int]) -> str:
    """Return the cursor that continues after ``position`` = (txid, id)."""
    txid, last_id = position
    return base64.urlsafe_b64encode(f"{V2}{txid}:{last_id}".encode()).decode().rstrip("=")


def _number(text: str) -> int | None:
    if not text.isascii() or not text.isdigit() or len(text) > MAX_DIGITS:
        return None
    value = int(text)
    return value if value < 2**63 else None


def decode(cursor: str) -> Position | None:
    """Return the (txid, id) a cursor continues after ((None, id) for a version 1 cursor), or
    None if it is not a valid cursor."""
    if not isinstance(cursor, str) or not 1 <= len(cursor) <= 60:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if raw.startswith(V1):
        last_id = _number(raw[len(V1) :])
        return None if last_id is None else (None, last_id)
    if raw.startswith(V2):
        txid, sep, last_id = raw[len(V2) :].partition(":")
        txid, last_id = _number(txid), _number(last_id)
        if sep and txid is not None and last_id is not None:
            return txid, last_id
    return None
