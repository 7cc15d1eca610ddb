"""gunicorn settings for Keyward (read from the working directory by default)."""

import multiprocessing
import os
from pathlib import Path

wsgi_app = "config.wsgi:application"
bind = "0.0.0.0:8000"
workers = multiprocessing.cpu_count() * 2 + 1
accesslog = "-"
# One line per request: the path as sent, escaped, never the query string (a key sent by mistake
# in a URL must not land in the access log too). See config/access_log.py.
logger_class = "config.access_log.AccessLogger"
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(L)ss "%(a)s"'


def worker_exit(server, worker):
    """Write what this worker still holds before it goes: the request events queued for the
    batched writer (KEYWARD_AUDIT_FAIL_CLOSED=false) and the counts of refusals and 429s."""
    from audit import summaries
    from audit.writer import flush

    flush(timeout=10)
    summaries.flush(everything=True)


def on_starting(server):
    """Start the Prometheus multiprocess directory (PROMETHEUS_MULTIPROC_DIR) empty: the files
    of a previous run would add its counts to this one's."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        for stale in Path(directory).glob("*.db"):
            stale.unlink()


def child_exit(server, worker):
    """Drop a dead worker's live gauges from the metrics (its counters stay in the sums)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
