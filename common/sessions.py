"""Sessions whose keys are not secrets at rest: the database holds only a digest of each.

Django's session stores name the row (and a cache entry) by the session key itself, which is the
``sessionid`` cookie: a copy of ``django_session`` (a ``pg_dump``, a replica, a backup) is a set
of live sessions. This store keeps the cookie's SHA-256 instead, as Keyward keeps keys, so what is
at rest cannot be replayed as a cookie. Sessions live in the database only: the portal is not the
hot path, and a cache that is down, or comes back with entries a logout could not delete, can
neither lose nor revive a session. Set as ``SESSION_ENGINE``.
"""

import hashlib
import re

from django.contrib.sessions.backends import db
from django.contrib.sessions.backends.base import VALID_KEY_CHARS
from django.utils import timezone

# Django makes keys of 32 characters from VALID_KEY_CHARS; anything else never names a session
# (a stored digest, 40 hex characters, is refused as a cookie by its length).
_SESSION_KEY = re.compile(f"[{re.escape(VALID_KEY_CHARS)}]{{32}}")


def stored_key(session_key: str) -> str:
    """Return what the database holds for ``session_key``: 160 bits of its SHA-256
    (``django_session.session_key`` is 40 characters)."""
    return hashlib.sha256(session_key.encode()).hexdigest()[:40]


class SessionStore(db.SessionStore):
    """The database store, with the session key replaced by its digest wherever it is stored."""

    def _validate_session_key(self, key) -> bool:
        return bool(key) and _SESSION_KEY.fullmatch(key) is not None

    def _stored_row(self):
        return self.model.objects.filter(
            session_key=stored_key(self.session_key), expire_date__gt=timezone.now()
        )

    def _get_session_from_db(self):
        row = self._stored_row().first() if self.session_key else None
        if row is None:
            self._session_key = None
        return row

    async def _aget_session_from_db(self):
        row = await self._stored_row().afirst() if self.session_key else None
        if row is None:
            self._session_key = None
        return row

    def exists(self, session_key) -> bool:
        return bool(session_key) and (
            self.model.objects.filter(session_key=stored_key(session_key)).exists()
        )

    async def aexists(self, session_key) -> bool:
        return bool(session_key) and (
            await self.model.objects.filter(session_key=stored_key(session_key)).aexists()
        )

    def create_model_instance(self, data):
        row = super().create_model_instance(data)
        row.session_key = stored_key(row.session_key)
        return row

    async def acreate_model_instance(self, data):
        row = await super().acreate_model_instance(data)
        row.session_key = stored_key(row.session_key)
        return row

    def delete(self, session_key=None) -> None:
        session_key = session_key or self.session_key
        if session_key:
            self.model.objects.filter(session_key=stored_key(session_key)).delete()

    async def adelete(self, session_key=None) -> None:
        session_key = session_key or self.session_key
        if session_key:
            await self.model.objects.filter(session_key=stored_key(session_key)).adelete()
