"""How API request events reach the database: at once, in the request (fail-closed, the
default), or through the per-process batched writer (KEYWARD_AUDIT_FAIL_CLOSED=false).

``write_now`` commits one event before the response leaves: one prepared INSERT, in the
request's own connection, with PostgreSQL's asynchronous commit unless
KEYWARD_AUDIT_SYNCHRONOUS_COMMIT is "on". Inside a transaction (a request that changes state)
it is a plain INSERT that commits, or not, with that change.

With the batched writer, the request path only enqueues an unsaved event (no query, no lock). A
daemon thread inserts what has queued, one INSERT per batch of at most KEYWARD_AUDIT_BATCH
events, KEYWARD_AUDIT_FLUSH_MS milliseconds after a batch's first event, then streams the
committed events on the ``keyward.audit`` logger. ``flush()`` waits until everything queued so
far is written; it runs at interpreter exit (a gunicorn worker's normal exit, SIGTERM included),
so only a hard crash (SIGKILL, OOM) can lose the events of the last batch or so (measured by
``make bench``). Changes of state never use this writer: their events commit in the same
transaction as the change.
"""

import atexit
import functools
import json
import logging
import os
import queue
import threading
import time
from datetime import datetime

from django.db import InterfaceError, OperationalError, connection, transaction

from audit import conf
from audit.stream import stream_event
from common import metrics
from common.db import prepared_cursor

logger = logging.getLogger("keyward.audit.writer")


class _Marker:
    """Queued by flush(): set once every event queued before it is written."""

    def __init__(self, close: bool = False) -> None:
        self.done = threading.Event()
        self.close = close


class RequestEventWriter:
    def __init__(self) -> None:
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        # True from a batch that could not be written until an event is written again: the
        # events of JWT requests are then committed before their response, as a key's.
        self.failing = False

    def submit(self, event) -> None:
        """Queue an unsaved AuditEvent for the next batch."""
        self._ensure_thread()
        self._queue.put(event)

    def flush(self, timeout: float = 10.0, *, close: bool = False) -> bool:
        """Wait until every event queued so far is committed; return False on timeout.

        ``close`` also closes the writer's database connection (for tests that drop the database).
        """
        if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
            return True
        marker = _Marker(close)
        self._queue.put(marker)
        self._wake.set()
        return marker.done.wait(timeout)

    def _ensure_thread(self) -> None:
        # After a fork (gunicorn preload) the parent's thread does not exist in the child.
        if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                if self._pid != os.getpid():
                    self._queue = queue.SimpleQueue()
                    self._wake = threading.Event()
                self._pid = os.getpid()
                self._thread = threading.Thread(
                    target=self._run, name="keyward-audit-writer", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            batch, markers = [], []
            self._take(item, batch, markers)
            if not markers:
                # Let the batch gather for KEYWARD_AUDIT_FLUSH_MS without waking up for every
                # event (each wake-up is a thread switch in the worker): flush() cuts it short.
                self._wake.wait(conf.settings.AUDIT_FLUSH_MS / 1000)
            self._wake.clear()
            while len(batch) < conf.settings.AUDIT_BATCH:
                try:
                    self._take(self._queue.get_nowait(), batch, markers)
                except queue.Empty:
                    break
            metrics.audit_queue_depth(self._queue.qsize() + len(batch))
            if batch:
                started = time.perf_counter()
                self._write(batch)
                metrics.audit_write_observed("batch", time.perf_counter() - started)
            metrics.audit_queue_depth(self._queue.qsize())
            if any(marker.close for marker in markers):
                connection.close()
            for marker in markers:
                marker.done.set()

    @staticmethod
    def _take(item, batch: list, markers: list) -> None:
        (markers if isinstance(item, _Marker) else batch).append(item)

    def _write(self, batch: list) -> None:
        from audit.models import AuditEvent

        for attempt in (1, 2):
            try:
                _check_connection()
                if connection.vendor == "postgresql":
                    _insert(batch)
                else:
                    AuditEvent.objects.bulk_create(batch)
                self.failing = False
                break
            except Exception:
                connection.close()
                if attempt == 2:
                    self.failing = True
                    logger.exception("could not write %d API request events", len(batch))
                    batch = _write_one_by_one(batch)
        for event in batch:
            stream_event(event)


def _write_one_by_one(batch: list) -> list:
    """Write each event of a batch that failed on its own, so that one event the database
    refuses does not take the others with it; return those written. Stop at the first sign that
    the database itself is away: the rest would fail alike."""
    written, lost = [], []
    for index, event in enumerate(batch):
        try:
            event.save()
        except (InterfaceError, OperationalError):
            connection.close()
            lost = batch[index:]
            break
        except Exception:
            connection.close()
            lost.append(event)
        else:
            written.append(event)
    for event in lost:
        # Never silent: the lost events are on the error log, secrets-free by design.
        logger.error("lost audit event: %s %s", event.action, event.metadata)
    return written


_checked_at = 0.0
CHECK_INTERVAL = 1.0  # seconds between two checks of the writer's connection


def _check_connection() -> None:
    """Close the writer's connection if it is broken or past CONN_MAX_AGE, at most once a
    second: each check costs a round trip, and a failed batch is retried on a new connection."""
    global _checked_at
    now = time.monotonic()
    if now - _checked_at >= CHECK_INTERVAL:
        _checked_at = now
        connection.close_if_unusable_or_obsolete()


def _insert(batch: list) -> None:
    """Insert ``batch`` in one statement and give each event its id (PostgreSQL).

    What ``bulk_create`` does, as one fixed statement whatever the batch size: the batch travels
    as one JSON array of rows, which ``jsonb_to_recordset`` turns back into typed rows. Made
    once, the statement is prepared once per connection. The alternatives cost this thread,
    which shares the worker's CPU with the requests, several times more: a multi-row VALUES
    list is a new, long statement for psycopg to parse each batch; one array per column is
    escaped element by element in Python. JSON is encoded in C, and every column type of the
    table reads its JSON form exactly (times in ISO 8601 with their offset).
    """
    rows = [
        {column: _json_value(getattr(event, attname)) for attname, column in _columns()}
        for event in batch
    ]
    with prepared_cursor() as cursor:
        cursor.execute(_insert_sql(), [json.dumps(rows, ensure_ascii=False)])
        ids = [row[0] for row in cursor.fetchall()]
    for event, pk in zip(batch, ids, strict=True):
        event.pk = pk
        event._state.adding = False
        event._state.db = connection.alias


def _json_value(value):
    return value.isoformat() if isinstance(value, datetime) else value


@functools.cache
def _columns() -> tuple:
    """(attribute, column) of each field the INSERT writes."""
    return tuple((f.attname, f.column) for f in _fields())


@functools.cache
def _column_list() -> str:
    """The quoted columns both INSERTs write, in ``_fields`` order."""
    return ", ".join(connection.ops.quote_name(f.column) for f in _fields())


@functools.cache
def _fields() -> tuple:
    from audit.models import AuditEvent

    # The database fills the id and the inserting transaction's id (txid) itself.
    return tuple(
        f for f in AuditEvent._meta.concrete_fields if not f.primary_key and not f.has_db_default()
    )


def _record_type(field) -> str:
    # varchar(n) read as text: storing text in the column refuses a value that is too long, as
    # the ORM's INSERT does, where reading it as varchar(n) would silently truncate it.
    db_type = field.db_type(connection)
    return "text" if db_type.startswith("varchar") else db_type


@functools.cache
def _insert_sql() -> str:
    from audit.models import AuditEvent

    q = connection.ops.quote_name
    columns = _column_list()
    types = ", ".join(f"{q(f.column)} {_record_type(f)}" for f in _fields())
    # SECURITY: identifiers and types from model metadata; the rows are one bound parameter.
    # jsonb_to_recordset() yields the rows in array order, and RETURNING follows it, as
    # bulk_create assumes of a multi-row INSERT.
    return (
        f"INSERT INTO {q(AuditEvent._meta.db_table)} ({columns}) "  # noqa: S608
        f"SELECT {columns} FROM jsonb_to_recordset(%s::jsonb) AS r({types}) "
        f"RETURNING {q(AuditEvent._meta.pk.column)}"
    )


@functools.cache
def _insert_one_sql(asynchronous: bool, condition: str | None) -> str:
    from audit.models import AuditEvent

    q = connection.ops.quote_name
    values = ", ".join(f"CAST(%s AS {_record_type(f)})" for f in _fields())
    # set_config(..., true) lasts until the end of this statement's own transaction, so it
    # applies to its commit and to nothing else: the session's setting stays as it was.
    source = (
        " FROM (SELECT set_config('synchronous_commit', 'off', true)) AS asynchronous_commit"
        if asynchronous
        else ""
    )
    where = f" WHERE {condition}" if condition else ""
    # SECURITY: identifiers and types from model metadata, the condition from the caller's
    # code; every value is a bound parameter.
    return (
        f"INSERT INTO {q(AuditEvent._meta.db_table)} ({_column_list()}) "  # noqa: S608
        f"SELECT {values}{source}{where} "
        f"RETURNING {q(AuditEvent._meta.pk.column)}, txid"
    )


@functools.cache
def _value_readers() -> tuple:
    """(attname, is JSON) of each column the one-row INSERT writes, in order."""
    from django.db.models import JSONField

    return tuple((f.attname, isinstance(f, JSONField)) for f in _fields())


def _values(event) -> list:
    # What get_db_prep_save gives, without its per-field calls: every value is cast to its
    # column's type in the statement, so text, numbers, aware datetimes and None go as they are.
    return [
        json.dumps(getattr(event, attname), ensure_ascii=False)
        if is_json
        else getattr(event, attname)
        for attname, is_json in _value_readers()
    ]


def write_now(event, condition: tuple[str, list] | None = None) -> bool:
    """Commit ``event`` before returning (inside a transaction: insert it, to commit with it).

    ``condition`` is (SQL, parameters) the INSERT is made under, in the same statement: False
    when it did not hold and nothing was written (PostgreSQL; elsewhere it is not checked).
    Raises DatabaseError when the event cannot be written; outside a transaction, one broken
    connection is retried on a new one.
    """
    inside = connection.in_atomic_block
    if connection.vendor != "postgresql":
        event.save()
        transaction.on_commit(lambda: stream_event(event))  # at once outside a transaction
        return True
    started = time.perf_counter()
    asynchronous = not inside and conf.settings.AUDIT_SYNCHRONOUS_COMMIT != "on"
    sql = _insert_one_sql(asynchronous, condition[0] if condition else None)
    params = _values(event)
    if condition:
        params += condition[1]
    for attempt in (1, 2):
        try:
            with prepared_cursor() as cursor:
                cursor.execute(sql, params)
                row = cursor.fetchone()
            break
        except (InterfaceError, OperationalError):
            if inside or attempt == 2:
                raise
            connection.close()
    metrics.audit_write_observed("request", time.perf_counter() - started)
    if row is None:
        return False
    event.pk, event.txid = row
    event._state.adding = False
    event._state.db = connection.alias
    transaction.on_commit(lambda: stream_event(event))  # at once outside a transaction
    return True


writer = RequestEventWriter()
atexit.register(writer.flush)


def flush(timeout: float = 10.0, *, close: bool = False) -> bool:
    """Wait until every API request event queued in this process is written."""
    return writer.flush(timeout, close=close)
