"""E-mail sent without the request waiting on the mail server.

Most e-mails are background tasks (``send_on_commit``, ``enqueue``: Django's Tasks framework,
``TASKS`` in settings), enqueued when the transaction that decided them commits: a rolled-back
change e-mails no one, and neither a request nor a cron run waits on SMTP. A task's arguments
are sealed (AES-256-GCM, key derived from SECRET_KEY): an invitation or reset link never sits in
the task table in plaintext. ``send_later`` (a thread of its own) remains for e-mails about
signing in, whose answer's timing must not depend on whether an e-mail went out.

Every e-mail Keyward sends is built by ``EmailMessage``/``EmailMultiAlternatives`` (or
``send_mail``) from here: their text parts keep each line whole (7bit, or 8bit for non-ASCII
text) instead of quoted-printable, which breaks a link longer than 76 characters with a ``=``
at the end of a line in every console, log or plain-text reader.
"""

import base64
import email.policy
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core import mail as django_mail
from django.db import transaction
from django.tasks import default_task_backend, task
from django.utils import timezone

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


# --- E-mail as a background task ------------------------------------------------------------

# A failed send is tried again after 1, 2, 4, 8 minutes (where the task backend can defer).
MAIL_ATTEMPTS = 5
_SEAL_INFO = b"keyward.mail-task.v1"


def _cipher() -> AESGCM:
    material = f"SECRET_KEY:{settings.SECRET_KEY}".encode()
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_SEAL_INFO).derive(material)
    return AESGCM(key)


def _seal(message: dict) -> str:
    nonce = os.urandom(12)
    sealed = _cipher().encrypt(nonce, json.dumps(message).encode(), _SEAL_INFO)
    return base64.urlsafe_b64encode(nonce + sealed).decode()


def _unseal(sealed: str) -> dict:
    raw = base64.urlsafe_b64decode(sealed.encode())
    return json.loads(_cipher().decrypt(raw[:12], raw[12:], _SEAL_INFO))


def enqueue(subject: str, body: str, recipients: list[str], *, what: str = "an e-mail") -> None:
    """Hand one plain-text e-mail to a task worker now (outside a transaction, or when the
    caller has committed). An empty ``recipients`` sends nothing."""
    to = sorted(set(recipients))
    if not to:
        return
    message = {"subject": subject, "body": body, "to": to, "what": what}
    deliver_mail.enqueue(_seal(message), 1)


def tasks_in_database() -> bool:
    """Return whether the task backend keeps its tasks in the database (django-tasks-db): then
    a task enqueued inside a transaction commits with it, or vanishes with a rollback."""
    from django.tasks import task_backends

    return type(task_backends["default"]).__module__.startswith("django_tasks_db")


def send_on_commit(
    subject: str, body: str, recipients: list[str], *, what: str = "an e-mail"
) -> None:
    """Enqueue one plain-text e-mail for when the current transaction commits: a rolled-back
    change sends nothing. With the database backend the task row is written in the transaction
    (it commits with the change, at no extra commit); with another backend it is enqueued on
    commit (``robust``: a task queue that is down is logged, not raised, after the change has
    committed)."""
    if not recipients:
        return
    if tasks_in_database():
        enqueue(subject, body, recipients, what=what)
    else:
        transaction.on_commit(lambda: enqueue(subject, body, recipients, what=what), robust=True)


@task
def deliver_mail(sealed: str, attempt: int) -> str:
    """Send one e-mail sealed by ``enqueue``; on a failure, enqueue it again with back-off
    (where the backend can defer) up to MAIL_ATTEMPTS times. Never raises."""
    message = _unseal(sealed)
    try:
        send_mail(message["subject"], message["body"], None, message["to"])
    except Exception:
        if attempt < MAIL_ATTEMPTS and default_task_backend.supports_defer:
            logger.warning("could not send %s (attempt %d), retrying", message["what"], attempt)
            when = timezone.now() + timedelta(minutes=2 ** (attempt - 1))
            deliver_mail.using(run_after=when).enqueue(sealed, attempt + 1)
            return "retrying"
        logger.exception("could not send %s", message["what"])
        return "failed"
    return "sent"
