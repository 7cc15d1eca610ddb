"""Tamper evidence: seal committed events into a hash chain, verify it, prune old sealed events.

Each event is hashed as canonical JSON (sorted keys, no whitespace). A seal covers every event id
in ``(previous seal's last_event_id, last_event_id]`` and stores, per event, its id and a
truncated digest, so verification names the first event that was altered, deleted or inserted.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

import audit
from audit.models import AuditEvent, AuditSeal

GENESIS = "0" * 64
SAFETY_WINDOW = timedelta(seconds=60)
ENTRY = 24  # 8 bytes of id + 16 bytes of SHA-256
# The hashed form of an event: a JSON array of these fields, in this (alphabetical) order, with
# metadata's keys sorted, no whitespace, UTF-8, the time in UTC ISO 8601. Changing it breaks seals.
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


def canonical(row: tuple) -> bytes:
    """Return the canonical JSON bytes of an event given as a ``values_list(*_FIELDS)`` row."""
    values = list(row)
    values[_TIME] = row[_TIME].astimezone(timezone.UTC).isoformat()
    return _encode(values).encode()


def _entry(row: tuple) -> bytes:
    return row[_ID].to_bytes(8, "big") + hashlib.sha256(canonical(row)).digest()[:16]


def seal_hash(previous_hash: str, last_event_id: int, count: int, entries: bytes) -> str:
    head = f"{previous_hash}|{last_event_id}|{count}|".encode()
    return hashlib.sha256(head + hashlib.sha256(entries).digest()).hexdigest()


def _events(after: int, upto: int | None = None):
    rows = AuditEvent.objects.filter(id__gt=after)
    if upto is not None:
        rows = rows.filter(id__lte=upto)
    return rows.order_by("id").values_list(*_FIELDS).iterator(chunk_size=10000)


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
    entries = bytearray()
    last_id = None
    for row in _events(start, young - 1 if young is not None else None):
        entries += _entry(row)
        last_id = row[_ID]
    if last_id is None:
        return None
    count = len(entries) // ENTRY
    try:
        with transaction.atomic():
            seal = AuditSeal.objects.create(
                first_event_id=start + 1,
                last_event_id=last_id,
                event_count=count,
                entries=bytes(entries),
                previous_hash=previous,
                seal_hash=seal_hash(previous, last_id, count, bytes(entries)),
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
    for seal in AuditSeal.objects.order_by("id").iterator(chunk_size=100):
        entries = bytes(seal.entries)
        if previous is not None and seal.previous_hash != previous.seal_hash:
            return _bad(seals, events, f"seal {seal.pk} does not chain to seal {previous.pk}")
        if (
            seal.seal_hash
            != seal_hash(seal.previous_hash, seal.last_event_id, seal.event_count, entries)
            or len(entries) != seal.event_count * ENTRY
        ):
            return _bad(seals, events, f"seal {seal.pk} was altered")
        expected = [
            (int.from_bytes(entries[i : i + 8], "big"), entries[i + 8 : i + ENTRY])
            for i in range(0, len(entries), ENTRY)
        ]
        position = 0
        for row in _events(seal.first_event_id - 1, seal.last_event_id):
            event_id = row[_ID]
            if position < len(expected) and event_id > expected[position][0]:
                return _bad(seals, events, f"event {expected[position][0]} was deleted")
            if position >= len(expected) or event_id < expected[position][0]:
                return _bad(seals, events, f"event {event_id} was inserted after sealing")
            if _entry(row)[8:] != expected[position][1]:
                return _bad(seals, events, f"event {event_id} was altered")
            position += 1
            events += 1
        if position < len(expected):
            return _bad(seals, events, f"event {expected[position][0]} was deleted")
        seals += 1
        previous = seal
        upto = seal.last_event_id
    unsealed = AuditEvent.objects.filter(id__gt=upto).count()
    return Verification(True, seals, events, unsealed)


def _bad(seals: int, events: int, problem: str) -> Verification:
    return Verification(False, seals, events, 0, problem)


@transaction.atomic
def audit_prune(*, before: datetime, actor) -> tuple[int, int]:
    """Delete whole seals whose events all occurred before ``before``, with their events.

    Unsealed events are never deleted. Returns (events, seals) deleted and records
    ``audit.pruned``. The only code that uses the trigger's escape (transaction-local).
    """
    boundary = None
    for seal in AuditSeal.objects.order_by("id").iterator():
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
