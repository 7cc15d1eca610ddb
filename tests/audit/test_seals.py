import hashlib
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.utils import timezone

import audit
from audit import seals
from audit.models import AuditEvent, AuditSeal, SealFormat
from audit.seals import audit_prune, audit_seal, audit_verify
from audit.services import Actor

# Transactional: a seal takes only events whose transaction has ended, and a test's own open
# transaction waits behind every older one on the server (other databases' too, by xmax).
pytestmark = pytest.mark.django_db(transaction=True)


def _old_events(n: int):
    then = timezone.now() - timedelta(minutes=5)
    return [
        AuditEvent.objects.create(
            occurred_at=then, actor_kind="system", action="auth.logged_out", metadata={"i": i}
        )
        for i in range(n)
    ]


def _raw(sql: str, params=()):
    """Tamper on purpose: bypass the model (and, on PostgreSQL, the trigger)."""
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params)


def test_seal_is_idempotent_and_seals_every_committed_event_however_young():
    _old_events(3)
    young = audit.record("auth.logged_out", actor=Actor.system())
    seal = audit_seal()
    assert seal.last_event_id == young.pk and seal.event_count == 4
    # The next seal holds only the audit.sealed event recorded after the first.
    again = audit_seal()
    assert again.event_count == 1 and again.first_event_id == seal.last_event_id + 1
    assert AuditEvent.objects.get(pk=again.last_event_id).action == "audit.sealed"


def test_verify_passes_on_an_untouched_log():
    _old_events(5)
    audit_seal()
    result = audit_verify()
    assert result.ok and result.seals == 1 and result.events == 5


@pytest.mark.parametrize(
    "tamper, problem",
    [
        (
            "UPDATE audit_auditevent SET actor_label = 'mallory' WHERE id = {second}",
            "event {second} was altered",
        ),
        ("DELETE FROM audit_auditevent WHERE id = {second}", "event {second} was deleted"),
        (
            "UPDATE audit_auditseal SET event_count = event_count - 1 WHERE id = {seal}",
            "seal {seal} was altered",
        ),
    ],
)
def test_verify_names_the_first_tampered_event_or_seal(tamper, problem):
    events = _old_events(4)
    seal = audit_seal()
    ids = {"second": events[1].pk, "seal": seal.pk}
    _raw(tamper.format(**ids))
    result = audit_verify()
    assert not result.ok
    assert result.problem == problem.format(**ids)


# A forged event placed inside a sealed range: the txid of a sealed event, not its own (an event
# its own transaction commits later belongs to a later seal).
_FORGE = (
    "INSERT INTO audit_auditevent (id, occurred_at, actor_kind, actor_id, actor_label, action,"
    " target_kind, target_id, target_label, outcome, user_agent, request_id, metadata, txid)"
    " VALUES (%s, %s, 'system', '', 'forged', 'key.revoked',"
    " '', '', '', 'success', '', '', '{}', %s)"
)


def _txid(event: AuditEvent) -> int:
    return AuditEvent.objects.values_list("txid", flat=True).get(pk=event.pk)


def test_verify_detects_a_forged_event_inserted_into_a_sealed_range():
    events = _old_events(3)
    audit_seal()
    _raw(f"DELETE FROM audit_auditevent WHERE id = {events[1].pk}")
    forged_id = events[1].pk
    _raw(_FORGE, [forged_id, timezone.now(), _txid(events[0])])
    result = audit_verify()
    assert not result.ok and result.problem == f"event {forged_id} was altered"


def test_verify_detects_an_event_inserted_into_a_gap_of_a_sealed_range():
    events = _old_events(3)
    _raw(f"DELETE FROM audit_auditevent WHERE id = {events[1].pk}")  # a rolled-back id
    assert audit_seal().event_count == 2
    _raw(_FORGE, [events[1].pk, timezone.now(), _txid(events[0])])
    result = audit_verify()
    assert not result.ok and result.events == 1
    assert result.problem == f"event {events[1].pk} was inserted after sealing"


def test_the_hashed_fields_are_every_column_of_an_event():
    columns = {f.attname for f in AuditEvent._meta.concrete_fields}
    assert set(seals._FIELDS_TX) == columns
    assert list(seals._FIELDS_TX) == sorted(columns)
    # Formats 1 and 2 hash every column an event had before txid.
    assert set(seals._FIELDS) == columns - {"txid"}


def test_postgresql_seals_hash_in_the_database_and_sqlite_in_python():
    _old_events(2)
    seal = audit_seal()
    expected = (
        SealFormat.POSTGRESQL_COMMIT_ORDER
        if connection.vendor == "postgresql"
        else SealFormat.PYTHON_COMMIT_ORDER
    )
    assert seal.format == expected


def test_a_format_1_seal_made_before_formats_still_verifies_and_stays_tamper_evident(
    monkeypatch,
):
    events = _old_events(3)
    monkeypatch.setattr(seals, "_seal_format", lambda: SealFormat.PYTHON_JSON)
    old = audit_seal()
    monkeypatch.undo()
    # The hash a seal got before formats existed: no format in it.
    head = f"{old.previous_hash}|{old.last_event_id}|{old.event_count}|".encode()
    assert old.format == SealFormat.PYTHON_JSON
    assert old.seal_hash == hashlib.sha256(head + hashlib.sha256(old.entries).digest()).hexdigest()
    _old_events(2)
    new = audit_seal(now=timezone.now() + timedelta(minutes=10))
    assert audit_verify().ok and audit_verify().seals == 2
    assert new.first_event_id == old.last_event_id + 1
    _raw(f"UPDATE audit_auditevent SET actor_label = 'mallory' WHERE id = {events[2].pk}")
    result = audit_verify()
    assert not result.ok and result.problem == f"event {events[2].pk} was altered"


def test_flipping_a_seals_format_is_detected():
    _old_events(2)
    seal = audit_seal()
    other = SealFormat.PYTHON_COMMIT_ORDER + SealFormat.POSTGRESQL_COMMIT_ORDER - seal.format
    _raw("UPDATE audit_auditseal SET format = %s WHERE id = %s", [other, seal.pk])
    result = audit_verify()
    assert not result.ok and result.problem == f"seal {seal.pk} was altered"


def test_postgresql_digests_do_not_depend_on_the_session_settings(postgresql):
    for i, metadata in enumerate([{"f": 0.1, "n": 10**20}, {"ü": ['a\n"b', None]}, {}]):
        AuditEvent.objects.create(
            occurred_at=timezone.now() - timedelta(minutes=5, microseconds=i),
            actor_kind="system",
            actor_label="Zoë",
            action="auth.logged_out",
            ip="2001:db8::1" if i else "10.0.0.1",
            metadata=metadata,
        )
    settings = [
        "SET LOCAL TIME ZONE 'Asia/Kathmandu'",
        "SET LOCAL DateStyle = 'SQL, DMY'",
        "SET LOCAL IntervalStyle = 'sql_standard'",
        "SET LOCAL extra_float_digits = -15",
    ]
    with connection.cursor() as cursor:
        for statement in settings:
            cursor.execute(statement)
    seal = audit_seal()
    assert seal.format == SealFormat.POSTGRESQL_COMMIT_ORDER and seal.event_count == 3
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL TIME ZONE 'America/St_Johns'")
        cursor.execute("SET LOCAL DateStyle = 'ISO, MDY'")
        cursor.execute("SET LOCAL extra_float_digits = 3")
    assert audit_verify().ok


def test_verify_detects_a_broken_chain():
    _old_events(2)
    first = audit_seal()
    _old_events(2)
    second = audit_seal(now=timezone.now() + timedelta(minutes=10))
    _raw("UPDATE audit_auditseal SET previous_hash = %s WHERE id = %s", ["f" * 64, second.pk])
    result = audit_verify()
    assert not result.ok
    assert result.problem in (
        f"seal {second.pk} does not chain to seal {first.pk}",
        f"seal {second.pk} was altered",
    )


def test_verify_command_exits_nonzero_and_names_the_event():
    events = _old_events(2)
    audit_seal()
    _raw(f"UPDATE audit_auditevent SET outcome = 'failure' WHERE id = {events[0].pk}")
    with pytest.raises(CommandError, match=f"TAMPERED: event {events[0].pk} was altered"):
        call_command("audit_verify")


def test_seal_command_reports_and_is_audited():
    _old_events(2)
    out = StringIO()
    call_command("audit_seal", stdout=out)
    assert "Sealed events" in out.getvalue()
    assert AuditEvent.objects.filter(action="audit.sealed", actor_kind="cli").exists()
    out = StringIO()
    call_command("audit_verify", stdout=out)
    assert out.getvalue().startswith("OK: 1 seals, 2 events verified")


def test_prune_deletes_only_whole_old_seals_and_records_that_it_ran():
    _old_events(3)
    audit_seal()
    kept = audit.record("auth.logged_out", actor=Actor.system())
    events, seals = audit_prune(before=timezone.now(), actor=Actor.cli("audit_prune"))
    assert (events, seals) == (3, 1)
    assert AuditEvent.objects.filter(pk=kept.pk).exists()
    assert AuditEvent.objects.filter(action="audit.pruned").get().metadata["events"] == 3
    assert not AuditSeal.objects.exists()
    assert audit_verify().ok


@pytest.mark.django_db
def test_model_refuses_update_and_delete():
    event = audit.record("auth.logged_out", actor=Actor.system())
    event.outcome = "failure"
    with pytest.raises(TypeError):
        event.save()
    with pytest.raises(TypeError):
        event.delete()
    with pytest.raises(TypeError):
        AuditEvent.objects.all().delete()
    with pytest.raises(TypeError):
        AuditEvent.objects.update(outcome="failure")


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_auditevent SET outcome = 'failure'",
        "DELETE FROM audit_auditevent",
        "TRUNCATE audit_auditevent CASCADE",
        "UPDATE audit_auditseal SET event_count = 0",
        "TRUNCATE audit_auditseal",
    ],
)
def test_postgresql_trigger_refuses_update_delete_and_truncate(postgresql, sql):
    _old_events(1)
    audit_seal()
    with pytest.raises(Exception, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # fire pending FK checks first
            cursor.execute(sql)
    assert AuditEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_trigger_escape_is_transaction_local(postgresql):
    _old_events(1)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL keyward.audit_prune = 'on'")
    # The setting ended with its transaction: a later DELETE is refused again.
    with pytest.raises(Exception, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM audit_auditevent")
    # And even with the escape, UPDATE stays refused.
    with pytest.raises(Exception, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL keyward.audit_prune = 'on'")
            cursor.execute("UPDATE audit_auditevent SET outcome = 'failure'")


@pytest.mark.django_db(transaction=True)
def test_transactional_tests_can_still_flush_the_events_table(postgresql):
    _old_events(2)
    assert AuditEvent.objects.count() == 2  # the flush after this test must get through


@pytest.mark.django_db
def test_rolled_back_change_leaves_no_event_and_streams_nothing(caplog):
    caplog.set_level("INFO", logger="keyward.audit")
    with pytest.raises(RuntimeError), transaction.atomic():
        audit.record("auth.logged_out", actor=Actor.system())
        raise RuntimeError
    assert not AuditEvent.objects.exists()
    assert not [r for r in caplog.records if r.name == "keyward.audit"]


@pytest.mark.django_db
def test_committed_event_is_one_json_line_on_the_stream(caplog, django_capture_on_commit_callbacks):
    import json

    caplog.set_level("INFO", logger="keyward.audit")
    with django_capture_on_commit_callbacks(execute=True):
        event = audit.record("auth.logged_out", actor=Actor.system(), metadata={"x": 1})
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "keyward.audit"]
    assert lines == [lines[0]] and lines[0]["id"] == event.pk and lines[0]["metadata"] == {"x": 1}
