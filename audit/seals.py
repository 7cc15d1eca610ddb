"""Tamper evidence: seal committed events into a hash chain, verify it, prune old sealed events.

A seal covers every event id in ``(previous seal's last_event_id, last_event_id]`` and stores, per
event in id order, its id (8 bytes, big-endian) and the first 16 bytes of the SHA-256 of the
event's canonical form, so verification names the first event that was altered, deleted or
inserted. The seal's ``format`` says which canonical form:

1. Python (SQLite, and every seal made before formats existed): the JSON array of the ``_FIELDS``
   values in that order, metadata's keys sorted, no whitespace, ``ensure_ascii=False``, UTF-8,
   ``occurred_at`` as ``datetime.isoformat()`` in UTC (``2026-01-02T03:04:05.123456+00:00``).
2. PostgreSQL, computed in the database (``_PG_CANONICAL``), in one query per seal: the text of
   ``json_build_array(<the _FIELDS columns, in that order>)`` converted to UTF-8, where
   ``occurred_at`` is ``to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US')``
   and every other column is itself. So: elements separated by ``", "``; text as JSON strings
   (PostgreSQL's escaping); ``id`` and ``tenant_id`` as JSON numbers; ``ip`` as the inet's text
   (``10.0.0.1``, or ``10.0.0.0/8`` with a mask); ``metadata`` as jsonb's own text (keys by
   length, then bytes; ``", "`` and ``": "``); SQL NULL as ``null``, which no value of a non-null
   column can spell. Nothing in it reads a session setting (TimeZone, DateStyle, IntervalStyle,
   extra_float_digits, client_encoding, lc_*), so any session recomputes the same bytes.
   For example ``["api.request", "5", "key", "bench key 5", 5, "10.0.0.5", {"path": "/v1/",
   "status": 200}, "2026-07-09T16:14:18.088280", "success", "e4da…", "5", "key", "bench key 5",
   1, "bench-client/1.0"]``.

Changing either form breaks the seals made with it: add a format instead.
"""

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

import audit
from audit.models import AuditEvent, AuditSeal, SealFormat

GENESIS = "0" * 64
SAFETY_WINDOW = timedelta(seconds=60)
ENTRY = 24  # 8 bytes of id + 16 bytes of SHA-256
_LAST_ID = 2**63 - 1
# The hashed fields, in this (alphabetical) order: every column of AuditEvent.
_FIELDS = (
    "action",
    "actor_id",
    "actor_kind",
    "actor_label",
    "id",
    "ip",
    "metadata",
    "occurred_at",
    "outcome",
    "request_id",
    "target_id",
    "target_kind",
    "target_label",
    "tenant_id",
    "user_agent",
)
_ID = _FIELDS.index("id")
_TIME = _FIELDS.index("occurred_at")
_encode = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode

_PG_TIME = """to_char("occurred_at" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US')"""
_PG_CANONICAL = (
    "json_build_array("
    + ", ".join(_PG_TIME if field == "occurred_at" else f'"{field}"' for field in _FIELDS)
    + ")::text"
)
_PG_DIGEST = f"substring(sha256(convert_to({_PG_CANONICAL}, 'UTF8')) FROM 1 FOR 16)"
# One bytea: the entries of the events in (%s, %s], in id order; NULL when there are none.
_PG_ENTRIES = (
    f"SELECT string_agg(int8send(id) || {_PG_DIGEST}, ''::bytea ORDER BY id) "  # noqa: S608
    f"FROM {AuditEvent._meta.db_table} WHERE id > %s AND id <= %s"
)


def canonical(row: tuple) -> bytes:
    """Return the format-1 canonical JSON bytes of an event given as a ``values_list(*_FIELDS)``
    row."""
    values = list(row)
    values[_TIME] = row[_TIME].astimezone(timezone.UTC).isoformat()
    return _encode(values).encode()


def _entry(row: tuple) -> bytes:
    return row[_ID].to_bytes(8, "big") + hashlib.sha256(canonical(row)).digest()[:16]


def seal_hash(
    previous_hash: str,
    last_event_id: int,
    count: int,
    entries: bytes,
    format: int = SealFormat.PYTHON_JSON,
) -> str:
    return _chain_hash(
        previous_hash, last_event_id, count, hashlib.sha256(entries).digest(), format
    )


def _chain_hash(
    previous_hash: str, last_event_id: int, count: int, entries_sha256: bytes, format: int
) -> str:
    # Format 1's head predates formats and stays as it was; every later format is in the head
    # (one more "|"), so flipping a seal's format changes its hash.
    head = f"{previous_hash}|{last_event_id}|{count}|"
    if format != SealFormat.PYTHON_JSON:
        head += f"{format}|"
    return hashlib.sha256(head.encode() + entries_sha256).hexdigest()


def _seal_format() -> int:
    """Return the format new seals are made in (a seam: tests make format-1 seals on PostgreSQL)."""
    if connection.vendor == "postgresql":
        return SealFormat.POSTGRESQL_JSON
    return SealFormat.PYTHON_JSON


def _events(after: int, upto: int | None = None):
    rows = AuditEvent.objects.filter(id__gt=after)
    if upto is not None:
        rows = rows.filter(id__lte=upto)
    return rows.order_by("id").values_list(*_FIELDS).iterator(chunk_size=10000)


def _entries(format: int, after: int, upto: int | None) -> bytes:
    """Return the entries of the events in ``(after, upto]`` in ``format`` (b"" if none)."""
    if format == SealFormat.POSTGRESQL_JSON:
        with _binary_cursor() as cursor:
            upto = _LAST_ID if upto is None else upto
            cursor.execute(_PG_ENTRIES, [after, upto], binary=True, prepare=False)
            return cursor.fetchone()[0] or b""
    entries = bytearray()
    for row in _events(after, upto):
        entries += _entry(row)
    return bytes(entries)


@contextmanager
def _binary_cursor():
    """Yield a psycopg cursor on Django's PostgreSQL connection that binds parameters in the
    server and can read results in binary.

    Django's cursors bind client-side: 24 MB of entries (a million events) would travel as a
    48 MB hex literal for the server to parse, about a second each way. Queries run here are not
    prepared (each runs once per seal) and bypass Django's query log and execute wrappers.
    """
    from psycopg import Cursor

    connection.ensure_connection()
    with connection.wrap_database_errors, Cursor(connection.connection) as cursor:
        yield cursor


def _create_seal(**values) -> AuditSeal:
    seal = AuditSeal(**values)
    if connection.vendor != "postgresql":
        seal.save(force_insert=True)
        return seal
    fields = [field for field in AuditSeal._meta.concrete_fields if not field.primary_key]
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    with _binary_cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {AuditSeal._meta.db_table} ({columns}) "  # noqa: S608 - model names
            f"VALUES ({', '.join(['%s'] * len(fields))}) RETURNING id",
            [field.get_db_prep_save(getattr(seal, field.attname), connection) for field in fields],
            prepare=False,
        )
        seal.pk = cursor.fetchone()[0]
    seal._state.adding = False
    return seal


def _split(entries: bytes) -> Iterator[tuple[int, bytes]]:
    view = memoryview(entries)
    for i in range(0, len(view) - ENTRY + 1, ENTRY):
        yield int.from_bytes(view[i : i + 8], "big"), bytes(view[i + 8 : i + ENTRY])


@transaction.atomic
def audit_seal(*, now: datetime | None = None, window: timedelta = SAFETY_WINDOW, actor=None):
    """Seal the events committed since the last seal and older than ``window``; return the new
    seal, or None when there is nothing to seal (idempotent; safe to run from cron)."""
    now = now or timezone.now()
    last = AuditSeal.objects.order_by("-id").first()
    start = last.last_event_id if last else 0
    previous = last.seal_hash if last else GENESIS
    # Seal a contiguous run of ids: stop before the first event still inside the window.
    young = (
        AuditEvent.objects.filter(id__gt=start, occurred_at__gt=now - window)
        .order_by("id")
        .values_list("id", flat=True)
        .first()
    )
    format = _seal_format()
    entries = _entries(format, start, young - 1 if young is not None else None)
    if not entries:
        return None
    last_id = int.from_bytes(entries[-ENTRY : -ENTRY + 8], "big")
    count = len(entries) // ENTRY
    try:
        with transaction.atomic():
            seal = _create_seal(
                first_event_id=start + 1,
                last_event_id=last_id,
                event_count=count,
                format=format,
                entries=entries,
                previous_hash=previous,
                seal_hash=seal_hash(previous, last_id, count, entries, format),
            )
    except IntegrityError:  # another audit_seal extended the chain first
        return None
    audit.record(
        "audit.sealed",
        actor=actor or audit_actor_system(),
        metadata={
            "seal": seal.pk,
            "events": count,
            "last_event_id": last_id,
            "hash": seal.seal_hash,
        },
    )
    return seal


def audit_actor_system():
    from audit.services import Actor

    return Actor.system()


@dataclass
class Verification:
    ok: bool
    seals: int
    events: int
    unsealed: int
    problem: str = ""


def audit_verify() -> Verification:
    """Recompute the seal chain; report the first seal or event that does not match."""
    previous = None
    seals = events = 0
    upto = 0
    # A seal's entries are read only where needed: a million events hold 24 MB of them.
    for seal in AuditSeal.objects.order_by("id").defer("entries").iterator(chunk_size=100):
        if previous is not None and seal.previous_hash != previous.seal_hash:
            return _bad(seals, events, f"seal {seal.pk} does not chain to seal {previous.pk}")
        entries_sha256, size = _stored_digest(seal.pk)
        if (
            seal.format not in SealFormat.values
            or size != seal.event_count * ENTRY
            or seal.seal_hash
            != _chain_hash(
                seal.previous_hash,
                seal.last_event_id,
                seal.event_count,
                entries_sha256,
                seal.format,
            )
        ):
            return _bad(seals, events, f"seal {seal.pk} was altered")
        after = seal.first_event_id - 1
        if seal.format == SealFormat.POSTGRESQL_JSON:
            if connection.vendor != "postgresql":
                return _bad(seals, events, f"seal {seal.pk} can only be verified on PostgreSQL")
            if _pg_matches(seal):
                events += seal.event_count
            else:  # find out which event: rare, so both blobs may come over
                actual = _split(_entries(seal.format, after, seal.last_event_id))
                matched, problem = _first_difference(_stored_entries(seal.pk), actual)
                return _bad(seals, events + matched, problem)
        else:
            rows = _events(after, seal.last_event_id)
            matched, problem = _first_difference(
                _stored_entries(seal.pk), ((row[_ID], _entry(row)[8:]) for row in rows)
            )
            if problem:
                return _bad(seals, events + matched, problem)
            events += matched
        seals += 1
        previous = seal
        upto = seal.last_event_id
    unsealed = AuditEvent.objects.filter(id__gt=upto).count()
    return Verification(True, seals, events, unsealed)


def _stored_entries(seal_id: int) -> bytes:
    entries = AuditSeal.objects.filter(pk=seal_id).values_list("entries", flat=True).get()
    return bytes(entries)


def _stored_digest(seal_id: int) -> tuple[bytes, int]:
    """Return the SHA-256 and the length of a seal's stored entries."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT sha256(entries), length(entries) FROM {AuditSeal._meta.db_table} "  # noqa: S608
                "WHERE id = %s",
                [seal_id],
            )
            entries_sha256, size = cursor.fetchone()
            return bytes(entries_sha256), size
    entries = _stored_entries(seal_id)
    return hashlib.sha256(entries).digest(), len(entries)


def _pg_matches(seal: AuditSeal) -> bool:
    """Recompute a format-2 seal's entries and compare them with the stored ones, in the server."""
    with _binary_cursor() as cursor:
        cursor.execute(
            f"SELECT ({_PG_ENTRIES}) = entries FROM {AuditSeal._meta.db_table} WHERE id = %s",  # noqa: S608
            [seal.first_event_id - 1, seal.last_event_id, seal.pk],
            prepare=False,
        )
        return cursor.fetchone()[0] is True


def _first_difference(expected: bytes, actual: Iterator[tuple[int, bytes]]) -> tuple[int, str]:
    """Walk the sealed entries beside the events' entries (both in id order); return how many
    matched before the first difference, and that difference ("" if none)."""
    sealed = _split(expected)
    want = next(sealed, None)
    matched = 0
    for event_id, digest in actual:
        if want is not None and event_id > want[0]:
            return matched, f"event {want[0]} was deleted"
        if want is None or event_id < want[0]:
            return matched, f"event {event_id} was inserted after sealing"
        if digest != want[1]:
            return matched, f"event {event_id} was altered"
        matched += 1
        want = next(sealed, None)
    if want is not None:
        return matched, f"event {want[0]} was deleted"
    return matched, ""


def _bad(seals: int, events: int, problem: str) -> Verification:
    return Verification(False, seals, events, 0, problem)


@transaction.atomic
def audit_prune(*, before: datetime, actor) -> tuple[int, int]:
    """Delete whole seals whose events all occurred before ``before``, with their events.

    Unsealed events are never deleted. Returns (events, seals) deleted and records
    ``audit.pruned``. The only code that uses the trigger's escape (transaction-local).
    """
    boundary = None
    for seal in AuditSeal.objects.order_by("id").defer("entries").iterator():
        newest = AuditEvent.objects.filter(id__lte=seal.last_event_id).order_by("-id").first()
        if newest is None or newest.occurred_at >= before:
            break
        boundary = seal
    if boundary is None:
        audit.record(
            "audit.pruned",
            actor=actor,
            metadata={"before": before.isoformat(), "events": 0, "seals": 0},
        )
        return 0, 0
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL keyward.audit_prune = 'on'")
        cursor.execute("DELETE FROM audit_auditevent WHERE id <= %s", [boundary.last_event_id])
        events = cursor.rowcount
        cursor.execute("DELETE FROM audit_auditseal WHERE id <= %s", [boundary.pk])
        seals = cursor.rowcount
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL keyward.audit_prune = 'off'")
    audit.record(
        "audit.pruned",
        actor=actor,
        metadata={
            "before": before.isoformat(),
            "events": events,
            "seals": seals,
            "anchor": boundary.seal_hash,
        },
    )
    return events, seals
