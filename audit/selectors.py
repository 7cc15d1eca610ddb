"""Tenant-scoped reads of the audit log.

Audit knows no roles: the caller decides who may read a tenant's log (the portal's
``tenant_view(Action.AUDIT_READ)``, the API's ``audit:read`` scope within the owner's role)
and hands over that tenant.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.http import Http404
from django.utils import timezone

from audit import conf
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


def event_page_ascending(
    tenant,
    *,
    after: int | None,
    horizon: datetime,
    limit: int,
    since: datetime | None = None,
    actor: str = "",
    key: int | None = None,
    action: str = "",
    outcome: str = "",
):
    """Return up to ``limit`` events after id ``after``, oldest first, none newer than
    ``horizon`` (the API's pull order: new events only ever arrive at the end)."""
    events = _filtered(
        AuditEvent.objects.for_tenant(tenant).filter(occurred_at__lte=horizon),
        since=since,
        actor=actor,
        key=key,
        action=action,
        outcome=outcome,
    )
    if after is not None:
        events = events.filter(id__gt=after)
    return events.select_related("tenant").order_by("id")[:limit]


@dataclass(frozen=True, slots=True)
class EventPage:
    events: list[AuditEvent]
    last: int | None  # the id to continue after (the cursor's, when nothing is new)
    has_more: bool


def event_feed(tenant, *, limit: int, cursor: int | None = None, **filters) -> EventPage:
    """Return the next page of the tenant's feed for SIEM pulls: up to ``limit`` events after id
    ``cursor``, oldest first, none younger than KEYWARD_AUDIT_API_LAG seconds."""
    horizon = timezone.now() - timedelta(seconds=conf.settings.AUDIT_API_LAG)
    events = list(
        event_page_ascending(tenant, after=cursor, horizon=horizon, limit=limit + 1, **filters)
    )
    page = events[:limit]
    return EventPage(page, page[-1].pk if page else cursor, len(events) > limit)
