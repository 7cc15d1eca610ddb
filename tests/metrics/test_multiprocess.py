"""Multiprocess mode (gunicorn): each worker writes its figures to PROMETHEUS_MULTIPROC_DIR, and a
scrape from any of them sums them; gunicorn.conf.py empties the directory at start and drops a
dead worker's live gauges."""

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.metrics.scrape import scrape, value

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
WORKER = (
    "import os\n"
    "from common import metrics\n"
    "metrics.api_request('success', 200)\n"
    "metrics.api_refused('unknown_key', 401)\n"
    "metrics.authentication_observed('accepted', 0.001)\n"
    "metrics.audit_queue_depth(3)\n"
    "print(os.getpid())\n"
)


def _worker(directory: Path) -> int:
    """Run one process that counts as a worker would; return its pid."""
    done = subprocess.run(
        [sys.executable, "-c", WORKER],
        cwd=ROOT,
        env={"PROMETHEUS_MULTIPROC_DIR": str(directory), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return int(done.stdout.strip())


def _gunicorn_conf():
    spec = importlib.util.spec_from_file_location("gunicorn_conf", ROOT / "gunicorn.conf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_scrape_sums_every_process(client, tmp_path, monkeypatch):
    first, second = _worker(tmp_path), _worker(tmp_path)
    assert first != second
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    samples = scrape(client)
    requests = "keyward_api_requests_total"
    assert value(samples, requests, outcome="success", status="200") == 2
    assert value(samples, requests, outcome="refused", status="401") == 2
    assert value(samples, "keyward_api_refused_total", reason="unknown_key") == 2
    assert value(samples, "keyward_authentication_seconds_count", outcome="accepted") == 2
    assert value(samples, "keyward_audit_queue_depth") == 6

    # A worker that died: its live gauge leaves the sum, its counts stay.
    _gunicorn_conf().child_exit(None, SimpleNamespace(pid=first))
    samples = scrape(client)
    assert value(samples, "keyward_audit_queue_depth") == 3
    assert value(samples, requests, outcome="success", status="200") == 2


def test_gunicorn_starts_with_an_empty_directory(client, tmp_path, monkeypatch):
    _worker(tmp_path)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    assert list(tmp_path.glob("*.db"))
    _gunicorn_conf().on_starting(None)
    assert not list(tmp_path.glob("*.db"))
    samples = scrape(client)
    assert value(samples, "keyward_api_requests_total", outcome="success", status="200") == 0
