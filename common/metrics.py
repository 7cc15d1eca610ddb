"""Prometheus metrics the request path updates: their definitions and one cheap hook each.

The ground holds them so that every app may count without importing one above it; what is read
at scrape time (task queue, webhook deliveries) and the ``/metrics`` door live in the ``metrics``
app. Under gunicorn, set PROMETHEUS_MULTIPROC_DIR before the workers start: each process then
writes its values to a file there, and a scrape sums them (prometheus-client's multiprocess
mode; gunicorn.conf.py marks a dead worker's live gauges gone).

A hook costs about a microsecond: each labelled child is looked up once and kept here, so the
request path pays one dict lookup and one ``inc`` or ``observe``, never ``labels()``.
"""

from prometheus_client import Counter, Gauge, Histogram

# Seconds: a key lookup is well under a millisecond from the process's memory, a few with a query.
LATENCY_BUCKETS = (0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
MAX_CHILDREN = 64  # distinct label values per metric; beyond, the value is counted as "other"

API_REQUESTS = Counter(
    "keyward_api_requests",
    "API requests made with a key (or refused for one), by outcome and HTTP status.",
    ["outcome", "status"],
)
API_REFUSED = Counter(
    "keyward_api_refused",
    "API requests refused without a usable key (none, malformed, unknown, ...), by reason.",
    ["reason"],
)
API_THROTTLED = Counter(
    "keyward_api_throttled",
    "API requests made with a key and answered 429 (over the key's rate), by reason.",
    ["reason"],
)
AUTHENTICATION_SECONDS = Histogram(
    "keyward_authentication_seconds",
    "Time BearerKeyAuthentication took to accept or refuse a Bearer credential.",
    ["outcome"],
    buckets=LATENCY_BUCKETS,
)
AUDIT_WRITE_SECONDS = Histogram(
    "keyward_audit_write_seconds",
    "Time to write API request events: one in the request (request), or a batch (batch).",
    ["mode"],
    buckets=LATENCY_BUCKETS,
)
AUDIT_QUEUE_DEPTH = Gauge(
    "keyward_audit_queue_depth",
    "API request events waiting for the batched writer (KEYWARD_AUDIT_FAIL_CLOSED=false).",
    multiprocess_mode="livesum",
)

_children: dict[tuple, object] = {}
_label_sets: dict[object, int] = {}  # metric -> distinct label values kept


def _child(metric, *values: str):
    child = _children.get((metric, values))
    if child is not None:
        return child
    if _label_sets.get(metric, 0) >= MAX_CHILDREN:
        # SECURITY: label values come from code, but a bug must not grow memory or the scrape.
        values = ("other",) * len(values)
        child = _children.get((metric, values))
        if child is None:
            child = _children[(metric, values)] = metric.labels(*values)
        return child
    _label_sets[metric] = _label_sets.get(metric, 0) + 1
    child = _children[(metric, values)] = metric.labels(*values)
    return child


def api_request(outcome: str, status: int) -> None:
    """Count one API request made with a key: success, failure, denied, throttled, refused,
    audit_unavailable or key_changed."""
    _child(API_REQUESTS, outcome, str(status)).inc()


def api_refused(reason: str, status: int) -> None:
    """Count one refusal without a usable key (and the request, by its status)."""
    _child(API_REFUSED, reason).inc()
    _child(API_REQUESTS, "refused", str(status)).inc()


def api_throttled(reason: str) -> None:
    """Count one request made with a key over its rate (429)."""
    _child(API_THROTTLED, reason).inc()
    _child(API_REQUESTS, "throttled", "429").inc()


def authentication_observed(outcome: str, seconds: float) -> None:
    """Observe one authentication: ``accepted`` or ``refused``."""
    _child(AUTHENTICATION_SECONDS, outcome).observe(seconds)


def audit_write_observed(mode: str, seconds: float) -> None:
    """Observe one write of request events: ``request`` (one, in the request) or ``batch``."""
    _child(AUDIT_WRITE_SECONDS, mode).observe(seconds)


def audit_queue_depth(depth: int) -> None:
    """Set how many request events wait for this process's batched writer."""
    AUDIT_QUEUE_DEPTH.set(depth)
