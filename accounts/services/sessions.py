"""A person's signed-in sessions: kept track of as they are used, listed on the account security
page, ended from there (one, or every other)."""

import re
from datetime import timedelta

from django.contrib.sessions.models import Session
from django.db import transaction
from django.http import Http404
from django.utils import timezone

import audit
from accounts.models import User, UserSession
from common.request import RequestContext
from common.sessions import stored_key

REF_SESSION_KEY = "keyward_session_ref"
SEEN_EVERY = timedelta(seconds=60)  # last_seen_at is written at most this often
_BROWSERS = (  # the first match wins: Edge and Opera also say "Chrome", Chrome says "Safari"
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("Chrome/", "Chrome"),
    ("Chromium/", "Chromium"),
    ("Safari/", "Safari"),
)
_SYSTEMS = (
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Android", "Android"),
    ("Mac OS X", "macOS"),
    ("Windows", "Windows"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)


def _now():
    return timezone.now()


def device_label(user_agent: str) -> str:
    """Return "Browser on System" from a User-Agent header ("Unknown browser" if unsure)."""
    browser = next((name for mark, name in _BROWSERS if mark in user_agent), None)
    system = next((name for mark, name in _SYSTEMS if mark in user_agent), None)
    if browser is None and re.match(r"^[\w.-]+/[\d.]+$", user_agent or ""):
        return user_agent.split("/")[0]  # curl/8.5, python-requests/2.32
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or "Unknown browser"


def session_track(
    *, user: User, session, context: RequestContext | None = None
) -> UserSession | None:
    """Keep the row of ``session`` (a signed-in ``request.session``) up to date: make it on
    first sight, follow its key when it rotates, note when it was last seen. Return None when
    the session was ended from the security page (its row is gone): log it out."""
    if session.session_key is None:
        session.save()
    digest, now = stored_key(session.session_key), _now()
    ip = context.ip if context is not None else None
    agent = (context.user_agent if context is not None else "")[:300]
    ref = session.get(REF_SESSION_KEY)
    if ref is None:
        row, _ = UserSession.objects.update_or_create(
            stored_key=digest,
            defaults={"user": user, "ip": ip, "user_agent": agent, "last_seen_at": now},
        )
        session[REF_SESSION_KEY] = row.pk
        return row
    row = UserSession.objects.filter(pk=ref, user=user).first()
    if row is None:
        return None
    if row.stored_key != digest or now - row.last_seen_at >= SEEN_EVERY or row.ip != ip:
        row.stored_key, row.last_seen_at, row.ip = digest, now, ip
        row.user_agent = agent or row.user_agent
        row.save(update_fields=["stored_key", "last_seen_at", "ip", "user_agent"])
    return row


def session_rekeyed(session) -> None:
    """Follow ``session``'s new key at once after a rotation (a verified second factor, a new
    password), so that its row names a live session until its next request."""
    ref = session.get(REF_SESSION_KEY)
    if ref is not None and session.session_key is not None:
        UserSession.objects.filter(pk=ref).update(stored_key=stored_key(session.session_key))


def session_forget(session) -> None:
    """Drop the row of a session that is logging out (its ``django_session`` row goes too)."""
    ref = session.get(REF_SESSION_KEY)
    if ref is not None:
        UserSession.objects.filter(pk=ref).delete()


def session_list(user: User) -> list[UserSession]:
    """Return the user's live sessions, last seen first; rows of sessions that expired or
    logged out are deleted on the way."""
    rows = list(UserSession.objects.filter(user=user).order_by("-last_seen_at", "-pk"))
    live = set(
        Session.objects.filter(
            session_key__in=[r.stored_key for r in rows], expire_date__gt=_now()
        ).values_list("session_key", flat=True)
    )
    dead = [r.pk for r in rows if r.stored_key not in live]
    if dead:
        UserSession.objects.filter(pk__in=dead).delete()
    return [r for r in rows if r.stored_key in live]


@transaction.atomic
def session_end(
    *, user: User, pk: int, current_ref: int | None, context: RequestContext | None = None
) -> UserSession:
    """End one of ``user``'s other sessions (its browser is signed out at its next request);
    audited as ``auth.session_ended``. Raise Http404 for another person's, an unknown one or
    the current one (log out instead)."""
    row = UserSession.objects.select_for_update().filter(user=user, pk=pk).first()
    if row is None or row.pk == current_ref:
        raise Http404("No such session.")
    _end(user, [row], context)
    return row


@transaction.atomic
def session_end_others(
    *, user: User, current_ref: int | None, context: RequestContext | None = None
) -> int:
    """End every session of ``user`` but the current one; return how many ended."""
    rows = list(UserSession.objects.select_for_update().filter(user=user).exclude(pk=current_ref))
    _end(user, rows, context)
    return len(rows)


def _end(user: User, rows: list[UserSession], context: RequestContext | None) -> None:
    for row in rows:
        audit.record(
            "auth.session_ended",
            actor=user,
            target=user,
            context=context,
            metadata={
                "session": row.pk,
                "device": device_label(row.user_agent),
                "ip": row.ip,
            },
        )
    Session.objects.filter(session_key__in=[r.stored_key for r in rows]).delete()
    UserSession.objects.filter(pk__in=[r.pk for r in rows]).delete()
