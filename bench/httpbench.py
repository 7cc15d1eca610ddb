"""HTTP measurement: gunicorn (2 sync workers) on 127.0.0.1, driven by wrk (2 threads, 2
connections, a few seconds per row per round), rows interleaved in rounds like in-process."""

import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from bench.cluster import free_port

REPO = Path(__file__).resolve().parent.parent
WRK = "/usr/bin/wrk"


def ensure_wrk(log=print) -> str | None:
    """Return the path of wrk, installing Debian's package if missing and allowed (root)."""
    found = shutil.which("wrk") or (WRK if Path(WRK).exists() else None)
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log("wrk is missing: apt-get install -y wrk")
        done = subprocess.run(  # noqa: S603
            ["apt-get", "install", "-y", "wrk"],  # noqa: S607
            capture_output=True,
            text=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        if done.returncode == 0:
            return shutil.which("wrk")
        log(done.stdout[-500:] + done.stderr[-500:])
    return None


class Gunicorn:
    """gunicorn serving bench.wsgi on a free loopback port; ``stop()`` is idempotent."""

    def __init__(self, env: dict, log_path: Path, workers: int = 2, log=print):
        self.env, self.log_path, self.workers, self.log = env, log_path, workers, log
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, probe_path: str) -> None:
        command = [
            str(Path(sys.executable).parent / "gunicorn"),
            "bench.wsgi:application",
            "--workers",
            str(self.workers),
            "--worker-class",
            "sync",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--error-logfile",
            str(self.log_path),
            "--log-level",
            "warning",
            "--graceful-timeout",
            "10",
        ]
        self.process = subprocess.Popen(  # noqa: S603
            command,
            cwd=REPO,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches run.py only, which stops us in order
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: see {self.log_path}")
            try:
                with urllib.request.urlopen(self.base + probe_path, timeout=2):  # noqa: S310
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.3)
        raise RuntimeError(f"gunicorn did not answer within 60s: see {self.log_path}")

    def durability(self) -> dict:
        """The audit durability settings as a worker sees them (bench/durability.py)."""
        import json

        try:
            with urllib.request.urlopen(self.base + "/api/bench/durability/", timeout=5) as r:  # noqa: S310
                return json.loads(r.read())
        except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError) as error:
            return {"error": str(error)}

    def worker_pids(self) -> list[int]:
        """Return the pids of the master's children (its workers), read from /proc."""
        master = self.process.pid if self.process else None
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:  # "pid (comm) state ppid …"; comm may hold spaces and parentheses
                ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue  # a process that just exited
            if ppid == master:
                pids.append(int(stat.parent.name))
        return sorted(pids)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)  # graceful: workers flush and exit
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@dataclass
class WrkResult:
    requests_per_s: float
    requests: int
    non_2xx: int
    errors: str = ""
    latency_p50_ms: float | None = None


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(number) * _UNITS[unit]


def _wrk_command(
    wrk_path: str,
    url: str,
    headers: dict,
    seconds: int,
    script: str | None = None,
    script_args: tuple = (),
    connections: int = 2,
) -> list[str]:
    command = [
        wrk_path, "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", "--latency"
    ]  # fmt: skip
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    if script:
        command += ["-s", script]
    command.append(url)
    if script_args:
        command += ["--", *map(str, script_args)]
    return command


def _parse_wrk(out: str, err: str) -> WrkResult:
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.MULTILINE)
    if not rate or not total:
        raise RuntimeError(f"wrk failed: {out}{err}")
    return WrkResult(
        requests_per_s=float(rate.group(1)),
        requests=int(total.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        errors=errors.group(1) if errors else "",
        latency_p50_ms=_ms(p50.group(1)) if p50 else None,
    )


def wrk(
    wrk_path: str,
    url: str,
    headers: dict,
    seconds: int,
    script: str | None = None,
    script_args: tuple = (),
    connections: int = 2,
) -> WrkResult:
    done = subprocess.run(  # noqa: S603
        _wrk_command(wrk_path, url, headers, seconds, script, script_args, connections),
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    return _parse_wrk(done.stdout, done.stderr)


@dataclass
class CrashRun:
    wrk: WrkResult
    killed_pid: int
    workers_at_stop: int  # the master's workers just before the stop: the killed one replaced
    seconds: float  # from wrk's start to gunicorn's stop


def wrk_with_kill(
    wrk_path: str, server: Gunicorn, url: str, headers: dict, seconds: int
) -> CrashRun:
    """Run wrk on ``url``, SIGKILL one of ``server``'s workers after ``seconds / 2`` (its master
    starts a new one), stop ``server`` gracefully after ``seconds``, then wrk.

    gunicorn stops while wrk still runs, so every request a worker took is answered and counted
    by wrk (a sync worker finishes its request before it exits); the requests that follow are
    refused (wrk's write or connect errors) and write no event. Stopping wrk first would leave
    up to one request per connection answered and audited but never counted. wrk prints its
    summary on SIGINT."""
    process = subprocess.Popen(  # noqa: S603
        _wrk_command(wrk_path, url, headers, seconds + 60),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    started = time.monotonic()
    try:
        time.sleep(seconds / 2)
        workers = server.worker_pids()
        if not workers:
            raise RuntimeError("gunicorn has no worker to kill")
        os.kill(workers[0], signal.SIGKILL)
        time.sleep(max(0.0, started + seconds - time.monotonic()))
        elapsed = time.monotonic() - started
        workers_at_stop = len(server.worker_pids())
        server.stop()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return CrashRun(_parse_wrk(out, err), workers[0], workers_at_stop, elapsed)


@dataclass
class HttpRow:
    name: str
    label: str
    path: str
    headers: dict
    expect_non_2xx: bool = False
    rounds: list[WrkResult] = field(default_factory=list)
    error: str = ""
    script: str | None = None  # a wrk Lua script (the unknown-token row's fresh tokens)
    script_args: tuple = ()

    @property
    def median_rps(self) -> float | None:
        rates = [r.requests_per_s for r in self.rounds]
        return statistics.median(rates) if rates else None

    @property
    def spread_rps(self) -> tuple[float, float] | None:
        rates = [r.requests_per_s for r in self.rounds]
        return (min(rates), max(rates)) if rates else None


def run_rows(
    wrk_path: str,
    base: str,
    rows: list[HttpRow],
    *,
    rounds: int,
    seconds: int,
    warmup: int,
    log=print,
) -> None:
    """Warm every row up, then run ``rounds`` interleaved rounds of ``seconds`` per row."""
    live = [row for row in rows if not row.error]
    for row in live:
        wrk(wrk_path, base + row.path, row.headers, warmup, row.script, row.script_args)
    for index in range(rounds):
        started = time.perf_counter()
        order = live[index % len(live) :] + live[: index % len(live)] if live else []
        for row in order:
            result = wrk(
                wrk_path, base + row.path, row.headers, seconds, row.script, row.script_args
            )
            row.rounds.append(result)
            if result.non_2xx and not row.expect_non_2xx:
                row.error = f"{result.non_2xx} non-2xx responses in round {index + 1}"
        log(f"  round {index + 1}/{rounds}: {time.perf_counter() - started:.0f}s")


def paired_ratio(a: HttpRow, b: HttpRow) -> float | None:
    ratios = [
        x.requests_per_s / y.requests_per_s
        for x, y in zip(a.rounds, b.rounds, strict=False)
        if y.requests_per_s
    ]
    return statistics.median(ratios) if ratios else None
