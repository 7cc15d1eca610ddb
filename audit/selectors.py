"""Tenant-scoped reads of the audit log.

Audit knows no roles: the caller decides who may read a tenant's log (the portal's
``tenant_view(Action.AUDIT_READ)``, the API's ``audit:read`` scope within the owner's role)
and hands over that tenant.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import BigIntegerField, Func, Q
from django.db.models.fields.tuple_lookups import Tuple, TupleGreaterThan
from django.http import Http404

from audit.models import AuditEvent


def _filtered(events, *, since, actor, key, action, outcome):
    """Apply the filters the portal page and the API share."""
    if since:
        events = events.filter(occurred_at__gte=since)
    if actor:
        events = events.filter(actor_label__istartswith=actor)
    if key is not None:
        events = events.filter(target_kind="key", target_id=str(key))
    if action:
        events = events.filter(action=action)
    if outcome:
        events = events.filter(outcome=outcome)
    return events


def event_list(
    tenant,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    actor: str = "",
    key: int | None = None,
    action: str = "",
    outcome: str = "",
    before: int | None = None,
):
    """Return the tenant's events, newest first, filtered; ``before`` is a keyset cursor (id)."""
    events = _filtered(
        AuditEvent.objects.for_tenant(tenant),
        since=since,
        actor=actor,
        key=key,
        action=action,
        outcome=outcome,
    )
    if until:
        events = events.filter(occurred_at__lt=until)
    if before is not None:
        events = events.filter(id__lt=before)
    return events.order_by("-id")


def event_get(tenant, pk) -> AuditEvent:
    """Return one event of the tenant, or raise Http404."""
    try:
        return event_list(tenant).get(pk=pk)
    except (AuditEvent.DoesNotExist, ValueError, TypeError):
        raise Http404("No such event.") from None


class _FinalBelow(Func):
    """The snapshot's xmin as a number: every transaction below it has ended, so the events
    whose txid is below it are final (PostgreSQL). SQLite commits one writer at a time: there
    every visible event is final."""

    output_field = BigIntegerField()

    def as_sql(self, compiler, connection, **extra_context):
        return str(2**63 - 1), []

    def as_postgresql(self, compiler, connection, **extra_context):
        return "(pg_snapshot_xmin(pg_current_snapshot())::text::bigint)", []


class _OwnTransaction(Func):
    """The reading transaction's own id, if it wrote anything (else NULL): its own events are
    visible to it, though not yet final for anyone else."""

    output_field = BigIntegerField()

    def as_sql(self, compiler, connection, **extra_context):
        return "NULL", []

    def as_postgresql(self, compiler, connection, **extra_context):
        return "(pg_current_xact_id_if_assigned()::text::bigint)", []


def final_events(events):
    """Keep the events no later commit can precede in (txid, id) order."""
    return events.filter(Q(txid__lt=_FinalBelow()) | Q(txid=_OwnTransaction()))


def after_position(events, txid: int, last_id: int):
    """Keep the events after (txid, last_id) in commit order: a row comparison, which the
    (tenant, txid, id) index seeks to, however many events share one transaction."""
    return events.filter(TupleGreaterThan(Tuple("txid", "id"), (txid, last_id)))


def event_page_ascending(
    tenant,
    *,
    after: tuple[int, int] | None,
    limit: int,
    since: datetime | None = None,
    actor: str = "",
    key: int | None = None,
    action: str = "",
    outcome: str = "",
):
    """Return up to ``limit`` final events after ``after`` = (txid, id), in commit order (the
    API's pull order: a later commit only ever lands after the last position handed out)."""
    events = _filtered(
        final_events(AuditEvent.objects.for_tenant(tenant)),
        since=since,
        actor=actor,
        key=key,
        action=action,
        outcome=outcome,
    )
    if after is not None:
        events = after_position(events, *after)
    return events.select_related("tenant").order_by("txid", "id")[:limit]


@dataclass(frozen=True, slots=True)
class EventPage:
    events: list[AuditEvent]
    last: tuple[int, int] | None  # the position to continue after (the cursor's, if no news)
    has_more: bool


def position_of(event_id: int) -> tuple[int, int] | None:
    """Return the (txid, id) position of an event (for version 1 cursors), or None."""
    txid = AuditEvent.objects.filter(pk=event_id).values_list("txid", flat=True).first()
    return None if txid is None else (txid, event_id)


def event_feed(
    tenant, *, limit: int, cursor: tuple[int, int] | None = None, **filters
) -> EventPage:
    """Return the next page of the tenant's feed for SIEM pulls: up to ``limit`` events after
    position ``cursor``, in commit order, and only final ones: each event is delivered exactly
    once, whatever order concurrent transactions commit in. An open transaction holds back the
    events committed after it began until it ends (its own may still come before them)."""
    events = list(event_page_ascending(tenant, after=cursor, limit=limit + 1, **filters))
    page = events[:limit]
    last = (page[-1].txid, page[-1].pk) if page else cursor
    return EventPage(page, last, len(events) > limit)
