"""A throwaway PostgreSQL cluster: initdb in a temp dir, a free loopback port, removed at the end.

As root, PostgreSQL must run as another user: the cluster's directory is given to ``postgres``
and every server command runs through ``runuser -u postgres --``. A cluster left behind by a
bench that was killed (SIGKILL, power loss) is found by its ``owner.pid`` at the next start and
removed then.
"""

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PG_BIN = Path(os.environ.get("BENCH_PG_BIN", "/usr/lib/postgresql/15/bin"))
PREFIX = "keyward-bench-pg-"
DB_NAME = "keyward_bench"
RUN_AS = "postgres"
# A production-like server (fsync and synchronous commit stay on: a commit costs what it costs
# in production), with room for the bulk seeding of the scale rows.
SERVER_OPTIONS = {
    "listen_addresses": "127.0.0.1",
    "shared_buffers": "512MB",
    "work_mem": "16MB",
    "maintenance_work_mem": "512MB",
    "max_wal_size": "8GB",
    "checkpoint_timeout": "30min",
    "max_connections": "50",
    "log_min_messages": "warning",
}


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago (bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Cluster:
    """One PostgreSQL server in a temp dir. ``start()``, then ``url``; ``stop()`` is idempotent."""

    def __init__(self, log=print):
        self.log = log
        self.root: Path | None = None
        self.port: int | None = None
        self.running = False
        self.as_root = os.geteuid() == 0

    @property
    def data(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    @property
    def url(self) -> str:
        return (
            f"postgres://{RUN_AS if self.as_root else self._me()}@127.0.0.1:{self.port}/{DB_NAME}"
        )

    def _me(self) -> str:
        return pwd.getpwuid(os.geteuid()).pw_name

    def _cmd(self, *args: str) -> list[str]:
        command = [str(PG_BIN / args[0]), *args[1:]]
        return ["runuser", "-u", RUN_AS, "--", *command] if self.as_root else command

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(  # noqa: S603 - fixed binaries, our own arguments
            self._cmd(*args),
            check=True,
            capture_output=True,
            text=True,
            timeout=timeout,
            start_new_session=True,  # Ctrl-C reaches run.py only, which stops us in order
        )

    def start(self) -> None:
        remove_stale(self.log)
        self.root = Path(tempfile.mkdtemp(prefix=PREFIX))
        (self.root / "owner.pid").write_text(str(os.getpid()))
        if self.as_root:
            user = pwd.getpwnam(RUN_AS)
            os.chown(self.root, user.pw_uid, user.pw_gid)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            self._superuser(),
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",
        )
        for attempt in range(5):
            self.port = free_port()
            options = {**SERVER_OPTIONS, "port": str(self.port)}
            options["unix_socket_directories"] = str(self.root)
            flags = " ".join(f"-c {k}={v}" for k, v in options.items())
            try:
                self._run(
                    "pg_ctl",
                    "-D",
                    str(self.data),
                    "-l",
                    str(self.root / "server.log"),
                    "-o",
                    flags,
                    "-w",
                    "-t",
                    "60",
                    "start",
                )
            except subprocess.CalledProcessError:
                if attempt == 4:
                    raise
                continue  # the port was taken in between: try another
            self.running = True
            break
        self._run(
            "createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", self._superuser(), DB_NAME
        )
        self.log(f"PostgreSQL cluster in {self.root} on 127.0.0.1:{self.port}")

    def _superuser(self) -> str:
        return RUN_AS if self.as_root else self._me()

    def server_log_tail(self, lines: int = 20) -> str:
        path = self.root / "server.log" if self.root else None
        if path is None or not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """Stop the server and remove its directory; safe to call twice, never raises."""
        if self.root is None:
            return
        root, self.root = self.root, None
        if self.running:
            self.running = False
            with contextlib.suppress(Exception):
                subprocess.run(  # noqa: S603
                    self._cmd("pg_ctl", "-D", str(root / "data"), "-m", "fast", "-w", "stop"),
                    capture_output=True,
                    timeout=120,
                    start_new_session=True,
                )
        shutil.rmtree(root, ignore_errors=True)
        self.log(f"PostgreSQL cluster stopped and {root} removed")


def remove_stale(log=print) -> None:
    """Stop and remove clusters of earlier bench runs whose process no longer exists."""
    for path in Path(tempfile.gettempdir()).glob(PREFIX + "*"):
        marker = path / "owner.pid"
        try:
            owner = int(marker.read_text())
        except (OSError, ValueError):
            owner = None
        if owner is not None and _pid_alive(owner):
            continue  # another bench is running
        if owner is None and time.time() - path.stat().st_mtime < 300:
            continue  # being created right now
        cluster = Cluster(log)
        cluster.root, cluster.running = path, (path / "data" / "postmaster.pid").exists()
        log(f"Removing a cluster left behind by an earlier bench run: {path}")
        cluster.stop()
