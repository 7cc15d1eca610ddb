"""Seals in commit order (issue 13, item 3) and signed seals (item 4)."""

import re
import threading
from io import StringIO
from types import SimpleNamespace

import psycopg
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections, transaction

from audit import seals, signing
from audit.checks import check_seals_are_signed, check_signing_keys
from audit.models import AuditEvent, AuditSeal, SealFormat
from audit.seals import audit_prune, audit_seal, audit_verify

pytestmark = pytest.mark.django_db(transaction=True)


def _events(n: int, action: str = "auth.logged_out") -> list[AuditEvent]:
    return [
        AuditEvent.objects.create(actor_kind="system", action=action, metadata={"i": i})
        for i in range(n)
    ]


def _sealed_ids(seal: AuditSeal) -> list[int]:
    return [event_id for event_id, _ in seals._split(bytes(seal.entries))]


def _key() -> SimpleNamespace:
    private, public, key_id = signing.new_key_pair()
    return SimpleNamespace(private=private, public=public, id=key_id)


@pytest.fixture
def key(settings) -> SimpleNamespace:
    key = _key()
    settings.KEYWARD_AUDIT_SIGNING_KEY = key.private
    return key


# --- Commit order -------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_open_transaction_is_sealed_once_it_commits_never_reported_as_inserted(postgresql):
    before = _events(2)
    inserted, release, held = threading.Event(), threading.Event(), {}

    def slow_writer():
        try:
            with transaction.atomic():
                held["event"] = AuditEvent.objects.create(actor_kind="system", action="key.revoked")
                inserted.set()
                release.wait(30)
        finally:
            connections.close_all()

    writer = threading.Thread(target=slow_writer)
    writer.start()
    try:
        assert inserted.wait(30)
        after = _events(2)  # committed while the slow one is open, with higher ids
        assert after[0].pk > held["event"].pk
        first = audit_seal()
        # Only what precedes the open transaction in commit order is final.
        assert _sealed_ids(first) == [e.pk for e in before]
        assert audit_verify().ok
    finally:
        release.set()
        writer.join()
    # The slow event committed below the sealed ids' maximum: not "inserted after sealing".
    result = audit_verify()
    assert result.ok and result.events == 2, result.problem
    second = audit_seal()
    assert set(_sealed_ids(second)) >= {held["event"].pk, *(e.pk for e in after)}
    assert second.start_txid == first.last_txid and second.first_event_id == first.last_event_id + 1
    result = audit_verify()
    assert result.ok and result.seals == 2 and result.unsealed == 1  # audit.sealed of seal 2


@pytest.mark.django_db(transaction=True)
def test_a_transaction_open_in_another_database_does_not_hold_sealing_back(postgresql):
    settings = connection.settings_dict
    other = psycopg.connect(
        host=settings["HOST"],
        port=settings["PORT"] or 5432,
        user=settings["USER"],
        password=settings["PASSWORD"] or None,
        dbname="postgres",
    )
    try:
        other.execute("SELECT pg_current_xact_id()")  # holds an xid, in an open transaction
        events = _events(2)
        seal = audit_seal()
        assert seal is not None and _sealed_ids(seal) == [e.pk for e in events]
    finally:
        other.close()


def test_commit_order_seals_verify_and_name_an_event_moved_out_of_its_seal():
    events = _events(3)
    seal = audit_seal()
    assert seal.format in (SealFormat.POSTGRESQL_COMMIT_ORDER, SealFormat.PYTHON_COMMIT_ORDER)
    assert seal.last_txid is not None and seal.start_txid == 0
    assert audit_verify().ok
    # A later txid moves the event past the seal's end: it is missing from the seal.
    _tamper("UPDATE audit_auditevent SET txid = txid + 1000000 WHERE id = %s", [events[1].pk])
    result = audit_verify()
    assert not result.ok and result.problem == f"event {events[1].pk} was deleted"


def test_a_format_2_seal_is_followed_by_a_commit_order_seal(postgresql, monkeypatch):
    old = _events(2)
    monkeypatch.setattr(seals, "_seal_format", lambda: SealFormat.POSTGRESQL_JSON)
    legacy = audit_seal()
    monkeypatch.undo()
    assert legacy.format == SealFormat.POSTGRESQL_JSON and legacy.last_txid is None
    assert _sealed_ids(legacy) == [e.pk for e in old]
    new = _events(2)
    seal = audit_seal()
    assert seal.format == SealFormat.POSTGRESQL_COMMIT_ORDER
    assert seal.start_txid == AuditEvent.objects.get(pk=old[-1].pk).txid
    assert set(_sealed_ids(seal)) >= {e.pk for e in new}
    result = audit_verify()
    assert result.ok and result.seals == 2, result.problem


def test_prune_deletes_the_events_of_commit_order_seals():
    _events(3)
    sealed = audit_seal()
    events, pruned = audit_prune(before=sealed.created_at.replace(year=2999), actor=_cli())
    assert (events, pruned) == (3, 1)
    assert not AuditSeal.objects.exists()
    assert audit_verify().ok


# --- Signatures ---------------------------------------------------------------------------


def test_a_seal_is_signed_with_the_configured_key(key):
    _events(2)
    seal = audit_seal()
    assert seal.signing_key_id == key.id and len(bytes(seal.signature)) == 64
    result = audit_verify()
    assert result.ok and result.signed == 1 and result.unsigned == 0


def test_the_key_can_be_a_file(settings, tmp_path):
    key = _key()
    (tmp_path / "seal.pem").write_text(key.private)
    settings.KEYWARD_AUDIT_SIGNING_KEY = str(tmp_path / "seal.pem")
    _events(1)
    assert audit_seal().signing_key_id == key.id
    assert audit_verify().signed == 1


def test_an_unreadable_key_fails_before_sealing(settings):
    settings.KEYWARD_AUDIT_SIGNING_KEY = "/nonexistent/seal.pem"
    _events(1)
    with pytest.raises(CommandError, match="KEYWARD_AUDIT_SIGNING_KEY"):
        call_command("audit_seal", stdout=StringIO())
    assert not AuditSeal.objects.exists()
    assert [e.id for e in check_signing_keys(None)] == ["keyward.E010"]


def test_rotation_old_seals_verify_with_the_old_public_key(settings, tmp_path):
    old, new = _key(), _key()
    settings.KEYWARD_AUDIT_SIGNING_KEY = old.private
    _events(2)
    first = audit_seal()
    # Rotate: the new private key signs; the old public key (here as a file) verifies.
    (tmp_path / "old.pub").write_text(old.public)
    settings.KEYWARD_AUDIT_SIGNING_KEY = new.private
    settings.KEYWARD_AUDIT_VERIFY_KEYS = [str(tmp_path / "old.pub")]
    _events(2)
    second = audit_seal()
    assert (first.signing_key_id, second.signing_key_id) == (old.id, new.id)
    result = audit_verify()
    assert result.ok and result.signed == 2, result.problem
    # Verification runs elsewhere with the public keys only.
    settings.KEYWARD_AUDIT_SIGNING_KEY = ""
    settings.KEYWARD_AUDIT_VERIFY_KEYS = [old.public, new.public]
    assert audit_verify().ok
    # Forget the old public key: its seals can no longer be trusted.
    settings.KEYWARD_AUDIT_VERIFY_KEYS = [new.public]
    result = audit_verify()
    assert not result.ok
    assert result.problem == f"seal {first.pk} is signed by an unknown key ({old.id})"


def test_an_unsigned_seal_fails_once_a_key_is_configured(settings):
    _events(1)
    unsigned = audit_seal()
    key = _key()
    settings.KEYWARD_AUDIT_SIGNING_KEY = key.private
    _events(1)
    signed = audit_seal()
    result = audit_verify()
    assert not result.ok and result.problem == f"seal {unsigned.pk} is not signed"
    # The operator names the last seal made before signing was configured.
    settings.KEYWARD_AUDIT_UNSIGNED_UNTIL = unsigned.seal_hash
    result = audit_verify()
    assert result.ok and (result.signed, result.unsigned) == (1, 1)
    # After it, a seal without a signature fails.
    _tamper("UPDATE audit_auditseal SET signature = '' WHERE id = %s", [signed.pk])
    result = audit_verify()
    assert not result.ok and result.problem == f"seal {signed.pk} is not signed"


def test_without_keys_seals_are_unsigned_and_both_commands_say_so_loudly(settings):
    settings.DEBUG = False
    _events(1)
    out, err = StringIO(), StringIO()
    call_command("audit_seal", stdout=out, stderr=err)
    assert "NOT signed" in out.getvalue() and "superuser can rewrite" in err.getvalue()
    out, err = StringIO(), StringIO()
    call_command("audit_verify", stdout=out, stderr=err)
    assert out.getvalue().startswith("OK: 1 seals")
    assert "no signing or verification key" in err.getvalue()
    assert "superuser" in err.getvalue()
    assert [w.id for w in check_seals_are_signed(None)] == ["keyward.W010"]
    settings.KEYWARD_AUDIT_SIGNING_KEY = _key().private
    assert check_seals_are_signed(None) == [] and check_signing_keys(None) == []


def test_expect_requires_the_chain_to_hold_a_seal_hash(key):
    _events(1)
    seal = audit_seal()
    assert audit_verify(expect=seal.seal_hash).ok
    call_command("audit_verify", "--expect", seal.seal_hash, stdout=StringIO())
    with pytest.raises(CommandError, match=f"the expected seal {'a' * 64} is not in the chain"):
        call_command("audit_verify", "--expect", "a" * 64, stdout=StringIO())


def test_signing_key_command_prints_a_working_pair(settings):
    out = StringIO()
    call_command("audit_signing_key", stdout=out)
    text = out.getvalue()
    private = text[text.index("-----BEGIN PRIVATE KEY") : text.index("-----END PRIVATE KEY-----")]
    public = text[text.index("-----BEGIN PUBLIC KEY") : text.index("-----END PUBLIC KEY-----")]
    settings.KEYWARD_AUDIT_SIGNING_KEY = private + "-----END PRIVATE KEY-----\n"
    settings.KEYWARD_AUDIT_VERIFY_KEYS = [public + "-----END PUBLIC KEY-----\n"]
    key_id = signing.signer().key_id
    assert f"key id {key_id}" in text
    assert list(signing.verify_keys()) == [key_id]


# --- The attack of issue 13: a superuser rewrites an event and the whole chain -------------


@pytest.mark.parametrize("signature", ["kept", "attacker key", "attacker key, real id", "removed"])
def test_a_superuser_who_rewrites_events_and_recomputes_the_chain_is_caught(
    postgresql, settings, key, signature
):
    events = _events(3)
    audit_seal()
    _events(2)
    audit_seal()
    expected = AuditSeal.objects.order_by("-id").first().seal_hash
    attacker = signing._load_private(_key().private)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # fire pending FK checks first
        for table in ("audit_auditevent", "audit_auditseal"):
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        cursor.execute(
            "UPDATE audit_auditevent SET actor_label = 'mallory' WHERE id = %s", [events[1].pk]
        )
        previous = seals.GENESIS
        for seal in AuditSeal.objects.order_by("id"):
            entries = seals._entries_in(seal)  # the documented format, recomputed
            digest = seals.seal_hash(
                previous,
                seal.last_event_id,
                seal.event_count,
                entries,
                seal.format,
                start=(seal.start_txid, seal.first_event_id - 1),
                last_txid=seal.last_txid,
            )
            forged = {
                "kept": (bytes(seal.signature), seal.signing_key_id),
                "attacker key": (attacker.sign(digest), attacker.key_id),
                "attacker key, real id": (attacker.sign(digest), key.id),
                "removed": (b"", ""),
            }[signature]
            cursor.execute(
                "UPDATE audit_auditseal SET entries = %s, previous_hash = %s, seal_hash = %s,"
                " signature = %s, signing_key_id = %s WHERE id = %s",
                [entries, previous, digest, *forged, seal.pk],
            )
            previous = digest
        for table in ("audit_auditevent", "audit_auditseal"):
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
    first = AuditSeal.objects.order_by("id").first()
    problem = {
        "kept": f"seal {first.pk} has a bad signature",
        "attacker key": f"seal {first.pk} is signed by an unknown key ({attacker.key_id})",
        "attacker key, real id": f"seal {first.pk} has a bad signature",
        "removed": f"seal {first.pk} is not signed",
    }[signature]
    with pytest.raises(CommandError, match=re.escape(f"TAMPERED: {problem}")):
        call_command("audit_verify", stdout=StringIO())
    if signature == "removed":
        # Where no key is configured, only a seal hash kept outside the database tells.
        settings.KEYWARD_AUDIT_SIGNING_KEY = ""
        assert audit_verify().ok
        result = audit_verify(expect=expected)
        assert not result.ok
        assert result.problem == f"the expected seal {expected} is not in the chain"


def _tamper(sql: str, params=()):
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params)


def _cli():
    from audit.services import Actor

    return Actor.cli("audit_prune")
