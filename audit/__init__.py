"""Audit log. Importing the package loads no models: ``record()`` imports the service lazily."""

from typing import Any


def record(
    action: str,
    *,
    actor: Any,
    tenant=None,
    target: Any = None,
    outcome: str = "success",
    context=None,
    metadata: dict | None = None,
):
    """Record one audit event inside the caller's transaction. See ``audit.services.record``."""
    from audit.services import record as _record

    return _record(
        action,
        actor=actor,
        tenant=tenant,
        target=target,
        outcome=outcome,
        context=context,
        metadata=metadata,
    )
