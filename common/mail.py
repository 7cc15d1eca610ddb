"""E-mail sent without the request waiting on the mail server: by a thread of its own, so the
answer (and its timing) does not depend on whether an e-mail went out or how long that took.

Every e-mail Keyward sends is built by ``EmailMessage``/``EmailMultiAlternatives`` (or
``send_mail``) from here: their text parts keep each line whole (7bit, or 8bit for non-ASCII
text) instead of quoted-printable, which breaks a link longer than 76 characters with a ``=``
at the end of a line in every console, log or plain-text reader.
"""

import email.policy
import logging
import threading
import time
from collections.abc import Callable

from django.core import mail as django_mail

logger = logging.getLogger("keyward.mail")

_lock = threading.Lock()
_pending: set[threading.Thread] = set()


def send_now(send: Callable[[], object], *, what: str) -> None:
    """Call ``send``; log what it raises (naming ``what`` was sent), never raise it."""
    try:
        send()
    except Exception:
        logger.exception("could not send %s", what)


def send_later(send: Callable[[], object], *, what: str) -> None:
    """Call ``send`` in a new thread, as ``send_now``. The thread is no daemon: a worker that
    exits normally (gunicorn's SIGTERM included) waits for it; a killed one loses it."""

    def run() -> None:
        try:
            send_now(send, what=what)
        finally:
            with _lock:
                _pending.discard(threading.current_thread())

    thread = threading.Thread(target=run, name="keyward-mail")
    with _lock:
        _pending.add(thread)
    thread.start()


def wait_sent(timeout: float = 10.0) -> bool:
    """Wait until every e-mail handed to ``send_later`` so far is sent; False on timeout."""
    with _lock:
        threads = list(_pending)
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return not any(thread.is_alive() for thread in threads)


# RFC 5322: a line of a message is at most 998 characters; only a longer one needs an encoding.
MAX_LINE_BYTES = 998


def keep_lines_whole(message) -> None:
    """Re-encode the quoted-printable or base64 text parts of ``message`` (an
    ``email.message.EmailMessage``) as 7bit (ASCII) or 8bit (UTF-8), so that links stay whole;
    attachments, and text with a line longer than RFC 5322 allows, are left as they are."""
    for part in message.walk():
        if part.is_multipart() or part.get_content_maintype() != "text" or part.is_attachment():
            continue
        if part.get("Content-Transfer-Encoding", "").lower() not in ("quoted-printable", "base64"):
            continue
        text = part.get_content()
        if any(len(line.encode()) > MAX_LINE_BYTES for line in text.splitlines()):
            continue
        part.set_content(
            text,
            subtype=part.get_content_subtype(),
            charset=part.get_content_charset() or "utf-8",
            cte="7bit" if text.isascii() else "8bit",
        )


class EmailMessage(django_mail.EmailMessage):
    """Django's ``EmailMessage`` whose text parts keep their lines (and links) whole."""

    def message(self, *, policy=email.policy.default):
        message = super().message(policy=policy)
        keep_lines_whole(message)
        return message


class EmailMultiAlternatives(django_mail.EmailMultiAlternatives):
    """Django's ``EmailMultiAlternatives`` whose text parts keep their lines whole."""

    def message(self, *, policy=email.policy.default):
        message = super().message(policy=policy)
        keep_lines_whole(message)
        return message


def send_mail(subject: str, body: str, from_email: str | None, recipients: list[str]) -> int:
    """Send one plain-text e-mail (``django.core.mail.send_mail`` with whole lines)."""
    return EmailMultiAlternatives(subject, body, from_email, recipients).send()
