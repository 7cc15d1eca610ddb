"""The JSON body of each webhook: ``{"type", "timestamp", "data"}`` (the Standard Webhooks
payload shape). A key is described by its id, name and hint: never by its token."""

import json
from datetime import datetime

from audit.models import AuditEvent
from keys.models import ApiKey
from webhooks.events import PRIVATE_METADATA


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


def describe_key(key: ApiKey) -> dict:
    owner = (
        {"kind": "user", "id": key.user_id}
        if key.user_id
        else {"kind": "service_id", "id": key.service_id_id}
    )
    return {
        "id": key.pk,
        "name": key.name,
        "hint": key.hint,
        "owner": owner,
        "scopes": list(key.scopes),
        "expires_at": _iso(key.expires_at),
        "revoked_at": _iso(key.revoked_at),
    }


def event_data(event: AuditEvent, target=None) -> dict:
    """Return the ``data`` of the webhook that reports ``event``; ``target`` is the object the
    event was recorded about, if the caller has it (no query then)."""
    data = {
        "event_id": event.pk,
        "tenant": event.tenant.slug,
        "actor": {"kind": event.actor_kind, "label": event.actor_label},
        "details": {k: v for k, v in event.metadata.items() if k not in PRIVATE_METADATA},
    }
    if event.target_kind == "key":
        if isinstance(target, ApiKey) and str(target.pk) == event.target_id:
            key = target
        else:
            key = ApiKey.objects.for_tenant(event.tenant).filter(pk=event.target_id).first()
        data["key"] = describe_key(key) if key is not None else {"id": int(event.target_id)}
    elif event.target_kind:
        data[event.target_kind] = {"id": event.target_id, "label": event.target_label}
    return data


def body(event_type: str, timestamp: datetime, data: dict) -> str:
    """Return the exact text that is signed and sent."""
    return json.dumps(
        {"type": event_type, "timestamp": _iso(timestamp), "data": data},
        separators=(",", ":"),
        sort_keys=True,
    )
