"""Run Keyward's benchmarks: ``make bench`` (see bench/README.md).

    .venv/bin/python bench/run.py            # everything, 3 runs: in-process, HTTP, scale (~20 min)
    .venv/bin/python bench/run.py --quick    # smoke run of every row at small sizes (< 2 min)
    .venv/bin/python bench/run.py --scale    # only the scale rows, full size (~8 min)
    .venv/bin/python bench/run.py --no-scale # only the in-process and HTTP rows (~11 min)

A throwaway PostgreSQL cluster is created (or DATABASE_URL used), seeded, measured and removed.
"""

import argparse
import atexit
import cProfile
import functools
import importlib
import importlib.metadata
import io
import json
import os
import pstats
import random
import secrets
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# `python bench/run.py` puts bench/ first on sys.path: import from the repository root instead.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(REPO))
os.chdir(REPO)

from bench import BenchError  # noqa: E402

RESULTS_DIR = HERE / ".results"


@dataclass(frozen=True)
class Config:
    mode: str
    runs: int = 3  # complete runs of each part; every target is read on the median of the runs
    rounds: int = 5  # in-process rounds per run
    requests: int = 500  # in-process requests per row per round
    warmup: int = 100
    http_rounds: int = 7  # per run
    http_seconds: int = 2  # wrk takes whole seconds
    http_warmup: int = 1
    crash_seconds: int = 4  # wrk on the full row; one worker is SIGKILLed halfway
    crash_fail_open: bool = True  # also the fail-open mode (for comparison; no target)
    cursor_seconds: int = 8  # wrk on the full row while a poller follows the audit API
    scale_rounds: int = 4  # per run
    key_requests: int = 300  # per row per round, key table rows
    key_pool: int = 1000  # known keys per table version, one picked at random per request
    page_requests: int = 40  # per row per round, audit page rows
    keys_small: int = 1_000  # filler keys made with bulk_create at seeding
    keys_big: int = 1_000_000
    events_small: int = 10_000
    events_big: int = 1_000_000  # CSV export, seal/verify, and the pages
    events_huge: int | None = 10_000_000  # the pages again (--max-events lowers or skips it)
    seal_rounds: int = 3
    profile_requests: int = 1000


MODES = {
    "quick": Config(
        "quick",
        runs=1,
        rounds=3,
        requests=40,
        warmup=20,
        http_rounds=1,
        http_seconds=2,
        http_warmup=1,
        crash_seconds=2,
        crash_fail_open=False,
        cursor_seconds=3,
        scale_rounds=2,
        key_requests=25,
        page_requests=6,
        keys_big=20_000,
        key_pool=200,
        events_big=50_000,
        events_huge=None,
        seal_rounds=1,
        profile_requests=200,
    ),
    "default": Config("default"),
}


def log(message: str = "") -> None:
    print(message, flush=True)


# --- setup ----------------------------------------------------------------------------------


def install_requirements() -> None:
    """Install the competitors pinned in requirements.txt into this venv unless they are."""
    pins = [
        line.split("#")[0].strip().split("==")
        for line in (HERE / "requirements.txt").read_text().splitlines()
        if "==" in line.split("#")[0]
    ]
    missing = []
    for name, version in pins:
        try:
            if importlib.metadata.version(name) != version:
                missing.append(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
    if not missing:
        return
    log(f"Installing {', '.join(missing)}: pip install -r bench/requirements.txt")
    subprocess.run(  # noqa: S603
        [sys.executable, "-m", "pip", "install", "-q", "-r", str(HERE / "requirements.txt")],
        check=True,
    )
    importlib.invalidate_caches()


class Cleanup:
    """Stops what the bench started, in reverse order: on return, exception, signal or exit."""

    def __init__(self):
        self.actions: list = []
        atexit.register(self.run)
        for signum in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, self._signal)

    @staticmethod
    def _signal(signum, frame):
        log(f"bench: {signal.Signals(signum).name}, stopping and cleaning up…")
        raise SystemExit(128 + signum)

    def push(self, action) -> None:
        self.actions.append(action)

    def run(self) -> None:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not
        try:  # interrupt the cleanup
            while self.actions:
                action = self.actions.pop()
                try:
                    action()
                except Exception as error:  # noqa: BLE001
                    log(f"cleanup: {error}")
        finally:
            signal.signal(signal.SIGINT, previous)


def drf_defaults_import(env: dict) -> str:
    """Return "" if DRF's views import with Keyward's REST_FRAMEWORK defaults, else the error."""
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-c", "import django; django.setup(); import rest_framework.views"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    return "" if done.returncode == 0 else done.stderr.strip().splitlines()[-1]


# --- phases ---------------------------------------------------------------------------------

ROWS = [
    # name, label, path, header scheme, expected status
    ("baseline", "no authentication (AllowAny)", "/api/bench/baseline/", None, 200),
    ("drf_token", "DRF TokenAuthentication", "/api/bench/drf_token/", "drf", 200),
    ("knox", "django-rest-knox 5", "/api/bench/knox/", "knox", 200),
    ("api_key", "djangorestframework-api-key 3", "/api/bench/api_key/", "api_key", 200),
    ("auth", "Keyward auth (Bearer + HasScope)", "/api/bench/auth/", "keyward", 200),
    ("full", "Keyward full (+ throttle + audit event)", "/api/bench/full/", "keyward", 200),
    ("whoami", "Keyward GET /api/v1/whoami/", "/api/v1/whoami/", "keyward", 200),
    ("malformed", "Keyward, malformed token → 401", "/api/bench/malformed/", "garbage", 401),
    ("unknown", "Keyward, unknown well-formed token → 401", "/api/bench/unknown/", "unknown", 401),
]
# Rows whose requests write an api.request event, if the in-process part did not count them:
# their figures carry the events' durability.
AUDITED_ROWS = ("full", "whoami")
UNKNOWN_SCRIPT = HERE / "unknown_token.lua"


def headers_for(scheme: str | None, seed) -> dict:
    from bench import seeding

    tokens = {
        None: None,
        "drf": f"Token {seed.drf_token}",
        "knox": f"Token {seed.knox_token}",
        "api_key": f"Api-Key {seed.api_key}",
        "keyward": f"Bearer {seed.keyward_token}",
        "garbage": f"Bearer {seeding.GARBAGE_TOKEN}",
        "unknown": None,  # a fresh token per request: header_source / the wrk script
    }
    value = tokens[scheme]
    return {"Authorization": value} if value else {}


def inprocess_rows(seed, fallback: str) -> list:
    from django.test import Client

    from bench.measure import Row
    from bench.seeding import UnknownTokens

    rows = []
    for name, label, path, scheme, expect in ROWS:
        row = Row(name, label, path, Client(), expect=expect, headers=headers_for(scheme, seed))
        if scheme == "unknown":
            fresh = UnknownTokens()
            row.header_source = lambda fresh=fresh: {"Authorization": f"Bearer {fresh()}"}
        if fallback and name == "whoami":
            row.error = f"not available yet: Keyward's DRF defaults do not import ({fallback})"
        rows.append(row)
    return rows


def audit_events_per_request(row, n: int = 40) -> float:
    """Return how many audit events one request of ``row`` writes (batched writer flushed)."""
    from audit.models import AuditEvent
    from bench.measure import flush_audit_writer

    flush_audit_writer()
    before = AuditEvent.objects.count()
    for _ in range(n):
        row.get()
    flush_audit_writer()
    return (AuditEvent.objects.count() - before) / n


def run_inprocess(config: Config, seed, fallback: str) -> dict:
    from bench import durability, measure

    rows = inprocess_rows(seed, fallback)
    measure.check(rows)
    for row in rows:
        if row.error:
            log(f"  {row.name}: {row.error[:200]}")
    events = {row.name: audit_events_per_request(row) for row in rows if not row.error}
    started = time.perf_counter()
    results = measure.interleave(
        rows, rounds=config.rounds, n=config.requests, warmup=config.warmup, log=log
    )
    elapsed = time.perf_counter() - started
    state = durability.settings_now()
    out = {
        "seconds": elapsed,
        "rows": {},
        "durability_settings": state,
        "durability": durability.describe(state),
    }
    for row in rows:
        result = results[row.name]
        out["rows"][row.name] = {
            "label": row.label,
            "path": row.path,
            "error": result.error,
            "median_ms": result.median_ms,
            "spread_ms": result.spread_ms,
            "round_medians_ms": [t / 1e6 for t in result.round_medians_ns],
            "added_ms": measure.added_ms(results, row.name, "baseline"),
            "added_vs_drf_token": measure.paired_ratio(results, row.name, "drf_token", "baseline"),
            "vs_baseline": measure.paired_ratio(results, row.name, "baseline"),
            "requests": len(result.times_ns),
            "bad_status": result.bad_status,
            "queries": result.queries,
            "audit_events_per_request": events.get(row.name),
        }
    return out


def audited_requests(*, path: str | None = None, after_id: int = 0) -> int:
    """Count the api.request events (of requests to ``path``, with an id above ``after_id``)."""
    from audit.models import AuditEvent

    events = AuditEvent.objects.filter(action="api.request", id__gt=after_id)
    if path:
        events = events.filter(metadata__path=path)
    return events.count()


def last_event_id() -> int:
    from django.db.models import Max

    from audit.models import AuditEvent

    return AuditEvent.objects.aggregate(last=Max("id"))["last"] or 0


PROFILED_ROWS = ("auth", "full", "malformed")


def profile_row(config: Config, seed, name: str) -> str:
    """cProfile ``profile_requests`` requests of row ``name``: a breakdown by layer, then the
    top entries by cumulative and by own time. Returns "" if the row does not answer as it
    should."""
    from django.test import Client

    _, _, path, scheme, expect = next(r for r in ROWS if r[0] == name)
    headers = headers_for(scheme, seed)
    client = Client()
    if client.get(path, headers=headers).status_code != expect:
        return ""
    for _ in range(20):
        client.get(path, headers=headers)
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    for _ in range(config.profile_requests):
        client.get(path, headers=headers)
    profiler.disable()
    wall_ms = (time.perf_counter() - started) / config.profile_requests * 1000
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    text.write(profile_breakdown(stats, config.profile_requests, name, wall_ms))
    stats.strip_dirs()
    text.write(f"\n{config.profile_requests} requests of the {name} row, by cumulative time:\n")
    stats.sort_stats("cumulative").print_stats(30)
    text.write("\nBy own time:\n")
    stats.sort_stats("tottime").print_stats(20)
    return text.getvalue()


# Where a request spends its time: (label, file suffix, function). Entries overlap (the key
# query is inside authentication); each is its cumulative time per request, profiler included.
# (Since Python 3.12 cProfile also sees other threads, such as a background audit writer, which
# can blur the cumulative time of the outermost frames: the whole request is timed by the clock.)
BREAKDOWN = [
    ("DRF dispatch", "rest_framework/views.py", "dispatch"),
    ("authentication (BearerKeyAuthentication)", "keys/authentication.py", "authenticate"),
    ("  failed-auth limit: peek (cache)", "common/ratelimit.py", "peek"),
    ("  failed-auth limit: count (cache)", "common/ratelimit.py", "count"),
    ("  key query + checks", "keys/authentication.py", "_authenticate_token"),
    ("  last_used_at touch (cache add)", "keys/lookup.py", "mark_used"),
    ("permission (HasScope)", "keys/permissions.py", "has_permission"),
    ("throttle (KeyRateThrottle)", "keys/throttling.py", "allow_request"),
    ("audit event (record_api_request)", "api/base.py", "record_api_request"),
    ("  build the event", "audit/services.py", "build_event"),
    ("  hand it to the writer", "audit/writer.py", "submit"),
    ("exception handling (DRF)", "rest_framework/views.py", "handle_exception"),
    ("logging (any logger, formatting + write)", "logging/__init__.py", "handle"),
    ("all SQL: compile (ORM)", "django/db/models/sql/compiler.py", "as_sql"),
    ("all SQL: execute (round trip)", "django/db/backends/utils.py", "_execute"),
    ("all Redis: commands", "redis/client.py", "execute_command"),
    ("all Redis: pipelines", "redis/client.py", "execute"),
    ("sessions middleware (response)", "django/contrib/sessions/middleware.py", "process_response"),
    ("JSON rendering", "rest_framework/renderers.py", "render"),
]


def profile_breakdown(stats: pstats.Stats, requests: int, name: str, wall_ms: float) -> str:
    lines = [
        f"Breakdown per request of the {name} row (cumulative ms, entries overlap):",
        f"  {'whole request, wall clock, under the profiler':<45} {wall_ms:7.3f} ms",
    ]
    for label, suffix, function in BREAKDOWN:
        total = sum(
            value[3]
            for (filename, _, function_name), value in stats.stats.items()
            if function_name == function and filename.endswith(suffix)
        )
        if total:
            lines.append(f"  {label:<45} {total / requests * 1000:7.3f} ms")
    return "\n".join(lines) + "\n"


def run_http(
    config: Config, seed, env: dict, wrk_path: str, cleanup: Cleanup, skip: set, audited: list
) -> dict:
    from bench import durability, httpbench
    from keys import conf as keys_conf

    server = httpbench.Gunicorn(env, RESULTS_DIR / "gunicorn.log", log=log)
    cleanup.push(server.stop)
    server.start("/api/bench/baseline/")
    state = server.durability()
    log(f"  gunicorn (2 sync workers) on {server.base}; audit: {durability.describe(state)}")
    rows = []
    for name, label, path, scheme, expect in ROWS:
        row = httpbench.HttpRow(
            name, label, path, headers_for(scheme, seed), expect_non_2xx=expect >= 300
        )
        if scheme == "unknown":
            prefix = keys_conf.settings.TOKEN_PREFIX
            row.script, row.script_args = str(UNKNOWN_SCRIPT), (prefix, random.randrange(2**31))  # noqa: S311
        if name in skip:
            row.error = "not available (see in-process)"
        rows.append(row)
    before = audited_requests()
    started = time.perf_counter()
    httpbench.run_rows(
        wrk_path,
        server.base,
        rows,
        rounds=config.http_rounds,
        seconds=config.http_seconds,
        warmup=config.http_warmup,
        log=log,
    )
    server.stop()  # graceful: a per-process audit writer flushes on exit
    time.sleep(0.5)
    written = audited_requests() - before
    by_name = {row.name: row for row in rows}
    out = {
        "seconds": time.perf_counter() - started,
        "rows": {},
        "durability_settings": state,
        "durability": durability.describe(state),
    }
    for row in rows:
        out["rows"][row.name] = {
            "label": row.label,
            "error": row.error,
            "median_rps": row.median_rps,
            "spread_rps": row.spread_rps,
            "rounds_rps": [r.requests_per_s for r in row.rounds],
            "requests": sum(r.requests for r in row.rounds),
            "non_2xx": sum(r.non_2xx for r in row.rounds),
            "p50_ms": [r.latency_p50_ms for r in row.rounds],
            "vs_drf_token": httpbench.paired_ratio(row, by_name["drf_token"]),
            "vs_knox": httpbench.paired_ratio(row, by_name["knox"]),
            "vs_baseline": httpbench.paired_ratio(row, by_name["baseline"]),
        }
    out["audited_rows"] = audited
    audited = [n for n in audited if by_name[n].rounds]
    out["audit"] = {
        "api_request_events_written": written,
        "requests_to_audited_rows_timed": sum(out["rows"][n]["requests"] for n in audited),
        "note": "wrk's warm-up requests are not counted in the requests; they are audited too",
    }
    return out


CRASH_PATH = "/api/bench/full/"


# The hard-crash row's modes: the app's defaults (what the target is read on) and, for
# comparison, fail-open (today's batched writer): KEYWARD_* variables for gunicorn's environment.
CRASH_MODES = {
    "default": {},
    "fail_open": {"KEYWARD_AUDIT_FAIL_CLOSED": "false", "KEYWARD_AUDIT_REQUEST_EVENTS": "batched"},
}


def _flush_ms():
    try:
        from audit import conf as audit_conf

        return audit_conf.settings.AUDIT_FLUSH_MS
    except (ImportError, AttributeError):
        return None


def run_crash(config: Config, seed, env: dict, wrk_path: str, cleanup: Cleanup) -> dict:
    """Per durability mode (CRASH_MODES): a fresh gunicorn, wrk on the full row with one worker
    SIGKILLed halfway, a graceful stop (the other worker flushes), then the responses wrk saw
    answered compared with the api.request events written."""
    from bench import durability, httpbench

    headers = headers_for("keyward", seed)
    out = {
        "path": CRASH_PATH,
        "seconds": config.crash_seconds,
        "flush_ms": _flush_ms(),
        "modes": {},
    }
    for mode, variables in CRASH_MODES.items():
        if mode != "default" and not config.crash_fail_open:
            continue
        entry = out["modes"][mode] = {"error": "", "lost": None, "variables": variables}
        server = httpbench.Gunicorn({**env, **variables}, RESULTS_DIR / "gunicorn.log", log=log)
        cleanup.push(server.stop)
        try:
            server.start("/api/bench/baseline/")
            entry["durability_settings"] = state = server.durability()
            entry["durability"] = durability.describe(state)
            after_id = last_event_id()
            run = httpbench.wrk_with_kill(
                wrk_path, server, server.base + CRASH_PATH, headers, config.crash_seconds
            )
            events = audited_requests(path=CRASH_PATH, after_id=after_id)
        except Exception as error:  # noqa: BLE001 - reported as a row without numbers
            server.stop()
            entry["error"] = f"{type(error).__name__}: {error}"
            log(f"  hard crash, {mode}: {entry['error']}")
            continue
        # wrk counts only parsed responses as requests (the killed request's reset is a socket
        # error, counted apart), and "non-2xx" means a status above 399.
        answered = run.wrk.requests - run.wrk.non_2xx
        per_worker_rps = run.wrk.requests / run.seconds / server.workers
        lost = max(answered - events, 0)
        entry.update(
            requests=run.wrk.requests,
            non_2xx=run.wrk.non_2xx,
            socket_errors=run.wrk.errors,
            answered=answered,
            events=events,
            difference=answered - events,
            lost=lost,
            seconds=run.seconds,
            per_worker_rps=per_worker_rps,
            loss_window_ms=lost / per_worker_rps * 1000 if per_worker_rps else None,
            killed_pid=run.killed_pid,
            workers_at_stop=run.workers_at_stop,
        )
    return out


AUDIT_API = "/api/v1/audit-events/"
CURSOR_POLL_S = 0.3
CURSOR_CATCH_UP_S = 30  # at most this long after the load to catch up
CURSOR_QUIET_POLLS = 10  # caught up: has_more false and no new load event for this many polls


class _Poller:
    """Follows GET /api/v1/audit-events/?limit=500&cursor=<next_cursor> as a SIEM would, using
    only ``next_cursor`` and ``has_more`` (the cursor's format is the API's business)."""

    def __init__(self, base: str, token: str):
        self.base, self.headers = base, {"Authorization": f"Bearer {token}"}
        self.cursor: str | None = None
        self.seen: list[int] = []  # every id returned, in order, duplicates included
        self.load_seen = 0  # results whose metadata path is the load's
        self.polls = 0
        self.errors: list[str] = []

    def page(self) -> bool:
        """Fetch one page after the cursor; return has_more."""
        import urllib.error
        import urllib.parse
        import urllib.request

        query = {"limit": 500}
        if self.cursor:
            query["cursor"] = self.cursor
        url = f"{self.base}{AUDIT_API}?{urllib.parse.urlencode(query)}"
        request = urllib.request.Request(url, headers=self.headers)  # noqa: S310
        self.polls += 1
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                body = json.loads(response.read())
        except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError) as error:
            self.errors.append(f"{type(error).__name__}: {error}"[:200])
            return False
        for event in body.get("results", []):
            self.seen.append(event.get("id"))
            if (event.get("metadata") or {}).get("path") == CRASH_PATH:
                self.load_seen += 1
        self.cursor = body.get("next_cursor") or self.cursor
        return bool(body.get("has_more"))


def run_cursor(config: Config, seed, env: dict, wrk_path: str, cleanup: Cleanup) -> dict:
    """The cursor row: wrk (2 threads, 4 connections) on the full row of the cursor tenant for
    ``cursor_seconds`` against 2 gunicorn workers, while a poller follows the audit API with a
    key of the same tenant every 0.3 s, then until it has caught up (bounded). The ids it saw
    are compared with the load's api.request events in the database."""
    import threading

    from audit.models import AuditEvent
    from bench import durability, httpbench

    out: dict = {"seconds": config.cursor_seconds, "error": "", "expected": None}
    server = httpbench.Gunicorn(env, RESULTS_DIR / "gunicorn.log", log=log)
    cleanup.push(server.stop)
    try:
        server.start("/api/bench/baseline/")
        out["durability_settings"] = state = server.durability()
        out["durability"] = durability.describe(state)
        poller = _Poller(server.base, seed.cursor_audit_token)
        deadline = time.monotonic() + 120
        while poller.page() and time.monotonic() < deadline:  # the tenant's history so far
            pass
        if poller.errors:
            raise RuntimeError(f"the audit API fails: {poller.errors[0]}")
        drained = len(poller.seen)
        poller.seen.clear()
        poller.load_seen = 0
        after_id = last_event_id()
        load_done = threading.Event()
        caught_up_at: list[float] = []

        def poll():
            quiet, last_load_seen = 0, 0
            while True:
                started = time.monotonic()
                has_more = poller.page()
                if load_done.is_set():
                    new = poller.load_seen != last_load_seen
                    quiet = 0 if (new or has_more) else quiet + 1
                    if quiet >= CURSOR_QUIET_POLLS:
                        caught_up_at.append(time.monotonic())
                        return
                    if time.monotonic() > load_done.ended + CURSOR_CATCH_UP_S:
                        return
                last_load_seen = poller.load_seen
                if not has_more:
                    time.sleep(max(0.0, CURSOR_POLL_S - (time.monotonic() - started)))

        thread = threading.Thread(target=poll, name="bench-poller", daemon=True)
        thread.start()
        load = httpbench.wrk(
            wrk_path,
            server.base + CRASH_PATH,
            {"Authorization": f"Bearer {seed.cursor_token}"},
            config.cursor_seconds,
            connections=4,
        )
        load_done.ended = time.monotonic()
        load_done.set()
        thread.join(CURSOR_CATCH_UP_S + 30)
        server.stop()  # graceful: a batching writer flushes what it still holds
        time.sleep(0.5)
        expected = set(
            AuditEvent.objects.filter(
                tenant=seed.cursor_tenant,
                action="api.request",
                metadata__path=CRASH_PATH,
                id__gt=after_id,
            ).values_list("id", flat=True)
        )
        seen = set(poller.seen)
        out.update(
            requests=load.requests,
            non_2xx=load.non_2xx,
            requests_per_s=load.requests_per_s,
            answered=load.requests - load.non_2xx,
            drained_before=drained,
            polls=poller.polls,
            poll_errors=len(poller.errors),
            first_poll_error=poller.errors[0] if poller.errors else "",
            expected=len(expected),
            seen=len(expected & seen),
            missing=len(expected - seen),
            missing_ids=sorted(expected - seen)[:20],
            duplicates=len(poller.seen) - len(seen),
            caught_up_s=(caught_up_at[0] - load_done.ended) if caught_up_at else None,
        )
    except Exception as error:  # noqa: BLE001 - reported as a row without numbers
        server.stop()
        out["error"] = f"{type(error).__name__}: {error}"
        log(f"  cursor row: {out['error']}")
    return out


def _small_vs_big(config: Config, make_rows, versions, requests: int) -> dict:
    """Measure the rows of ``make_rows(suffix, setup)`` against the small and the big version
    of a table, interleaved; return per row both figures and the paired big ÷ small ratio."""
    from bench import measure

    rows = []
    for which in ("small", "big"):
        versions.use(which)
        rows += make_rows(f"@{which}", functools.partial(versions.use, which))
    measure.check(rows)
    try:
        results = measure.interleave(
            rows, rounds=config.scale_rounds, n=requests, warmup=10, log=lambda m: None
        )
    finally:
        versions.restore()
    out: dict = {}
    for row in rows:
        name, _, which = row.name.partition("@")
        r = results[row.name]
        entry = out.setdefault(name, {"label": row.label, "error": ""})
        entry["error"] = entry["error"] or r.error
        entry[which] = {
            "path": row.path,
            "median_ms": r.median_ms,
            "spread_ms": r.spread_ms,
            "round_medians_ms": [t / 1e6 for t in r.round_medians_ns],
            "queries": r.queries,
            "bad_status": r.bad_status,
        }
    for name, entry in out.items():
        entry["ratios"] = measure.round_ratios(results, f"{name}@big", f"{name}@small")
        entry["ratio"] = measure.paired_ratio(results, f"{name}@big", f"{name}@small")
    return out


def run_scale(config: Config, seed, env: dict, fallback: str) -> dict:
    """Grow the tables once; measure each scale part ``config.runs`` times (its runs)."""
    from django.test import Client

    from bench import scale, seeding
    from bench.measure import Row

    out: dict = {}
    started = time.perf_counter()

    def elapsed() -> str:
        return f"{time.perf_counter() - started:.0f}s"

    # Keys: the same requests against a key table of 1,000 and of 1,000,000 rows, interleaved,
    # each request with a key picked at random: of the 1,000 filler keys in the small table, of
    # as many known keys spread over the rows grow_keys added in the big one.
    pools: dict = {"small": list(seed.filler_tokens[: config.key_pool])}

    def random_key(pool):
        return lambda: {"Authorization": f"Bearer {random.choice(pool)}"}  # noqa: S311

    def key_rows(suffix, setup):
        pool = pools[suffix[1:]]
        rows = [
            Row("drf_token", "DRF TokenAuthentication (control: another table, one token)",
                "/api/bench/drf_token/", Client(), headers=headers_for("drf", seed)),
            Row("auth", "Keyward auth, a random key per request", "/api/bench/auth/", Client(),
                header_source=random_key(pool)),
            Row("whoami", "Keyward GET /api/v1/whoami/, a random key per request",
                "/api/v1/whoami/", Client(), header_source=random_key(pool)),
            scale.digest_lookup_row(pool),
        ]  # fmt: skip
        for row in rows:
            row.name += suffix
            row.setup = setup
            if fallback and row.name.startswith("whoami"):
                row.error = "not available yet"
        return rows

    def touch_pools():
        """One request per key of each pool: its last-use mark (a cache add and an UPDATE at
        most once a minute per key) is then paid before the timing, alike in both tables."""
        client = Client()
        for which, pool in pools.items():
            keys.use(which)
            for token in pool:
                client.get("/api/bench/auth/", headers={"Authorization": f"Bearer {token}"})
        keys.restore()

    keys = scale.TableVersions("keys_apikey")
    audit = scale.TableVersions("audit_auditevent")
    try:
        keys.freeze()
        pools["big"] = (
            seeding.grow_keys(config.keys_big, sample=len(pools["small"]), log=log)
            or pools["small"]
        )
        out["keys"] = {
            "counts": {"small": keys.count("small"), "big": keys.count("big")},
            "pool": {which: len(pool) for which, pool in pools.items()},
            "runs": [],
        }
        for index in range(config.runs):
            touch_pools()
            out["keys"]["runs"].append(_small_vs_big(config, key_rows, keys, config.key_requests))
            log(f"  keys measured, run {index + 1}/{config.runs} ({elapsed()})")

        # Audit: freeze the table at 10k events of the audit tenant, grow it to 1M (CSV export,
        # seal and verify there), then to 10M, and measure the pages against both versions.
        seeding.prepare_event_series()
        seeding.grow_events(seed, config.events_small, log=log)
        audit.freeze()
        seeding.grow_events(seed, config.events_big, log=log)
        log(f"  CSV export in a separate process… ({elapsed()})")
        out["csv"] = scale.csv_export(env, seed.audit_tenant.slug, log=log)
        out["csv"]["tenant_events"] = seeding.event_counts(seed.audit_tenant)[0]
        log(f"  CSV export: {json.dumps(out['csv'])[:300]}")
        log(f"  seal / verify / raw read… ({elapsed()})")
        out["seal"] = scale.seal_verify(config.runs, log=log)
        if config.events_huge:
            seeding.grow_events(seed, config.events_huge, log=log)
        api_client, portal = Client(), seeding.portal_client(seed.audit_owner)
        api_headers = {"Authorization": f"Bearer {seed.audit_token}"}
        counts = {}

        def page_rows(suffix, setup):
            counts[suffix[1:]] = seeding.event_counts(seed.audit_tenant)
            return scale.audit_page_rows(
                seed, api_client, api_headers, portal, suffix=suffix, setup=setup
            )

        out["audit_pages"] = {"counts": counts, "runs": []}
        for index in range(config.runs):
            out["audit_pages"]["runs"].append(
                _small_vs_big(config, page_rows, audit, config.page_requests)
            )
            log(f"  audit pages measured, run {index + 1}/{config.runs} ({elapsed()})")
    finally:
        keys.restore()
        audit.restore()
    out["seconds"] = time.perf_counter() - started
    return out


# --- main -----------------------------------------------------------------------------------


def _load(run: dict, which: str = "start") -> str:
    return ", ".join(f"{x:.2f}" for x in run.get(f"loadavg_at_{which}", ()))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Keyward's benchmarks (see bench/README.md).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="smoke run, small sizes (< 3 min)")
    parts = parser.add_mutually_exclusive_group()
    parts.add_argument("--scale", action="store_true", help="only the scale rows")
    parts.add_argument("--no-scale", action="store_true", help="skip the scale rows")
    parts.add_argument(
        "--only", action="append", choices=["inprocess", "http", "scale"], help="repeatable"
    )
    parser.add_argument(
        "--max-events",
        type=int,
        help="largest audit table of the page rows (default 10,000,000; 1000000 skips the 10M "
        "stage and its ~2 min of seeding)",
    )
    parser.add_argument("--no-profile", action="store_true", help="skip the cProfiles")
    parser.add_argument(
        "--runs", type=int, help="complete runs of each part (default 3, --quick 1)"
    )
    parser.add_argument("--rounds", type=int, help="in-process rounds per run (default 5)")
    parser.add_argument("--requests", type=int, help="in-process requests per row per round")
    parser.add_argument(
        "--write-md", action="store_true", help="write bench/RESULTS.md even for a partial run"
    )
    parser.add_argument(
        "--strict", action="store_true", help="exit 3 if any row produced no numbers (for CI)"
    )
    args = parser.parse_args(argv)
    parts = set(args.only or ["inprocess", "http", "scale"])
    if args.scale:
        parts = {"scale"}
    if args.no_scale:
        parts -= {"scale"}
    args.parts = parts
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    config = MODES["quick" if args.quick else "default"]
    if args.runs:
        config = replace(config, runs=max(1, args.runs))
    if args.rounds:
        config = replace(config, rounds=args.rounds)
    if args.requests:
        config = replace(config, requests=args.requests)
    if args.max_events is not None:
        big = min(config.events_big, args.max_events)
        huge = args.max_events if args.max_events > big else None
        config = replace(config, events_big=big, events_huge=huge)
    t_start = time.perf_counter()
    RESULTS_DIR.mkdir(exist_ok=True)
    for name in ("app.log", "audit.jsonl", "gunicorn.log"):  # this run's logs only
        (RESULTS_DIR / name).unlink(missing_ok=True)
    install_requirements()

    from bench import httpbench, report
    from bench.cluster import Cluster

    wrk_path = None
    if "http" in args.parts:
        wrk_path = httpbench.ensure_wrk(log=log)
        if wrk_path is None:
            log("wrk is not installed and cannot be installed here: skipping the HTTP rows")
    cleanup = Cleanup()
    results: dict = {
        "mode": config.mode,
        "config": config.__dict__,
        "argv": sys.argv[1:],
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
    }
    try:
        env = dict(os.environ)
        if env.get("DATABASE_URL"):
            log("Using DATABASE_URL (no throwaway cluster): it must be an empty database")
            results["database"] = "DATABASE_URL"
        else:
            cluster = Cluster(log=log)
            cleanup.push(cluster.stop)
            cluster.start()
            env["DATABASE_URL"] = cluster.url
            results["database"] = "throwaway cluster"
        env.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
        env.setdefault("REDIS_URL", "redis://127.0.0.1:6379/1")
        env["DJANGO_SETTINGS_MODULE"] = "bench.settings"
        env["PYTHONPATH"] = str(REPO)
        # Each run gets its own cache namespace on the shared Redis (gunicorn's workers share it).
        env["BENCH_CACHE_PREFIX"] = f"keyward-bench-{os.getpid()}"
        env.pop("BENCH_DRF_FALLBACK", None)
        fallback = drf_defaults_import(env)
        if fallback:
            log(f"Keyward's REST_FRAMEWORK defaults do not import ({fallback}): DRF's instead")
            env["BENCH_DRF_FALLBACK"] = "1"
        results["drf_defaults_fallback"] = fallback
        os.environ.update(env)

        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command

        from bench import seeding

        log("Migrating and collecting static files…")
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        log("Seeding through the product's services…")
        seed = seeding.seed(filler_keys=config.keys_small, log=log)
        results["machine"] = report.machine()
        results["versions"] = report.versions()
        results["fallback_settings"] = list(settings.BENCH_DRF_FALLBACK)

        errors = results["errors"] = {}
        results["runs"] = []

        def phase(name: str, function) -> None:
            """Run one part; a failure is reported and the other parts still run."""
            try:
                function()
            except Exception:  # noqa: BLE001 - report it, go on with the next part
                errors[name] = traceback.format_exc()
                log(f"bench: the {name} part failed:\n{errors[name]}")

        def inprocess(run: dict) -> None:
            log(f"In-process: {config.rounds} rounds × {config.requests} requests per row…")
            run["inprocess"] = run_inprocess(config, seed, fallback)
            log(report.inprocess_table(run["inprocess"]))
            if run["index"] > 1:
                return
            log(report.queries_text(run["inprocess"]))
            if not args.no_profile:
                results["profiles"] = {}
                for name in PROFILED_ROWS:
                    text = profile_row(config, seed, name)
                    if text:
                        results["profiles"][name] = text
                        (RESULTS_DIR / f"profile-{name}.txt").write_text(text)
                        log(report.profile_head(text, 60 if name == "full" else 24))

        def http(run: dict) -> None:
            unavailable = {
                name
                for name, row in run.get("inprocess", {}).get("rows", {}).items()
                if row["error"]
            }
            log(f"HTTP: gunicorn + wrk, {config.http_rounds} rounds × {config.http_seconds}s…")
            rows = run.get("inprocess", {}).get("rows", {})
            audited = [
                name for name, row in rows.items() if (row["audit_events_per_request"] or 0) >= 0.5
            ] if rows else list(AUDITED_ROWS)  # fmt: skip
            run["http"] = run_http(config, seed, env, wrk_path, cleanup, unavailable, audited)
            log(report.http_table(run["http"]))
            if "full" in unavailable:
                return
            log(f"Hard crash: wrk {config.crash_seconds}s on full, one worker SIGKILLed halfway…")
            run["http"]["crash"] = run_crash(config, seed, env, wrk_path, cleanup)
            log(report.crash_text(run["http"]["crash"]))
            log(f"Cursor: wrk {config.cursor_seconds}s on full, a poller on the audit API…")
            run["http"]["cursor"] = run_cursor(config, seed, env, wrk_path, cleanup)
            log(report.cursor_text(run["http"]["cursor"]))

        def scale() -> None:
            log(f"Scale rows ({config.runs} runs of each measurement)…")
            results["scale"] = run_scale(config, seed, env, fallback)
            log(report.scale_text(results["scale"]))

        if "inprocess" in args.parts or wrk_path:
            for index in range(1, config.runs + 1):
                run = {"index": index, "loadavg_at_start": os.getloadavg()}
                started = time.perf_counter()
                log(f"=== Run {index}/{config.runs} (load average {_load(run)}) ===")
                if "inprocess" in args.parts:
                    phase(f"in-process (run {index})", functools.partial(inprocess, run))
                if wrk_path:
                    phase(f"HTTP (run {index})", functools.partial(http, run))
                run["loadavg_at_end"] = os.getloadavg()
                run["seconds"] = time.perf_counter() - started
                results["runs"].append(run)
                log(f"=== Run {index} done in {run['seconds']:.0f}s (load average at end "
                    f"{_load(run, 'end')}) ===")  # fmt: skip
        if "scale" in args.parts:
            phase("scale", scale)
        results["seconds"] = time.perf_counter() - t_start
        results.setdefault("machine", {})["loadavg_at_end"] = os.getloadavg()
        results["targets"] = report.targets(results)
        log(report.targets_table(results["targets"]))
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = RESULTS_DIR / f"bench-{config.mode}-{stamp}.json"
        path.write_text(json.dumps(results, indent=2, default=str))
        log(f"JSON: {path.relative_to(REPO)}")
        complete = (
            args.parts == {"inprocess", "http", "scale"}
            and config.mode != "quick"
            and config.runs >= 3
            and not errors
        )
        if args.write_md or complete:
            (HERE / "RESULTS.md").write_text(report.markdown(results))
            log("Wrote bench/RESULTS.md")
        log(f"Done in {results['seconds'] / 60:.1f} min")
        missing = report.rows_without_numbers(results)
        if missing:
            log("Rows without numbers: " + "; ".join(missing))
        if errors:
            return 1
        return 3 if args.strict and missing else 0
    except BenchError as error:
        log(f"bench: {error}")
        return 2
    finally:
        cleanup.run()


if __name__ == "__main__":
    sys.exit(main())
