"""Each event's seal digest is stored at INSERT by a PostgreSQL trigger (audit/0008): sealing
reads the stored digests, verification recomputes them from the rows."""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from audit import seals
from audit.models import AuditEvent
from audit.seals import audit_seal, audit_verify

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("postgresql")]


def _event(**fields) -> AuditEvent:
    values = {
        "occurred_at": timezone.now() - timedelta(minutes=5),
        "actor_kind": "system",
        "action": "auth.logged_out",
        "metadata": {"n": 1},
    }
    return AuditEvent.objects.create(**(values | fields))


def _stored_and_recomputed(event_id: int) -> tuple[bytes | None, bytes]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT digest, {seals._pg_row_digest(seals._FIELDS_TX)} "  # noqa: S608
            "FROM audit_auditevent WHERE id = %s",
            [event_id],
        )
        stored, recomputed = cursor.fetchone()
    return (bytes(stored) if stored is not None else None), bytes(recomputed)


def _raw(sql: str, params=()):
    """Act as a database superuser: every trigger off for this transaction."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params)


def test_the_trigger_stores_the_rows_digest_whatever_the_sessions_settings():
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL TIME ZONE 'Asia/Kathmandu'")
        cursor.execute("SET LOCAL DateStyle = 'SQL, DMY'")
        cursor.execute("SET LOCAL extra_float_digits = -15")
        event = _event(ip="2001:db8::1", actor_label="Zoë", metadata={"f": 0.1, "q": 'a"b'})
    stored, recomputed = _stored_and_recomputed(event.pk)
    assert stored is not None and len(stored) == 16
    assert stored == recomputed


def test_an_insert_cannot_choose_its_own_digest():
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO audit_auditevent (occurred_at, actor_kind, actor_id, actor_label, "
            "action, target_kind, target_id, target_label, outcome, user_agent, request_id, "
            "metadata, digest) VALUES (now(), 'system', '', '', 'auth.logged_out', '', '', '', "
            "'success', '', '', '{}', %s) RETURNING id",
            [b"\x00" * 16],
        )
        event_id = cursor.fetchone()[0]
    stored, recomputed = _stored_and_recomputed(event_id)
    assert stored == recomputed != b"\x00" * 16


def test_a_row_changed_before_sealing_with_its_digest_left_alone_fails_verification():
    first, second = _event(), _event()
    _raw("UPDATE audit_auditevent SET actor_label = 'mallory' WHERE id = %s", [second.pk])
    seal = audit_seal()
    assert seal.event_count == 2
    result = audit_verify()
    assert not result.ok and result.problem == f"event {second.pk} was altered"
    assert first.pk < second.pk


def test_a_row_and_its_digest_changed_after_sealing_fail_verification():
    events = [_event(), _event(), _event()]
    audit_seal()
    target = events[1].pk
    _raw("UPDATE audit_auditevent SET outcome = 'failure' WHERE id = %s", [target])
    _raw(
        f"UPDATE audit_auditevent SET digest = {seals._pg_row_digest(seals._FIELDS_TX)} "  # noqa: S608
        "WHERE id = %s",
        [target],
    )
    stored, recomputed = _stored_and_recomputed(target)
    assert stored == recomputed  # the forger made the stored digest consistent
    result = audit_verify()
    assert not result.ok and result.problem == f"event {target} was altered"


def test_events_inserted_without_a_digest_are_sealed_and_verified_from_their_rows():
    with connection.cursor() as cursor:
        # As before audit/0008: no trigger fills the column.
        cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_auditevent_digest")
        try:
            old = [_event(metadata={"i": i}) for i in range(3)]
        finally:
            cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_auditevent_digest")
    new = _event()
    assert _stored_and_recomputed(old[0].pk)[0] is None
    assert _stored_and_recomputed(new.pk)[0] is not None
    seal = audit_seal()
    assert seal.event_count == 4
    assert audit_verify().ok
    _raw("UPDATE audit_auditevent SET action = 'auth.logged_in' WHERE id = %s", [old[1].pk])
    result = audit_verify()
    assert not result.ok and result.problem == f"event {old[1].pk} was altered"
