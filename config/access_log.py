"""gunicorn's access log, one line per request whatever the request holds.

gunicorn's ``%(U)s`` is the *decoded* path: ``%0A`` in a URL would write a forged second line,
``%00`` a NUL byte. This logger writes the path as the client sent it (still percent-encoded, the
query string left out: a key sent by mistake in a URL must not land in the log) and escapes any
control or non-ASCII character left in any field.
"""

from gunicorn.glogging import Logger


def escape(value: object) -> object:
    """Return ``value`` with control and non-ASCII characters as \\x.. / \\u.. escapes, and
    quotes escaped (a field cannot close the quotes around it)."""
    if not isinstance(value, str) or (value.isascii() and value.isprintable() and '"' not in value):
        return value
    return value.encode("unicode_escape").decode("ascii").replace('"', '\\"')


class AccessLogger(Logger):
    """gunicorn's Logger, with the raw path as ``U`` and every field escaped."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        raw = environ.get("RAW_URI") or atoms.get("U") or ""
        atoms["U"] = raw.split("?", 1)[0]
        return {name: escape(value) for name, value in atoms.items()}
