"""E-mail sent without the request waiting on the mail server: by a thread of its own, so the
answer (and its timing) does not depend on whether an e-mail went out or how long that took."""

import logging
import threading
import time
from collections.abc import Callable

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
