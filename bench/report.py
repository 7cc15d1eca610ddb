"""Tables for the terminal, targets with pass/fail, and bench/RESULTS.md."""

import importlib.metadata
import os
import platform
import re
import statistics
import subprocess
import time

# The issue's figures for the ecosystem (issue 6), shown beside ours.
ISSUE_REFERENCE = {
    "baseline": ("0", "0 (whole request ~0.2 ms)", "2.5–2.6×"),
    "drf_token": ("1 SELECT", "~0.8–0.9 ms", "1.00×"),
    "knox": ("2 SELECT", "~1.25–1.45 ms", "0.75×"),
    "api_key": ("1 SELECT", "~0.6–0.65 ms", "1.2×"),
}


def machine() -> dict:
    cpu = ""
    try:
        for line in open("/proc/cpuinfo").read().splitlines():  # noqa: SIM115
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kib = int(re.search(r"MemTotal:\s+(\d+)", open("/proc/meminfo").read()).group(1))  # noqa: SIM115
    except (OSError, AttributeError):
        mem_kib = 0
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "loadavg_at_start": os.getloadavg(),
    }


def _dist(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def versions() -> dict:
    from django.conf import settings
    from django.core.cache import cache
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        postgres = cursor.fetchone()[0]
    redis_version = ""
    try:
        client = cache._cache.get_client()  # django.core.cache.backends.redis
        redis_version = client.info("server").get("redis_version", "")
    except Exception:  # noqa: BLE001 - informational only
        redis_version = "unknown"
    wrk = ""
    try:
        done = subprocess.run(["wrk", "-v"], capture_output=True, text=True)  # noqa: S607
        wrk = " ".join((done.stdout + done.stderr).split()[1:2])  # "wrk 4.1.0-… [epoll] …"
    except OSError:
        pass
    return {
        "python": platform.python_version(),
        "django": _dist("Django"),
        "djangorestframework": _dist("djangorestframework"),
        "postgresql": postgres,
        "django-rest-knox": _dist("django-rest-knox"),
        "djangorestframework-api-key": _dist("djangorestframework-api-key"),
        "gunicorn": _dist("gunicorn"),
        "psycopg": _dist("psycopg"),
        "redis-py": _dist("redis"),
        "redis-server": redis_version,
        "wrk": wrk,
        "cache": settings.CACHES["default"]["BACKEND"],
    }


def _f(value, fmt="{:.3f}", none="—") -> str:
    return none if value is None else fmt.format(value)


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def inprocess_table(res: dict) -> str:
    rows = []
    for name, r in res["rows"].items():
        if r["error"]:
            rows.append([name, r["label"], r["error"][:90], "", "", "", "", "", "", ""])
            continue
        spread = r["spread_ms"]
        rows.append(
            [
                name,
                r["label"],
                _f(r["median_ms"]),
                f"{spread[0]:.3f}–{spread[1]:.3f}" if spread else "—",
                _f(r["added_ms"]),
                _f(r["added_vs_drf_token"], "{:.2f}×"),
                _f(r["vs_baseline"], "{:.2f}×"),
                str(len(r["queries"])) + (f" ({r['bad_status']} bad)" if r["bad_status"] else ""),
                _f(r.get("audit_events_per_request"), "{:.2f}"),
                _durability_cell(name, res),
            ]
        )
    header = [
        "row",
        "what",
        "median ms",
        "spread (round medians)",
        "added ms",
        "added ÷ DRF token's (paired)",
        "÷ baseline (paired)",
        "SQL/request (this thread)",
        "audit events/request",
        "durability of its event",
    ]
    return _table(header, rows)


def _durability_cell(name: str, res: dict) -> str:
    """The durability of a row's request event, for the rows that write one (in-process: those
    that wrote an event per request; HTTP: the rows the in-process part found so)."""
    row = res["rows"].get(name, {})
    events = row.get("audit_events_per_request")
    audited = res.get("audited_rows")
    if (events is not None and events >= 0.5) or (audited and name in audited):
        return res.get("durability") or "unknown"
    if name == "unknown":
        return "no event per request (counted in-process)" if events == 0 else ""
    return ""


def queries_text(res: dict, markdown: bool = False) -> str:
    out = []
    for name, r in res["rows"].items():
        if r["error"]:
            continue
        out.append(f"{name}: {len(r['queries'])} quer{'y' if len(r['queries']) == 1 else 'ies'}")
        for sql in r["queries"]:
            out.append(f"    {sql}")
    text = "\n".join(out)
    return f"```\n{text}\n```" if markdown else text


def profile_head(text: str, lines: int = 45) -> str:
    return "\n".join(text.splitlines()[:lines])


def http_table(res: dict) -> str:
    rows = []
    for name, r in res["rows"].items():
        if r["median_rps"] is None:
            rows.append([name, r["label"], r["error"][:90] or "—", "", "", "", "", "", ""])
            continue
        spread = r["spread_rps"]
        p50 = [x for x in r["p50_ms"] if x is not None]
        rows.append(
            [
                name,
                r["label"],
                f"{r['median_rps']:.0f}",
                f"{spread[0]:.0f}–{spread[1]:.0f}",
                _f(r["vs_drf_token"], "{:.2f}×"),
                _f(r["vs_knox"], "{:.2f}×"),
                _f(sorted(p50)[len(p50) // 2] if p50 else None, "{:.2f}"),
                f"{r['non_2xx']}" + (f" ({r['error']})" if r["error"] else ""),
                _durability_cell(name, res),
            ]
        )
    header = [
        "row",
        "what",
        "req/s (median)",
        "spread",
        "÷ DRF token (paired)",
        "÷ knox",
        "p50 latency ms",
        "non-2xx",
        "durability of its event",
    ]
    audit = res.get("audit", {})
    note = (
        f"\napi.request events written during the HTTP phase: "
        f"{audit.get('api_request_events_written')} "
        f"(timed requests to audited rows: {audit.get('requests_to_audited_rows_timed')}, "
        "plus their warm-ups)"
    )
    return _table(header, rows) + note


def crash_text(res: dict) -> str:
    """The hard-crash table: one row per durability mode."""
    rows = []
    for mode, r in res["modes"].items():
        if r["lost"] is None:
            rows.append([mode, r["error"][:90] or "—", "", "", "", "", "", ""])
            continue
        lost = str(r["lost"])
        if r["difference"] < 0:
            extra = -r["difference"]
            lost += f" ({extra} event{'s' if extra > 1 else ''} more than 2xx responses)"
        rows.append(
            [
                mode,
                f"{r['answered']:,}",
                f"{r['events']:,}",
                lost,
                _f(r["loss_window_ms"], "{:.1f}"),
                f"{r['per_worker_rps']:.0f}",
                r["socket_errors"] or "none",
                r.get("durability") or "unknown",
            ]
        )
    header = [
        "mode",
        "2xx seen by wrk",
        "api.request events",
        "lost",
        "loss window (ms of one worker's traffic)",
        "req/s per worker",
        "wrk socket errors",
        "durability (as the workers report it)",
    ]
    variables = "; ".join(
        f"{mode}: " + (" ".join(f"{k}={v}" for k, v in r.get("variables", {}).items()) or
                       "the app's defaults")
        for mode, r in res["modes"].items()
    )  # fmt: skip
    return (
        _table(header, rows)
        + f"\n\nModes ({variables}). KEYWARD_AUDIT_FLUSH_MS = {res['flush_ms']}. wrk on "
        f"{res['path']} for {res['seconds']}s, one of the 2 workers SIGKILLed halfway, then "
        "gunicorn stopped gracefully before wrk (wrk's write and connect errors come after that "
        "stop). Loss window = lost ÷ (req/s ÷ 2 workers) × 1000. More events than 2xx "
        "responses: a request the killed worker had recorded but not answered."
    )


def cursor_text(res: dict) -> str:
    """The cursor row: events of the load the poller saw, missed or saw twice."""
    if res.get("expected") is None:
        return f"Cursor row: no figures: {res.get('error', '')[:300]}"
    rows = [
        [
            f"{res['answered']:,} ({res['requests_per_s']:.0f} req/s)",
            f"{res['expected']:,}",
            f"{res['seen']:,} ({_pct(res['seen'], res['expected'])})",
            f"{res['missing']:,}" + (f" (e.g. {res['missing_ids'][:5]})" if res["missing"] else ""),
            f"{res['duplicates']:,}",
            f"{res['polls']:,}" + (f" ({res['poll_errors']} failed)" if res["poll_errors"] else ""),
            _f(res.get("caught_up_s"), "{:.1f} s", "not within the bound"),
            res.get("durability") or "unknown",
        ]
    ]
    header = [
        "2xx of the load",
        "events expected (in the table)",
        "seen",
        "missing",
        "duplicates",
        "polls",
        "caught up after the load",
        "durability",
    ]
    return (
        _table(header, rows)
        + f"\n\nwrk -t2 -c4 on /api/bench/full/ for {res['seconds']}s (the cursor tenant's key) "
        "against 2 gunicorn workers, while a poller follows GET /api/v1/audit-events/?limit=500 "
        "with next_cursor every 0.3 s, then until it has caught up (has_more false and no new "
        "event of the load for 10 polls; at most 30 s). Expected: the tenant's api.request events "
        "of that path written after the load began, read from the table once gunicorn stopped."
    )


def _pct(part, whole) -> str:
    return f"{100 * part / whole:.2f}%" if whole else "—"


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _small_big_table(runs: list[dict], small: str, big: str) -> str:
    """One line per row: ms at each size (median over runs), each run's paired ratio, the
    median of the runs' ratios."""
    out = []
    names = list(runs[0]) if runs else []
    for name in names:
        entries = [run.get(name, {}) for run in runs]
        first = entries[0]
        error = next((e.get("error") for e in entries if e.get("error")), "")
        if error:
            out.append([name, error[:90], "", "", "", ""])
            continue
        ratios = [e.get("ratio") for e in entries]
        out.append(
            [
                name,
                first["label"],
                _f(_median([e["small"]["median_ms"] for e in entries])),
                _f(_median([e["big"]["median_ms"] for e in entries])),
                " · ".join(_f(r, "{:.2f}×") for r in ratios),
                _f(_median(ratios), "{:.2f}×"),
            ]
        )
    header = ["row", "what", f"ms at {small}", f"ms at {big}",
              "big ÷ small, each run (paired)", "median of the runs"]  # fmt: skip
    return _table(header, out)


def scale_text(res: dict) -> str:
    out = []
    keys = res.get("keys")
    if keys and keys.get("runs"):
        c = keys["counts"]
        pool = keys.get("pool", {})
        out.append(
            f"Key table: {c['small']:,} vs {c['big']:,} rows, interleaved; each Keyward request "
            f"picks a random key ({pool.get('small', 0):,} known keys in the small table, "
            f"{pool.get('big', 0):,} spread over the big one):"
        )
        out.append(_small_big_table(keys["runs"], f"{c['small']:,}", f"{c['big']:,}"))
    pages = res.get("audit_pages")
    if pages and pages.get("runs"):
        c = pages["counts"]
        small, big = c.get("small", (0, 0)), c.get("big", (0, 0))
        out += [
            "",
            f"Audit pages: the audit tenant's events {small[0]:,} vs {big[0]:,} (whole table "
            f"{small[1]:,} vs {big[1]:,}), interleaved:",
            _small_big_table(pages["runs"], f"{small[0]:,}", f"{big[0]:,}"),
        ]
        for name, r in pages["runs"][0].items():
            if not r["error"]:
                out.append(f"  {name}: {len(r['big']['queries'])} queries; big: {r['big']['path']}")
    csv = res.get("csv")
    if csv:
        out.append("")
        if csv.get("error"):
            out.append(f"CSV export: failed: {csv['error'][:500]}")
        else:
            out.append(
                f"CSV export: {csv['rows']:,} rows, {csv['bytes'] / 2**20:.0f} MiB in "
                f"{csv['seconds']:.1f}s; RSS {csv['rss_before_mib']:.0f} MiB before, peak "
                f"{csv['peak_rss_mib']:.0f} MiB: growth {csv['growth_mib']:.1f} MiB "
                f"({csv['peak_method']})"
            )
    seal = res.get("seal")
    if seal:
        m = seal["median_s"]
        out.append(
            f"Seal/verify over {seal['events']:,} events (medians of {len(seal['runs'])} runs): "
            f"raw psycopg read {m['read']:.2f}s (text {m['raw_text']:.2f}s, binary "
            f"{m['raw_binary']:.2f}s; a binary COPY, bytes only, {m['copy_binary']:.2f}s), "
            f"audit_seal {m['seal']:.2f}s, audit_verify {m['verify']:.2f}s "
            f"(ok: {seal.get('verified_ok')}); seal + verify ÷ raw read, each run: "
            + " · ".join(f"{r:.2f}×" for r in seal["ratios"])
            + f"; median {seal['ratio']:.2f}×"
        )
    return "\n".join(out)


def unknown_text(results: dict) -> str:
    """The unknown-token row across runs: SQL, audit events, in-process time, HTTP req/s."""
    rows = []
    for run in results.get("runs", []):
        ip = run.get("inprocess", {}).get("rows", {}).get("unknown") or {}
        hp = run.get("http", {}).get("rows", {}).get("unknown") or {}
        if not ip and not hp:
            continue
        rows.append(
            [
                str(run["index"]),
                "—" if ip.get("median_ms") is None else str(len(ip.get("queries", []))),
                _f(ip.get("audit_events_per_request"), "{:.2f}"),
                _f(ip.get("median_ms")),
                _f(ip.get("vs_baseline"), "{:.2f}×"),
                _f(hp.get("median_rps"), "{:.0f}"),
                _f(hp.get("vs_baseline"), "{:.2f}×"),
                _f(hp.get("vs_drf_token"), "{:.2f}×"),
            ]
        )
    header = ["run", "SQL/request", "audit events/request", "in-process ms",
              "÷ baseline (paired)", "HTTP req/s", "÷ baseline (paired)",
              "÷ DRF token (paired)"]  # fmt: skip
    return (
        _table(header, rows)
        + "\n\nEach request sends a new well-formed token with a valid checksum that no key has "
        "(`bench/unknown_token.lua` for wrk). Measured without the address block: the bench "
        "raises KEYWARD_FAILED_AUTH_RATE so that every guess is counted (shared cache), looked up "
        "and refused; with the default rate an address is blocked after its 60th failure in a "
        "minute, and its further refusals are 429s that cost no query (like the malformed row)."
    )


def targets(results: dict) -> list[dict]:
    """Each target (issues 6 and 13): each run's figure, their median, pass / FAIL / n/a on the
    median (on every run for the zero-loss and cursor targets)."""
    out = []
    runs = results.get("runs", [])

    def add(name, values, fmt, goal, ok, note="", figure=None, rule="median"):
        values = list(values)
        median = _median(values)
        if figure is None:
            figure = _f(median, fmt)
        verdict = ok(values, median)
        status = "n/a" if verdict is None else ("pass" if verdict else "FAIL")
        out.append(
            {
                "target": name,
                "runs": " · ".join(_f(v, fmt) for v in values) if values else "—",
                "figure": figure,
                "goal": goal,
                "status": status,
                "rule": rule,
                "note": note,
            }
        )

    def on_median(test):
        return lambda values, median: None if median is None else test(median)

    def on_every_run(test):
        return lambda values, median: (
            None if not values or any(v is None for v in values) else all(map(test, values))
        )

    def ip(run, row, key):
        r = run.get("inprocess", {}).get("rows", {}).get(row)
        return None if not r or r["error"] else r[key]

    def hp(run, row, key):
        r = run.get("http", {}).get("rows", {}).get(row)
        return None if not r or r["median_rps"] is None else r[key]

    def durability(part):
        seen = []
        for run in runs:
            text = run.get(part, {}).get("durability")
            if text and text not in seen:
                seen.append(text)
        return "event " + " / ".join(seen) if seen else ""

    http_durability = durability("http")
    add(
        "auth: in-process added cost ÷ DRF TokenAuthentication's",
        [ip(run, "auth", "added_vs_drf_token") for run in runs],
        "{:.2f}×",
        "≤ 0.8×",
        on_median(lambda v: v <= 0.8),
    )
    add(
        "auth: HTTP req/s ÷ DRF TokenAuthentication's",
        [hp(run, "auth", "vs_drf_token") for run in runs],
        "{:.2f}×",
        "≥ 1.1×",
        on_median(lambda v: v >= 1.1),
    )
    add(
        "full: HTTP req/s ÷ DRF TokenAuthentication's (unaudited)",
        [hp(run, "full", "vs_drf_token") for run in runs],
        "{:.2f}×",
        "≥ 1.0×",
        on_median(lambda v: v >= 1.0),
        http_durability,
    )
    add(
        "full: HTTP req/s ÷ knox's",
        [hp(run, "full", "vs_knox") for run in runs],
        "{:.2f}×",
        "≥ 1.35×",
        on_median(lambda v: v >= 1.35),
        http_durability,
    )
    add(
        "whoami (GET /api/v1/whoami/): HTTP req/s ÷ DRF TokenAuthentication's probe",
        [hp(run, "whoami", "vs_drf_token") for run in runs],
        "{:.2f}×",
        "≥ 1.0×",
        on_median(lambda v: v >= 1.0),
        http_durability,
    )
    queries = [ip(run, "malformed", "queries") for run in runs]
    add(
        "malformed token: SQL queries",
        [None if q is None else len(q) for q in queries],
        "{}",
        "0 (every run)",
        on_every_run(lambda v: v == 0),
        rule="every run",
    )
    add(
        "malformed token: in-process time ÷ baseline's",
        [ip(run, "malformed", "vs_baseline") for run in runs],
        "{:.2f}×",
        "≤ 1.1×",
        on_median(lambda v: v <= 1.1),
    )
    add(
        "malformed token: HTTP req/s ÷ baseline's",
        [hp(run, "malformed", "vs_baseline") for run in runs],
        "{:.2f}×",
        "≥ 1/1.1 = 0.91×",
        on_median(lambda v: v >= 1 / 1.1),
    )
    crashes = [run.get("http", {}).get("crash", {}).get("modes", {}).get("default") for run in runs]
    crash_ok = [c for c in crashes if c and c.get("lost") is not None]
    add(
        "hard crash (SIGKILL of a worker under load): api.request events lost among 2xx sent",
        [None if not c or c.get("lost") is None else c["lost"] for c in crashes],
        "{}",
        "0 (every run)",
        on_every_run(lambda v: v == 0),
        "; ".join(
            f"run {i + 1}: {c['answered']:,} 2xx, {c['events']:,} events"
            for i, c in enumerate(crashes)
            if c and c.get("lost") is not None
        )
        + (f"; {crash_ok[0].get('durability')}" if crash_ok else ""),
        rule="every run",
    )
    cursors = [run.get("http", {}).get("cursor") for run in runs]

    def cursor_share(c):
        if not c or c.get("expected") is None or not c["expected"]:
            return None
        return 100 * c["seen"] / c["expected"]

    add(
        "cursor under load: share of the load's events the poller saw",
        [cursor_share(c) for c in cursors],
        "{:.2f}%",
        "100% (every run)",
        on_every_run(lambda v: v == 100),
        "; ".join(
            f"run {i + 1}: {c['seen']:,} of {c['expected']:,}, {c['missing']} missing"
            for i, c in enumerate(cursors)
            if c and c.get("expected") is not None
        ),
        rule="every run",
    )
    add(
        "cursor under load: events the poller saw twice",
        [None if not c or c.get("expected") is None else c["duplicates"] for c in cursors],
        "{}",
        "0 (every run)",
        on_every_run(lambda v: v == 0),
        rule="every run",
    )

    scale = results.get("scale", {})
    keys = scale.get("keys")
    if keys and keys.get("runs"):
        c = keys["counts"]
        control = _median([r.get("drf_token", {}).get("ratio") for r in keys["runs"]])
        for name in keys["runs"][0]:
            if name == "drf_token":
                continue  # the control
            entries = [r.get(name, {}) for r in keys["runs"]]
            error = next((e.get("error") for e in entries if e.get("error")), "")
            add(
                f"keys {c['big']:,} vs {c['small']:,}, a random key per request: {name}",
                [None if error else e.get("ratio") for e in entries],
                "{:.2f}×",
                "≤ 1.1×",
                on_median(lambda v: v <= 1.1),
                error[:80]
                or f"paired; control row (DRF token, other table): {_f(control, '{:.2f}×')}",
            )
    pages = scale.get("audit_pages")
    if pages and pages.get("runs"):
        c = pages["counts"]
        small, big = c.get("small", (0, 0))[0], c.get("big", (0, 0))[0]
        for name in pages["runs"][0]:
            entries = [r.get(name, {}) for r in pages["runs"]]
            error = next((e.get("error") for e in entries if e.get("error")), "")
            note = "" if big >= 10_000_000 else "the target is at 10M events"
            add(
                f"audit {name}: {big:,} vs {small:,} events",
                [None if error else e.get("ratio") for e in entries],
                "{:.2f}×",
                "≤ 1.5×",
                on_median(lambda v: v <= 1.5),
                error[:80] or note,
            )
    csv = scale.get("csv")
    if csv:
        if csv.get("error"):
            add("CSV export: peak memory growth", [None], "{}", "≤ 64 MiB",
                lambda values, median: None, "export failed")  # fmt: skip
        else:
            add(
                f"CSV export of {csv['rows']:,} events: peak RSS growth",
                [csv["growth_mib"]],
                "{:.1f} MiB",
                "≤ 64 MiB",
                on_median(lambda v: v <= 64),
                "one run",
            )
    seal = scale.get("seal")
    if seal:
        m = seal["median_s"]
        add(
            f"seal + verify of {seal['events']:,} events ÷ a raw psycopg read of the same rows",
            seal["ratios"],
            "{:.2f}×",
            "≤ 2×",
            on_median(lambda v: v <= 2),
            f"medians: seal {m['seal']:.2f}s, verify {m['verify']:.2f}s, raw read "
            f"{m['read']:.2f}s (fetchall, text {m['raw_text']:.2f}s / binary "
            f"{m['raw_binary']:.2f}s); verified ok: {seal.get('verified_ok')}",
        )
    return out


def rows_without_numbers(results: dict) -> list[str]:
    """Return "part/row: why" for every row of the parts that ran that has no figure."""
    out = []
    for run in results.get("runs", []):
        tag = f"run {run['index']}"
        for name, r in run.get("inprocess", {}).get("rows", {}).items():
            if r["median_ms"] is None:
                out.append(f"{tag}/in-process/{name}: {r['error'][:80]}")
        http = run.get("http", {})
        for name, r in http.get("rows", {}).items():
            if r["median_rps"] is None:
                out.append(f"{tag}/http/{name}: {r['error'][:80]}")
        for mode, r in http.get("crash", {}).get("modes", {}).items():
            if r["lost"] is None:
                out.append(f"{tag}/http/crash/{mode}: {r['error'][:80]}")
        if "rows" in http and "full" in http["rows"] and http["rows"]["full"]["median_rps"]:
            cursor = http.get("cursor") or {}
            if not cursor.get("expected"):
                out.append(f"{tag}/http/cursor: {cursor.get('error', 'no events')[:80]}")
    scale = results.get("scale", {})
    for part in ("keys", "audit_pages"):
        for index, run in enumerate(scale.get(part, {}).get("runs", [])):
            for name, r in run.items():
                if r.get("ratio") is None:
                    out.append(f"scale/{part}/run {index + 1}/{name}: {r['error'][:80]}")
    if "scale" in results and scale.get("csv", {}).get("error"):
        out.append("scale/csv: failed")
    return out


def targets_table(items: list[dict]) -> str:
    return _table(
        ["target", "each run", "median", "goal", "status", "note"],
        [[t["target"], t["runs"], t["figure"], t["goal"], t["status"], t["note"]] for t in items],
    )


def runs_table(results: dict) -> str:
    rows = []
    for run in results.get("runs", []):
        rows.append(
            [
                str(run["index"]),
                ", ".join(f"{x:.2f}" for x in run.get("loadavg_at_start", ())),
                ", ".join(f"{x:.2f}" for x in run.get("loadavg_at_end", ())),
                f"{run.get('seconds', 0):.0f}s",
            ]
        )
    return _table(["run", "load average at start (1, 5, 15 min)", "at end", "duration"], rows)


def markdown(results: dict) -> str:
    m, v = results.get("machine", {}), results.get("versions", {})
    date = results.get("date") or time.strftime("%Y-%m-%d %H:%M %Z")
    lines = [
        "# Keyward bench results",
        "",
        f"Written by `bench/run.py` on {date}, mode "
        f"`{results['mode']}` (`bench/run.py {' '.join(results.get('argv', []))}`), "
        f"{results.get('seconds', 0) / 60:.1f} min in all. Database: {results.get('database')}.",
        "",
        f"Machine: {m.get('nproc')} CPUs (`nproc`), {m.get('cpu')}, {m.get('ram_gib')} GiB RAM, "
        f"Linux {m.get('kernel')}; load average (1, 5, 15 min) at start "
        f"{', '.join(f'{x:.2f}' for x in m.get('loadavg_at_start', ()))}, at end "
        f"{', '.join(f'{x:.2f}' for x in m.get('loadavg_at_end', ()))} (a shared machine: "
        "absolute figures drift, the interleaved ratios are what counts).",
        "",
        "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".",
        "",
    ]
    for part, error in (results.get("errors") or {}).items():
        lines += [f"**The {part} part failed:**", "", "```", error.strip()[-3000:], "```", ""]
    if results.get("drf_defaults_fallback"):
        lines += [
            f"**Keyward's REST_FRAMEWORK defaults did not import** "
            f"({results['drf_defaults_fallback']}); DRF's defaults were used for "
            f"{', '.join(results.get('fallback_settings', []))}.",
            "",
        ]
    runs = results.get("runs", [])
    c = results["config"]
    lines += [
        "## Targets (issues 6 and 13)",
        "",
        f"Every target is read on the median of {len(runs)} complete runs' figures (each run's "
        "figure is itself a median of interleaved, paired rounds); the zero-loss and cursor "
        "targets must hold in every run. Each audited row's note says when its request event "
        "is durable.",
        "",
        targets_table(results.get("targets", [])),
        "",
        "How each figure is made (details in `bench/README.md`): in-process ratios are medians of "
        "per-round paired ratios of interleaved rows; HTTP ratios likewise over wrk rounds; the "
        "scale ratios compare a small and a big version of the same table swapped under its name "
        "between interleaved blocks, with an unaffected control row beside them. The seal target "
        "is (seal time + verify time) ÷ the time of a raw psycopg read (fetchall) of the same "
        "rows.",
        "",
        "## Runs",
        "",
        runs_table(results),
        "",
    ]
    if any("inprocess" in run or "http" in run for run in runs):
        lines += [
            "## Unknown well-formed tokens (what a guesser sends)",
            "",
            unknown_text(results),
            "",
        ]
    for run in runs:
        index = run["index"]
        if "inprocess" in run:
            res = run["inprocess"]
            lines += [
                f"## Run {index}: in-process (Django test client, full middleware)",
                "",
                f"{c['rounds']} interleaved rounds × {c['requests']} requests per row, after "
                f"{c['warmup']} warm-up requests; {res['seconds']:.0f}s. Added = row median − "
                "baseline median; ratios are medians of per-round paired ratios.",
                "",
                inprocess_table(res),
                "",
            ]
            if index == 1:
                lines += [
                    "Issue 6's reference figures: "
                    + "; ".join(
                        f"{k}: {a}, added {b}, HTTP {c_}"
                        for k, (a, b, c_) in ISSUE_REFERENCE.items()
                    )
                    + ".",
                    "",
                    "### SQL per request (one request of each row, after warm-up)",
                    "",
                    queries_text(res, markdown=True),
                    "",
                ]
        if "http" in run:
            lines += [
                f"## Run {index}: HTTP (gunicorn, 2 sync workers; wrk -t2 -c2)",
                "",
                f"{c['http_rounds']} interleaved rounds × {c['http_seconds']}s per row after a "
                f"{c['http_warmup']}s warm-up per row; {run['http']['seconds']:.0f}s.",
                "",
                http_table(run["http"]),
                "",
            ]
        if "crash" in run.get("http", {}):
            lines += [
                f"### Run {index}: hard crash of a worker",
                "",
                "The `full` row under wrk, one gunicorn worker SIGKILLed halfway, the rest "
                "stopped gracefully; the 2xx responses wrk saw against the `api.request` events "
                "in the table.",
                "",
                crash_text(run["http"]["crash"]),
                "",
            ]
        if "cursor" in run.get("http", {}):
            lines += [
                f"### Run {index}: the audit cursor under load",
                "",
                cursor_text(run["http"]["cursor"]),
                "",
            ]
    profiles = results.get("profiles") or {}
    if profiles:
        lines += [
            "## Where the time goes (cProfile, in-process, run 1)",
            "",
            f"{results['config']['profile_requests']} requests per row under cProfile (which "
            "inflates Python-heavy parts): a breakdown by layer, and for `full` the top entries. "
            "Full listings: `bench/.results/profile-<row>.txt`.",
            "",
        ]
        for name, text in profiles.items():
            head = profile_head(text, 70) if name == "full" else text.split("\n\n")[0]
            lines += ["```", head, "```", ""]
    if "scale" in results:
        lines += [
            "## Scale rows",
            "",
            f"{results['scale']['seconds'] / 60:.1f} min, seeding included; each ratio measured "
            f"{c.get('runs', 1)} times (runs).",
            "",
            scale_text(results["scale"]),
            "",
        ]
    return "\n".join(lines)
