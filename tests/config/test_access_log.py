"""gunicorn's access log (gunicorn.conf.py, config/access_log.py): one line per request."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from config.access_log import escape

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _send(port: int, raw: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(raw)
        return s.recv(200)


@pytest.fixture
def gunicorn(tmp_path):
    """Keyward under gunicorn with the project's gunicorn.conf.py, logging to a file."""
    port, log = _free_port(), tmp_path / "access.log"
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "SECRET_KEY": "access-log-test",
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--workers", "1"]
        + ["--bind", f"127.0.0.1:{port}", "--access-logfile", str(log), "--error-logfile", "-"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.1)
    yield port, log
    process.terminate()
    process.wait(timeout=30)


def test_cr_lf_and_nul_in_a_url_cannot_forge_or_break_a_log_line(gunicorn):
    port, log = gunicorn
    paths = [
        b"/healthz%0A127.0.0.1%20%22GET%20/admin/%20HTTP/1.1%22%20200",
        b"/healthz%0D%0Aforged",
        b"/healthz%00nul",
        b"/healthz/%C3%A9t%C3%A9?access_token=kwp_notlogged",
    ]
    for path in paths:
        answer = _send(port, b"GET " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 ")
    deadline = time.monotonic() + 10
    while log.read_bytes().count(b"\n") < len(paths) and time.monotonic() < deadline:
        time.sleep(0.1)
    text = log.read_bytes()
    lines = text.splitlines()
    assert len(lines) == len(paths), text
    assert b"\0" not in text and b"\r" not in text
    for line, path in zip(lines, paths, strict=True):
        assert line.startswith(b'127.0.0.1 "GET ' + path.split(b"?")[0] + b' HTTP/1.1"')
    assert b"access_token" not in text and b"kwp_notlogged" not in text


@pytest.mark.parametrize(
    ("value", "logged"),
    [("plain/path", "plain/path"), ("a\nb", "a\\nb"), ("nul\0", "nul\\x00"), ('q"', 'q\\"')],
)
def test_every_field_is_escaped(value, logged):
    assert escape(value) == logged
