"""What an audited row's figure buys: when its request event is durable.

Read in the process that serves the requests: the bench's own Django process for the in-process
rows, and each gunicorn worker (through the probe ``/api/bench/durability/``) for the HTTP rows,
so an environment variable the app does not read shows up as what the worker really does.

The settings (issue 13): ``KEYWARD_AUDIT_FAIL_CLOSED`` (default True: the request's event is
committed before the response leaves) and ``KEYWARD_AUDIT_SYNCHRONOUS_COMMIT`` (default "off":
PostgreSQL's asynchronous commit for request events; "on": a full flush). An app that does not
know ``KEYWARD_AUDIT_FAIL_CLOSED`` yet is described from ``KEYWARD_AUDIT_REQUEST_EVENTS``
("batched" or "sync") rather than from defaults it does not implement.
"""

FAIL_CLOSED_ASYNC = (
    "committed before the response (async commit: a PostgreSQL crash can lose the last ~0.6 s)"
)
FAIL_CLOSED_FLUSHED = "committed and flushed before the response"
BATCHED = "batched after the response (lost on SIGKILL: the last batch)"


def _app_setting(name: str):
    """Return (known, value) of KEYWARD_<name>: from the audit app's conf if it has the name,
    else from Django's settings if set there."""
    from django.conf import settings

    try:
        from audit import conf
    except ImportError:
        conf = None
    if conf is not None:
        try:
            return True, getattr(conf.settings, name)
        except AttributeError:
            pass
    marker = object()
    value = getattr(settings, f"KEYWARD_{name}", marker)
    return (False, None) if value is marker else (True, value)


def _truthy(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("0", "false", "no", "off", "")
    return bool(value)


def settings_now() -> dict:
    """The durability settings of this process, as the app sees them."""
    known, fail_closed = _app_setting("AUDIT_FAIL_CLOSED")
    has_commit, commit = _app_setting("AUDIT_SYNCHRONOUS_COMMIT")
    has_mode, mode = _app_setting("AUDIT_REQUEST_EVENTS")
    return {
        "fail_closed_known": known,
        "fail_closed": _truthy(fail_closed) if known else None,
        "synchronous_commit": str(commit).lower() if has_commit else None,
        "request_events": mode if has_mode else None,
    }


def describe(state: dict | None) -> str:
    """One line: when a request event is durable, for the settings ``state`` (settings_now())."""
    if not state:
        return "unknown"
    if state.get("fail_closed_known"):
        if not state["fail_closed"]:
            return BATCHED
        commit = state.get("synchronous_commit") or "off"  # the setting's default
        return FAIL_CLOSED_FLUSHED if commit not in ("off", "local") else FAIL_CLOSED_ASYNC
    mode = state.get("request_events")
    if mode == "sync":
        return (
            FAIL_CLOSED_FLUSHED + " (KEYWARD_AUDIT_FAIL_CLOSED unknown to the app: "
            "KEYWARD_AUDIT_REQUEST_EVENTS=sync, one INSERT in the request)"
        )
    if mode == "batched":
        return (
            BATCHED + " (KEYWARD_AUDIT_FAIL_CLOSED unknown to the app: "
            "KEYWARD_AUDIT_REQUEST_EVENTS=batched)"
        )
    return FAIL_CLOSED_ASYNC + " (settings unknown to the app: their defaults; not verified)"
