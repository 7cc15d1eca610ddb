"""Tamper evidence: seal committed events into a signed hash chain, verify it, prune old events.

Events are sealed in commit order. Ids are taken at INSERT but transactions commit out of id
order, so "every event with id <= N" is not a stable set; ``(txid, id)`` is. In a statement's
snapshot, every event whose ``txid`` is below the *horizon* (``_PG_HORIZON``) is final (its
transaction has ended, or it is the sealing transaction's own), and any event that commits later
has ``txid`` at or above it. The horizon ``h`` is the smaller of the snapshot's ``xmax`` and the
``txid`` of every transaction still running in the snapshot, leaving out the sealer's own and
those of backends connected to another database (they cannot write this table;
``pg_stat_activity`` names them, and one it does not name counts). If the sealer has a ``txid``
and it is at most ``h``, the horizon is that ``txid`` + 1 instead: its own events commit with the
seal, and the events it records after the seal land after the seal's end. So a seal covers the
events after the previous seal's end ``(txid, id)`` up to the horizon, decided and read in one
statement (``_PG_FINAL``). On SQLite one writer runs at a time and every committed event is
final. A transaction left open holds sealing back at its ``txid``; it never makes a seal wrong.

A seal stores, per event in its order, its id (8 bytes, big-endian) and the first 16 bytes of the
SHA-256 of the event's canonical form, so verification names the first event that was altered,
deleted or inserted. The seal's ``format`` says which canonical form and which range:

1. Python (SQLite, and every seal made before formats existed), the ids
   ``first_event_id``–``last_event_id`` in id order: the JSON array of the ``_FIELDS`` values in
   that order, metadata's keys sorted, no whitespace, ``ensure_ascii=False``, UTF-8,
   ``occurred_at`` as ``datetime.isoformat()`` in UTC (``2026-01-02T03:04:05.123456+00:00``).
2. PostgreSQL, the same id range, computed in the database (``_pg_digest``), in one query per
   seal: the text of ``json_build_array(<the _FIELDS columns, in that order>)`` converted to
   UTF-8, where ``occurred_at`` is ``to_char(occurred_at AT TIME ZONE 'UTC',
   'YYYY-MM-DD"T"HH24:MI:SS.US')`` and every other column is itself. So: elements separated by
   ``", "``; text as JSON strings (PostgreSQL's escaping); ``id`` and ``tenant_id`` as JSON
   numbers; ``ip`` as the inet's text (``10.0.0.1``, or ``10.0.0.0/8`` with a mask); ``metadata``
   as jsonb's own text (keys by length, then bytes; ``", "`` and ``": "``); SQL NULL as ``null``,
   which no value of a non-null column can spell. Nothing in it reads a session setting
   (TimeZone, DateStyle, IntervalStyle, extra_float_digits, client_encoding, lc_*), so any
   session recomputes the same bytes. For example ``["api.request", "5", "key", "bench key 5",
   5, "10.0.0.5", {"path": "/v1/", "status": 200}, "2026-07-09T16:14:18.088280", "success",
   "e4da…", "5", "key", "bench key 5", 1, "bench-client/1.0"]``.
3. PostgreSQL, in commit order (what PostgreSQL writes now): the events ``e`` with
   ``(start_txid, first_event_id - 1) < (e.txid, e.id) <= (last_txid, last_event_id)``, ordered
   by ``(txid, id)``; each event's form (``_pg_row_digest``) is the text of the row
   ``row(<the _FIELDS_TX columns, in that order>)`` converted to UTF-8, where ``occurred_at`` is
   ``(extract(epoch FROM occurred_at) * 1000000)::bigint`` (microseconds since 1970, UTC) and
   every other column is itself (alphabetical: ``txid`` comes after ``tenant_id``). So: the
   values between parentheses, separated by commas; a NULL as nothing, a text as itself, or
   double-quoted (with ``"`` and ``\\`` doubled) when empty or holding a comma, quote,
   backslash, parenthesis or space; numbers, inet and jsonb as their own text. About 1.6 times
   as fast to compute as format 2's JSON array, and, like it, independent of every session
   setting. For example ``(api.request,5,key,"bench key 5",5,10.0.0.5,"{""path"": ""/v1/""}",
   1783613658088280,success,e4da…,5,key,"bench key 5",1,812,bench-client/1.0)``.
   ``start_txid`` and ``first_event_id - 1`` are the previous seal's end (for a format 1 or 2
   seal: its ``last_event_id`` and that event's ``txid``).
4. Python, in commit order (what SQLite writes now): format 3's range and order, format 1's form
   over the ``_FIELDS_TX`` values.

On PostgreSQL each event's format-3 digest is computed once, at INSERT, by a trigger (migration
``audit/0008``) into a column the model does not know, ``digest``. Sealing strings the stored
digests together (computing them for events older than the trigger), which is about four times as
fast as hashing every row again. Verification does recompute every digest from its row and
compares it with the stored one and, through the stored ones, with the seal, in one pass: a row
changed after its INSERT fails whether or not its stored digest was changed with it.

The seal hash is the hex SHA-256 of a head followed by the SHA-256 of the entries. The head is
``"{previous_hash}|{last_event_id}|{event_count}|"`` for format 1, the same plus ``"{format}|"``
for format 2, and ``"{previous_hash}|{start_txid}:{first_event_id - 1}|{last_txid}:{last_event_id}|
{event_count}|{format}|"`` (one line) for formats 3 and 4. The first seal's previous hash is 64
zeros. A seal made with ``KEYWARD_AUDIT_SIGNING_KEY`` set carries an Ed25519 signature of its
hash (``audit/signing.py``): rewriting events and recomputing the chain, as a database superuser
can, needs that key, which is not in the database.

Changing any form breaks the seals made with it: add a format instead.
"""

import hashlib
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, connection, transaction
from django.db.models import Max, Q
from django.utils import timezone

import audit
from audit import conf, signing
from audit.models import AuditEvent, AuditSeal, SealFormat

GENESIS = "0" * 64
ENTRY = 24  # 8 bytes of id + 16 bytes of SHA-256
_LAST_ID = 2**63 - 1
_BY_ID = SealFormat.by_id()
# The hashed fields of formats 1 and 2, in this (alphabetical) order: every column of AuditEvent
# then (txid came later).
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
# The hashed fields of formats 3 and 4: every column of AuditEvent, alphabetical.
_FIELDS_TX = tuple(sorted((*_FIELDS, "txid")))
_TABLE = AuditEvent._meta.db_table
_encode = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode

_PG_TIME = """to_char("occurred_at" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US')"""


def _pg_digest(fields: tuple[str, ...]) -> str:
    """Return the SQL of an event's 16-byte digest in format 2."""
    columns = ", ".join(_PG_TIME if field == "occurred_at" else f'"{field}"' for field in fields)
    return f"substring(sha256(convert_to(json_build_array({columns})::text, 'UTF8')) FROM 1 FOR 16)"


_PG_MICROS = '(extract(epoch FROM "occurred_at") * 1000000)::bigint'


def _pg_row_digest(fields: tuple[str, ...]) -> str:
    """Return the SQL of an event's 16-byte digest in format 3 (a row's text, not JSON)."""
    columns = ", ".join(_PG_MICROS if field == "occurred_at" else f'"{field}"' for field in fields)
    return f"substring(sha256(convert_to(row({columns})::text, 'UTF8')) FROM 1 FOR 16)"


# One bytea: the format-2 entries of the events in (%s, %s], in id order; NULL when none.
_PG_ENTRIES = (
    f"SELECT string_agg(int8send(id) || {_pg_digest(_FIELDS)}, ''::bytea ORDER BY id) "  # noqa: S608
    f"FROM {_TABLE} WHERE id > %s AND id <= %s"
)
# The format-3 entries of the events in ((%s, %s), (%s, %s)], in commit order; NULL when none.
_PG_ENTRIES_TX = (
    f"SELECT string_agg(int8send(id) || {_pg_row_digest(_FIELDS_TX)}, ''::bytea ORDER BY txid, id) "  # noqa: S608
    f'FROM {_TABLE} WHERE ("txid", "id") > (%s, %s) AND ("txid", "id") <= (%s, %s)'
)
# An event's format-3 digest as the INSERT trigger stored it (audit/0008), or computed now for
# the events inserted before that trigger existed.
_PG_STORED_DIGEST = f'coalesce("digest", {_pg_row_digest(_FIELDS_TX)})'
# The horizon of the statement's snapshot (see the module docstring).
_PG_HORIZON = """(SELECT CASE WHEN own <= h THEN own + 1 ELSE h END FROM (SELECT
    least(
        pg_snapshot_xmax(pg_current_snapshot())::text::bigint,
        (SELECT min(x::text::bigint) FROM pg_snapshot_xip(pg_current_snapshot()) AS x
         WHERE x IS DISTINCT FROM pg_current_xact_id_if_assigned()
           AND NOT EXISTS (
               SELECT 1 FROM pg_stat_activity AS a
               WHERE a.datname <> current_database()
                 AND a.backend_xid::text::bigint = mod(x::text::bigint, 4294967296)))) AS h,
    pg_current_xact_id_if_assigned()::text::bigint AS own) AS snapshot)"""
# The format-3 entries of the final events after (%s, %s), and the last one's txid: one statement,
# so one snapshot decides both what is final and what is read.
_PG_FINAL = (
    f"SELECT string_agg(int8send(id) || {_PG_STORED_DIGEST}, ''::bytea "  # noqa: S608
    f'ORDER BY txid, id), max("txid") FROM {_TABLE} '
    f'WHERE ("txid", "id") > (%s, %s) AND "txid" < {_PG_HORIZON}'
)
# Whether a format-3 seal (its id is the last parameter) still matches its events, in one pass:
# the entries made of the stored digests equal the seal's, and every stored digest equals the
# one recomputed from its row now.
_PG_MATCHES_TX = (
    f"SELECT coalesce(string_agg(int8send(id) || {_PG_STORED_DIGEST}, ''::bytea "  # noqa: S608
    f"ORDER BY txid, id), ''::bytea) = (SELECT entries FROM {AuditSeal._meta.db_table} "
    f'WHERE id = %s) AND coalesce(bool_and("digest" IS NULL OR "digest" = '
    f"{_pg_row_digest(_FIELDS_TX)}), true) "
    f'FROM {_TABLE} WHERE ("txid", "id") > (%s, %s) AND ("txid", "id") <= (%s, %s)'
)


def canonical(row: tuple, fields: tuple[str, ...] = _FIELDS) -> bytes:
    """Return the format-1 (or, with ``_FIELDS_TX``, format-4) canonical JSON bytes of an event
    given as a ``values_list(*fields)`` row."""
    values = list(row)
    time = fields.index("occurred_at")
    values[time] = row[time].astimezone(timezone.UTC).isoformat()
    return _encode(values).encode()


def _entry(row: tuple, fields: tuple[str, ...] = _FIELDS) -> bytes:
    event_id = row[fields.index("id")]
    return event_id.to_bytes(8, "big") + hashlib.sha256(canonical(row, fields)).digest()[:16]


def seal_hash(
    previous_hash: str,
    last_event_id: int,
    count: int,
    entries: bytes,
    format: int = SealFormat.PYTHON_JSON,
    *,
    start: tuple[int, int] | None = None,
    last_txid: int | None = None,
) -> str:
    """Return the hash of a seal; ``start`` (the previous seal's end) and ``last_txid`` are for
    formats 3 and 4."""
    return _chain_hash(
        previous_hash,
        last_event_id,
        count,
        hashlib.sha256(entries).digest(),
        format,
        start=start,
        last_txid=last_txid,
    )


def _chain_hash(
    previous_hash: str,
    last_event_id: int,
    count: int,
    entries_sha256: bytes,
    format: int,
    *,
    start: tuple[int, int] | None = None,
    last_txid: int | None = None,
) -> str:
    if format in _BY_ID:
        # Format 1's head predates formats and stays as it was; format 2 adds its format (one
        # more "|"), so flipping a seal's format changes its hash.
        head = f"{previous_hash}|{last_event_id}|{count}|"
        if format != SealFormat.PYTHON_JSON:
            head += f"{format}|"
    else:
        head = (
            f"{previous_hash}|{start[0]}:{start[1]}|{last_txid}:{last_event_id}|{count}|{format}|"
        )
    return hashlib.sha256(head.encode() + entries_sha256).hexdigest()


def _hash_of(seal: AuditSeal, entries_sha256: bytes) -> str:
    return _chain_hash(
        seal.previous_hash,
        seal.last_event_id,
        seal.event_count,
        entries_sha256,
        seal.format,
        start=_start(seal),
        last_txid=seal.last_txid,
    )


def _seal_format() -> int:
    """Return the format new seals are made in (a seam: tests make the older formats with it)."""
    if connection.vendor == "postgresql":
        return SealFormat.POSTGRESQL_COMMIT_ORDER
    return SealFormat.PYTHON_COMMIT_ORDER


def _start(seal: AuditSeal) -> tuple[int, int] | None:
    """Return the position a format-3 or 4 seal starts after (None for the id-range formats)."""
    if seal.format in _BY_ID or seal.start_txid is None:
        return None
    return seal.start_txid, seal.first_event_id - 1


def _end(seal: AuditSeal | None) -> tuple[int, int]:
    """Return the (txid, id) a seal ends at: where the next seal starts."""
    if seal is None:
        return 0, 0
    if seal.last_txid is not None:
        return seal.last_txid, seal.last_event_id
    # A format 1 or 2 seal: its events all got the txid of the migration that added the column.
    txid = AuditEvent.objects.filter(id=seal.last_event_id).values_list("txid", flat=True).first()
    return txid or 0, seal.last_event_id


def _after(position: tuple[int, int]) -> Q:
    txid, event_id = position
    return Q(txid__gt=txid) | Q(txid=txid, id__gt=event_id)


def _upto(position: tuple[int, int]) -> Q:
    txid, event_id = position
    return Q(txid__lt=txid) | Q(txid=txid, id__lte=event_id)


def _in_seal(seal: AuditSeal) -> Q:
    """The events a seal covers."""
    if seal.format in _BY_ID:
        return Q(id__gt=seal.first_event_id - 1, id__lte=seal.last_event_id)
    return _after(_start(seal)) & _upto((seal.last_txid, seal.last_event_id))


def _events(after: int, upto: int | None = None):
    rows = AuditEvent.objects.filter(id__gt=after)
    if upto is not None:
        rows = rows.filter(id__lte=upto)
    return rows.order_by("id").values_list(*_FIELDS).iterator(chunk_size=10000)


def _events_tx(condition: Q):
    rows = AuditEvent.objects.filter(condition).order_by("txid", "id")
    return rows.values_list(*_FIELDS_TX).iterator(chunk_size=10000)


def _entries(format: int, after: int, upto: int | None) -> bytes:
    """Return the entries of the events with ids in ``(after, upto]``, formats 1 and 2."""
    if format == SealFormat.POSTGRESQL_JSON:
        with _binary_cursor() as cursor:
            upto = _LAST_ID if upto is None else upto
            cursor.execute(_PG_ENTRIES, [after, upto], binary=True, prepare=False)
            return cursor.fetchone()[0] or b""
    entries = bytearray()
    for row in _events(after, upto):
        entries += _entry(row)
    return bytes(entries)


def _entries_in(seal: AuditSeal) -> bytes:
    """Recompute a seal's entries from the events it covers, in its format."""
    if seal.format in _BY_ID:
        return _entries(seal.format, seal.first_event_id - 1, seal.last_event_id)
    if seal.format == SealFormat.POSTGRESQL_COMMIT_ORDER:
        with _binary_cursor() as cursor:
            cursor.execute(_PG_ENTRIES_TX, _range_params(seal), binary=True, prepare=False)
            return cursor.fetchone()[0] or b""
    return b"".join(_entry(row, _FIELDS_TX) for row in _events_tx(_in_seal(seal)))


def _range_params(seal: AuditSeal) -> list[int]:
    return [*_start(seal), seal.last_txid, seal.last_event_id]


def _final_entries(format: int, start: tuple[int, int]) -> tuple[bytes, int | None]:
    """Return the entries of the final events after ``start`` in commit order, and the txid of
    the last one (None when there are none)."""
    if format == SealFormat.POSTGRESQL_COMMIT_ORDER:
        with _binary_cursor() as cursor:
            # pg_stat_activity is read once per transaction unless told: a stale copy would not
            # name the transactions of other databases that began since (it errs safe: sealing
            # waits for them).
            cursor.execute("SELECT pg_stat_clear_snapshot()", prepare=False)
            cursor.execute(_PG_FINAL, list(start), binary=True, prepare=False)
            entries, last_txid = cursor.fetchone()
            return entries or b"", last_txid
    condition = _after(start)
    if connection.vendor == "postgresql":  # format 4 on PostgreSQL: tests only
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(f"SELECT {_PG_HORIZON}")
            condition &= Q(txid__lt=cursor.fetchone()[0])
    entries, last_txid = bytearray(), None
    txid = _FIELDS_TX.index("txid")
    for row in _events_tx(condition):
        entries += _entry(row, _FIELDS_TX)
        last_txid = row[txid]
    return bytes(entries), last_txid


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
def audit_seal(*, now: datetime | None = None, actor=None):
    """Seal the events committed since the last seal, in commit order, up to the horizon (see the
    module docstring); sign the seal when a signing key is configured. Return the new seal, or
    None when there is nothing to seal (idempotent; safe to run from cron). ``now`` is the seal's
    ``created_at``."""
    signer = signing.signer()  # an unreadable key fails before anything is written
    last = AuditSeal.objects.order_by("-id").first()
    previous = last.seal_hash if last else GENESIS
    format = _seal_format()
    start_txid = last_txid = None
    if format in _BY_ID:  # the older id-range formats: tests only
        start = last.last_event_id if last else 0
        entries = _entries(format, start, None)
    else:
        start_txid, start = _end(last)
        entries, last_txid = _final_entries(format, (start_txid, start))
    if not entries:
        return None
    last_id = int.from_bytes(entries[-ENTRY : -ENTRY + 8], "big")
    count = len(entries) // ENTRY
    digest = seal_hash(
        previous,
        last_id,
        count,
        entries,
        format,
        start=(start_txid, start),
        last_txid=last_txid,
    )
    try:
        with transaction.atomic():
            seal = _create_seal(
                created_at=now or timezone.now(),
                first_event_id=start + 1,
                last_event_id=last_id,
                start_txid=start_txid,
                last_txid=last_txid,
                event_count=count,
                format=format,
                entries=entries,
                previous_hash=previous,
                seal_hash=digest,
                signature=signer.sign(digest) if signer else b"",
                signing_key_id=signer.key_id if signer else "",
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
            "last_txid": last_txid,
            "hash": seal.seal_hash,
            "signed_by": seal.signing_key_id,
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
    signed: int = 0  # seals whose signature was checked
    unsigned: int = 0  # seals with no signature (allowed: made before signing was configured)
    keys: int = 0  # public keys verification could use


def audit_verify(*, expect: str | None = None) -> Verification:
    """Recompute the seal chain and check its signatures; report the first seal or event that
    does not match.

    With a public key configured (``signing.verify_keys()``), every seal must carry a valid
    signature by one of them, except seals of formats 1 and 2 (made before seals were signed) and
    those up to and including the seal whose hash is ``KEYWARD_AUDIT_UNSIGNED_UNTIL``. With none,
    signatures cannot be checked: unsigned seals pass (the command warns) and signed ones fail.
    ``expect``: a seal hash written down earlier, which the chain must still hold.
    """
    keys = signing.verify_keys()
    unsigned_until = conf.settings.AUDIT_UNSIGNED_UNTIL
    exempt = 0  # seals with an id up to this one may be unsigned
    if unsigned_until:
        exempt = (
            AuditSeal.objects.filter(seal_hash=unsigned_until).values_list("pk", flat=True).first()
            or 0
        )
    previous = None
    found = expect is None
    seals = events = signed = unsigned = 0
    # A seal's entries are read only where needed: a million events hold 24 MB of them.
    for seal in AuditSeal.objects.order_by("id").defer("entries").iterator(chunk_size=100):
        if previous is not None:
            if seal.previous_hash != previous.seal_hash:
                return _bad(seals, events, f"seal {seal.pk} does not chain to seal {previous.pk}")
            if not _follows(seal, previous):
                return _bad(
                    seals, events, f"seal {seal.pk} does not start where seal {previous.pk} ends"
                )
        entries_sha256, size = _stored_digest(seal.pk)
        if (
            seal.format not in SealFormat.values
            or (seal.format not in _BY_ID and (seal.start_txid is None or seal.last_txid is None))
            or size != seal.event_count * ENTRY
            or seal.seal_hash != _hash_of(seal, entries_sha256)
        ):
            return _bad(seals, events, f"seal {seal.pk} was altered")
        signature = bytes(seal.signature or b"")
        if signature:
            public_key = keys.get(seal.signing_key_id)
            if public_key is None:
                return _bad(
                    seals,
                    events,
                    f"seal {seal.pk} is signed by an unknown key ({seal.signing_key_id or '?'})",
                )
            if not signing.is_valid(public_key, signature, seal.seal_hash):
                return _bad(seals, events, f"seal {seal.pk} has a bad signature")
            signed += 1
        elif keys and seal.format not in _BY_ID and seal.pk > exempt:
            return _bad(seals, events, f"seal {seal.pk} is not signed")
        else:
            unsigned += 1
        found = found or seal.seal_hash == expect
        matched, problem = _check_events(seal)
        events += matched
        if problem:
            return _bad(seals, events, problem)
        seals += 1
        previous = seal
    if not found:
        return _bad(seals, events, f"the expected seal {expect} is not in the chain")
    if previous is None:
        unsealed = AuditEvent.objects.count()
    elif previous.format in _BY_ID:
        unsealed = AuditEvent.objects.filter(id__gt=previous.last_event_id).count()
    else:
        unsealed = AuditEvent.objects.filter(_after(_end(previous))).count()
    return Verification(True, seals, events, unsealed, "", signed, unsigned, len(keys))


def _follows(seal: AuditSeal, previous: AuditSeal) -> bool:
    """Whether ``seal`` starts where ``previous`` ends."""
    if seal.first_event_id - 1 != previous.last_event_id:
        return False
    if seal.format in _BY_ID or previous.format in _BY_ID:
        return True
    return seal.start_txid == previous.last_txid


def _check_events(seal: AuditSeal) -> tuple[int, str]:
    """Compare a seal's entries with its events now; return how many matched and the first
    difference ("" if none)."""
    if seal.format in (SealFormat.POSTGRESQL_JSON, SealFormat.POSTGRESQL_COMMIT_ORDER):
        if connection.vendor != "postgresql":
            return 0, f"seal {seal.pk} can only be verified on PostgreSQL"
        if _pg_matches(seal):
            return seal.event_count, ""
        # Find out which event: rare, so both blobs may come over.
        return _first_difference(_stored_entries(seal.pk), _split(_entries_in(seal)))
    if seal.format == SealFormat.PYTHON_JSON:
        actual = _digests(_events(seal.first_event_id - 1, seal.last_event_id), _FIELDS)
    else:
        actual = _digests(_events_tx(_in_seal(seal)), _FIELDS_TX)
    return _first_difference(_stored_entries(seal.pk), actual)


def _digests(rows: Iterable[tuple], fields: tuple[str, ...]) -> Iterator[tuple[int, bytes]]:
    for row in rows:
        entry = _entry(row, fields)
        yield int.from_bytes(entry[:8], "big"), entry[8:]


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
    """Recompute a format-2 or 3 seal's entries and compare them with the stored ones, in the
    server."""
    if seal.format == SealFormat.POSTGRESQL_JSON:
        query = f"SELECT ({_PG_ENTRIES}) = entries FROM {AuditSeal._meta.db_table} WHERE id = %s"  # noqa: S608
        params = [seal.first_event_id - 1, seal.last_event_id, seal.pk]
    else:
        query, params = _PG_MATCHES_TX, [seal.pk, *_range_params(seal)]
    with _binary_cursor() as cursor:
        cursor.execute(query, params, prepare=False)
        return cursor.fetchone()[0] is True


def _first_difference(expected: bytes, actual: Iterator[tuple[int, bytes]]) -> tuple[int, str]:
    """Walk the sealed entries beside the events' entries (both in the seal's order); return how
    many matched before the first difference, and that difference ("" if none)."""
    sealed = _split(expected)
    want = next(sealed, None)
    matched = 0
    for event_id, digest in actual:
        if want is None:
            return matched, f"event {event_id} was inserted after sealing"
        if event_id != want[0]:
            # Out of step: read the rest of both sides (rare) to say which event is at fault.
            sealed_ids = {want[0], *(i for i, _ in sealed)}
            if event_id not in sealed_ids:
                return matched, f"event {event_id} was inserted after sealing"
            actual_ids = {event_id, *(i for i, _ in actual)}
            if want[0] not in actual_ids:
                return matched, f"event {want[0]} was deleted"
            return matched, f"event {want[0]} was altered"  # it moved: its txid changed
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
        newest = AuditEvent.objects.filter(_in_seal(seal)).aggregate(newest=Max("occurred_at"))
        if newest["newest"] is None or newest["newest"] >= before:
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
        if boundary.format in _BY_ID:
            cursor.execute(f"DELETE FROM {_TABLE} WHERE id <= %s", [boundary.last_event_id])  # noqa: S608
        else:
            cursor.execute(
                f'DELETE FROM {_TABLE} WHERE ("txid", "id") <= (%s, %s)',  # noqa: S608
                [boundary.last_txid, boundary.last_event_id],
            )
        events = cursor.rowcount
        cursor.execute(f"DELETE FROM {AuditSeal._meta.db_table} WHERE id <= %s", [boundary.pk])  # noqa: S608
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
