"""The audit stream: each committed event as one JSON line on the ``keyward.audit`` logger, so
that any log shipper can forward it; the same flat dict serves exports and the API."""

import json
import logging
from typing import Any

from audit.models import AuditEvent

stream = logging.getLogger("keyward.audit")


def stream_event(event: AuditEvent) -> None:
    """Write a committed event as one JSON line on the ``keyward.audit`` logger."""
    stream.info(json.dumps(event_as_dict(event), default=str))


def event_as_dict(event: AuditEvent) -> dict[str, Any]:
    """Return the event as a flat JSON-ready dict (the log stream and exports use this)."""
    return {
        "id": event.pk,
        "occurred_at": event.occurred_at.isoformat(),
        "tenant": event.tenant.slug if event.tenant_id else None,
        "actor": {"kind": event.actor_kind, "id": event.actor_id, "label": event.actor_label},
        "action": event.action,
        "target": {
            "kind": event.target_kind,
            "id": event.target_id,
            "label": event.target_label,
        },
        "outcome": event.outcome,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "request_id": event.request_id,
        "metadata": event.metadata,
    }
