"""Generate, parse, checksum and digest API tokens: the only module that knows their format.

A token is ``<prefix><kind>_<32 random base62 chars><6 base62 chars of CRC32>``, e.g. ``kwp_…``
for a personal access token and ``kws_…`` for a service key. The prefix comes from
``KEYWARD_TOKEN_PREFIX``.

The fixed prefix and the checksum let secret scanners recognise a leaked token with no false
positives, and let the server reject malformed or random strings without a database query: only a
string that passes ``parse()`` is ever looked up.

Tokens are stored as a plain SHA-256 digest, not with a slow password hash: 32 characters from
``secrets`` carry ~190 bits of entropy, so there is nothing to brute-force, and one fast digest
allows one indexed lookup per request.
"""

import functools
import hashlib
import re
import secrets
import string
import zlib
from dataclasses import dataclass
from enum import StrEnum

from keys import conf

ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase
RANDOM_LENGTH = 32
CHECKSUM_LENGTH = 6
# The prefix holds no "_", so the first "_" in a token always ends its prefix and kind.
PREFIX_PATTERN = re.compile(r"[a-z][a-z0-9]{0,7}")


class Kind(StrEnum):
    PERSONAL = "p"
    SERVICE = "s"


@dataclass(frozen=True, slots=True)
class ParsedToken:
    kind: Kind
    token: str

    @property
    def hint(self) -> str:
        return hint(self.token)


def generate(kind: Kind) -> str:
    """Return a new random token of ``kind``."""
    secret = "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_LENGTH))
    return _assemble(Kind(kind), secret)


def parse(raw: object) -> ParsedToken | None:
    """Return the parsed token, or ``None`` if ``raw`` is not a well-formed token.

    Never raises and never queries the database.
    """
    if not isinstance(raw, str):
        return None
    prefix = conf.settings.TOKEN_PREFIX
    if len(raw) != len(prefix) + 2 + RANDOM_LENGTH + CHECKSUM_LENGTH:
        return None
    match = _pattern(prefix).fullmatch(raw)
    if match is None or _checksum(raw[:-CHECKSUM_LENGTH]) != raw[-CHECKSUM_LENGTH:]:
        return None
    return ParsedToken(kind=Kind(match["kind"]), token=raw)


def looks_like(raw: str) -> bool:
    """Return whether ``raw`` holds something shaped like a token (prefix, kind, ``_`` and a
    run of base62), checksum or not: for refusing tokens where they must never be typed."""
    return _loose_pattern(conf.settings.TOKEN_PREFIX).search(raw) is not None


def find_all(text: str) -> list[str]:
    """Return the tokens in ``text``: well-formed, checksum verified, not part of a longer word.

    The checksum makes a random match of the shape about one in 56 billion, so a secret scanner
    built on this reports no false positives.
    """
    found = []
    for match in _embedded_pattern(conf.settings.TOKEN_PREFIX).finditer(text):
        if parse(match.group(0)) is not None:
            found.append(match.group(0))
    return found


def digest(token: str) -> bytes:
    """Return the 32-byte SHA-256 digest under which ``token`` is stored."""
    return hashlib.sha256(token.encode()).digest()


def hint(token: str) -> str:
    """Return the displayable hint of ``token``: its prefix and kind, and its last 4 chars."""
    head, _, _ = token.partition("_")
    return f"{head}_…{token[-4:]}"


def _assemble(kind: Kind, secret: str) -> str:
    body = f"{conf.settings.TOKEN_PREFIX}{kind}_{secret}"
    return body + _checksum(body)


def _checksum(body: str) -> str:
    value = zlib.crc32(body.encode("ascii"))  # < 2**32 < 62**6, so 6 chars always suffice
    chars = []
    for _ in range(CHECKSUM_LENGTH):
        value, index = divmod(value, len(ALPHABET))
        chars.append(ALPHABET[index])
    return "".join(reversed(chars))


@functools.lru_cache(maxsize=8)
def _pattern(prefix: str) -> re.Pattern[str]:
    kinds = "".join(Kind)
    body = f"[0-9A-Za-z]{{{RANDOM_LENGTH + CHECKSUM_LENGTH}}}"
    return re.compile(f"{re.escape(prefix)}(?P<kind>[{kinds}])_{body}")


@functools.lru_cache(maxsize=8)
def _embedded_pattern(prefix: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![0-9A-Za-z_]){_pattern(prefix).pattern}(?![0-9A-Za-z_])")


@functools.lru_cache(maxsize=8)
def _loose_pattern(prefix: str) -> re.Pattern[str]:
    return re.compile(f"{re.escape(prefix)}[{''.join(Kind)}]_[0-9A-Za-z]{{16,}}")
