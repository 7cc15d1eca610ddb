"""Audit events: append-only records of every security-relevant action."""

from django.db import models
from django.utils import timezone

from audit.actions import Outcome

APPEND_ONLY = "Audit events are append-only: they cannot be changed or deleted."


class CurrentTransactionId(models.Func):
    """The id of the inserting transaction, as a number (PostgreSQL's ``pg_current_xact_id()``).

    A reader's snapshot says which transactions may still commit (``pg_snapshot_xmin``): every
    event whose ``txid`` is below it is final, whatever order the ids were taken in. SQLite runs
    one writer at a time, so there the id order is the commit order and the value is 0.
    """

    output_field = models.BigIntegerField()

    def as_sql(self, compiler, connection, **extra_context):
        return "0", []

    def as_postgresql(self, compiler, connection, **extra_context):
        return "(pg_current_xact_id()::text::bigint)", []


class ActorKind(models.TextChoices):
    USER = "user", "user"
    SERVICE_ID = "service_id", "service ID"
    KEY = "key", "key"
    OPERATOR = "operator", "operator"
    CLI = "cli", "command line"
    SYSTEM = "system", "system"
    ANONYMOUS = "anonymous", "anonymous"


class AuditEventQuerySet(models.QuerySet):
    def for_tenant(self, tenant) -> "AuditEventQuerySet":
        """Return the events of ``tenant``."""
        return self.filter(tenant=tenant)

    def update(self, **kwargs):
        raise TypeError(APPEND_ONLY)

    def delete(self):
        raise TypeError(APPEND_ONLY)


class AuditEvent(models.Model):
    """One security-relevant action. Labels are snapshots: they survive renames and deletions."""

    occurred_at = models.DateTimeField(default=timezone.now, db_index=True)
    # No index of its own: the three composite indexes below start with it, and every index is
    # one more write per API request.
    tenant = models.ForeignKey(
        "accounts.Tenant",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    actor_kind = models.CharField(max_length=12, choices=ActorKind.choices)
    actor_id = models.CharField(max_length=64, blank=True)
    actor_label = models.CharField(max_length=200, blank=True)
    action = models.CharField(max_length=64)
    target_kind = models.CharField(max_length=32, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_label = models.CharField(max_length=200, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.CHOICES, default=Outcome.SUCCESS)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    # Set by the database on INSERT: the commit-order key of the feed and the seals,
    # ordered (txid, id). See CurrentTransactionId and audit/selectors.py.
    txid = models.BigIntegerField(db_default=CurrentTransactionId(), editable=False)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["tenant", "-id"], name="audit_tenant_id"),
            models.Index(fields=["tenant", "action", "-id"], name="audit_tenant_action_id"),
            models.Index(fields=["tenant", "target_kind", "target_id"], name="audit_tenant_target"),
            # The SIEM feed's order (per tenant) and the seals' order (all events).
            models.Index(fields=["tenant", "txid", "id"], name="audit_tenant_txid_id"),
            models.Index(fields=["txid", "id"], name="audit_txid_id"),
        ]

    def __str__(self) -> str:
        return f"{self.occurred_at:%Y-%m-%d %H:%M:%S} {self.action} by {self.actor_label}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise TypeError(APPEND_ONLY)
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError(APPEND_ONLY)


class SealFormat(models.IntegerChoices):
    """How a seal's per-event digests were computed (``audit/seals.py`` spells out each form)."""

    PYTHON_JSON = 1, "canonical JSON hashed in Python"
    POSTGRESQL_JSON = 2, "JSON array hashed in PostgreSQL"
    # Commit order: the events after the previous seal's (txid, id), up to a snapshot's horizon.
    POSTGRESQL_COMMIT_ORDER = 3, "row text with txid hashed in PostgreSQL, commit order"
    PYTHON_COMMIT_ORDER = 4, "canonical JSON with txid hashed in Python, commit order"

    @classmethod
    def by_id(cls) -> frozenset[int]:
        """The formats whose seals cover an id range (made before seals followed commit order)."""
        return frozenset({cls.PYTHON_JSON, cls.POSTGRESQL_JSON})


class AuditSeal(models.Model):
    """A tamper-evident seal over a contiguous run of events, chained to the previous seal.

    Formats 1 and 2 cover the ids ``first_event_id``–``last_event_id``. Formats 3 and 4 cover, in
    commit order ``(txid, id)``, the events after ``(start_txid, first_event_id - 1)`` (the
    previous seal's end) up to and including ``(last_txid, last_event_id)``.
    ``entries`` holds, for each sealed event in that order, its id (8 bytes) and the first 16
    bytes of the SHA-256 of its canonical form (``format``), so ``audit_verify`` can name the first
    event that was altered, deleted or inserted. ``seal_hash`` covers the previous seal's hash,
    the range, the count, the format and the entries; ``signature`` is an Ed25519 signature of
    ``seal_hash`` by a key that is not in the database (``signing_key_id`` names it).
    """

    created_at = models.DateTimeField(default=timezone.now)
    first_event_id = models.BigIntegerField()
    last_event_id = models.BigIntegerField()
    event_count = models.PositiveIntegerField()
    entries = models.BinaryField()
    # Seals made before formats existed are format 1, which is also what SQLite still writes.
    format = models.PositiveSmallIntegerField(
        choices=SealFormat.choices, default=SealFormat.PYTHON_JSON
    )
    # Unique: two concurrent audit_seal runs cannot both extend the chain from the same seal.
    previous_hash = models.CharField(max_length=64, unique=True)
    seal_hash = models.CharField(max_length=64, unique=True)
    # Formats 3 and 4 only: the txid of the previous seal's end, and of this seal's last event.
    start_txid = models.BigIntegerField(null=True, blank=True)
    last_txid = models.BigIntegerField(null=True, blank=True)
    # Empty on an unsigned seal; otherwise 64 bytes and the signing key's id (audit/seals.py).
    signature = models.BinaryField(blank=True, default=b"")
    signing_key_id = models.CharField(max_length=16, blank=True, default="")

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        if self.last_txid is None:
            return f"seal {self.pk}: events {self.first_event_id}–{self.last_event_id}"
        return f"seal {self.pk}: events up to ({self.last_txid}, {self.last_event_id})"

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise TypeError("Audit seals cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("Audit seals cannot be deleted.")
