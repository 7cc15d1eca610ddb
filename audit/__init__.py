"""Audit log. Importing the package loads no models: ``record()`` imports the service lazily."""


def record(action: str, **kwargs):
    """Record one audit event inside the caller's transaction. See ``audit.services.record``."""
    from audit.services import record as _record

    return _record(action, **kwargs)
