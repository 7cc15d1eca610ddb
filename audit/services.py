"""Write audit events."""

from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError, transaction

from audit import conf
from audit.actions import ACTIONS, Outcome
from audit.models import ActorKind, AuditEvent
from audit.signals import event_recorded
from audit.stream import stream_event
from common.request import RequestContext

UNKNOWN_ACTION = "Unknown audit action: %s (add it to audit/actions.py)."


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did it, as recorded: a kind, an id and a label snapshot."""

    kind: str
    id: str = ""
    label: str = ""

    @classmethod
    def system(cls, label: str = "system") -> "Actor":
        return cls(ActorKind.SYSTEM, "", label)

    @classmethod
    def cli(cls, command: str) -> "Actor":
        return cls(ActorKind.CLI, "", f"manage.py {command}")

    @classmethod
    def anonymous(cls, label: str = "") -> "Actor":
        return cls(ActorKind.ANONYMOUS, "", label[:200])

    @classmethod
    def operator(cls, user) -> "Actor":
        return cls(ActorKind.OPERATOR, str(user.pk), user.email)


def _as_actor(obj: Any) -> Actor:
    if isinstance(obj, Actor):
        return obj
    obj = getattr(obj, "audit_actor", obj)  # a principal is recorded as its key or its owner
    if obj is None or not getattr(obj, "is_authenticated", True):
        return Actor.anonymous()
    return Actor(obj.audit_kind, str(obj.pk), obj.label[:200])


def _target(obj: Any) -> tuple[str, str, str]:
    if obj is None:
        return "", "", ""
    return obj.audit_kind, str(obj.pk), str(obj.label)[:200]


def build_event(
    action: str,
    *,
    actor: Any,
    tenant=None,
    target: Any = None,
    outcome: str = Outcome.SUCCESS,
    context: RequestContext | None = None,
    metadata: dict | None = None,
) -> AuditEvent:
    """Return an unsaved event; refuse action names missing from the registry."""
    if action not in ACTIONS:
        raise ValueError(UNKNOWN_ACTION % action)
    who = _as_actor(actor)
    target_kind, target_id, target_label = _target(target)
    return AuditEvent(
        tenant=tenant,
        actor_kind=who.kind,
        actor_id=who.id,
        actor_label=who.label,
        action=action,
        target_kind=target_kind,
        target_id=target_id,
        target_label=target_label,
        outcome=outcome,
        ip=context.ip if context is not None else None,
        user_agent=context.user_agent if context is not None else "",
        request_id=context.request_id if context is not None else "",
        metadata=metadata or {},
    )


def record(
    action: str,
    *,
    actor: Any,
    tenant=None,
    target: Any = None,
    outcome: str = Outcome.SUCCESS,
    context: RequestContext | None = None,
    metadata: dict | None = None,
) -> AuditEvent:
    """Record one event in the caller's transaction; stream it as JSON once that commits.

    ``actor`` is an ``Actor``, a principal, or a model with ``audit_kind`` (a user, a service
    ID, a key); ``target`` a model with ``audit_kind``. Never put a secret into ``metadata``:
    events are read by auditors and shipped to SIEMs.
    """
    event = build_event(
        action,
        actor=actor,
        tenant=tenant,
        target=target,
        outcome=outcome,
        context=context,
        metadata=metadata,
    )
    return _save(event, target)


def _save(event: AuditEvent, target: Any = None) -> AuditEvent:
    """Insert ``event`` in the caller's transaction; tell ``event_recorded``'s receivers (in
    that transaction, with the ``target`` object as given, which spares them a query); stream
    it once that commits."""
    event.save()
    event_recorded.send(sender=AuditEvent, event=event, target=target)
    transaction.on_commit(lambda: stream_event(event))
    return event


class AuditUnavailable(Exception):
    """A request's event could not be committed: under KEYWARD_AUDIT_FAIL_CLOSED the request
    is not served (503 audit_unavailable)."""


class ConditionFailed(Exception):
    """A request's event was not written: the condition it was to be written under (the key
    still as it was found) no longer held. The request must not be served."""


def record_request(
    action: str,
    *,
    actor: Any,
    tenant=None,
    target: Any = None,
    outcome: str = Outcome.SUCCESS,
    context: RequestContext | None = None,
    metadata: dict | None = None,
    condition: tuple[str, list] | None = None,
    batched: bool = False,
) -> AuditEvent:
    """Record an API request event: committed before this returns (KEYWARD_AUDIT_FAIL_CLOSED,
    the default; raises AuditUnavailable if it cannot be), else handed to the per-process
    batched writer. Changes of state never come through here: their events commit with them.

    ``condition`` (SQL, parameters), fail-closed only: the event is written only if it holds
    when it is, in the same statement; else ConditionFailed. ``batched``: the event may go
    through the batched writer even when fail-closed (a JWT request's, KEYWARD_AUDIT_JWT_EVENTS),
    unless it is inside a transaction (it commits with that) or the writer's last batch failed
    (then it is committed here, as any other)."""
    from audit import writer

    event = build_event(
        action,
        actor=actor,
        tenant=tenant,
        target=target,
        outcome=outcome,
        context=context,
        metadata=metadata,
    )
    if not conf.settings.AUDIT_FAIL_CLOSED or (
        batched
        and condition is None
        and not writer.writer.failing
        and not transaction.get_connection().in_atomic_block
    ):
        writer.writer.submit(event)
        return event
    try:
        written = writer.write_now(event, condition)
    except DatabaseError as exc:
        raise AuditUnavailable(action) from exc
    if not written:
        raise ConditionFailed(action)
    writer.writer.failing = False  # the database takes events again
    return event
