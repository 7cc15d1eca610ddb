"""Tables for the terminal, targets with pass/fail, and bench/RESULTS.md."""

import importlib.metadata
import os
import platform
import re
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
            rows.append([name, r["label"], r["error"][:90], "", "", "", "", "", ""])
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
    ]
    return _table(header, rows)


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
            rows.append([name, r["label"], r["error"][:90] or "—", "", "", "", "", ""])
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
    """The hard-crash table: one row per KEYWARD_AUDIT_REQUEST_EVENTS mode."""
    rows = []
    for mode, r in res["modes"].items():
        if r["lost"] is None:
            rows.append([mode, r["error"][:90] or "—", "", "", "", "", ""])
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
            ]
        )
    header = [
        "KEYWARD_AUDIT_REQUEST_EVENTS",
        "2xx seen by wrk",
        "api.request events",
        "lost",
        "loss window (ms of one worker's traffic)",
        "req/s per worker",
        "wrk socket errors",
    ]
    return (
        _table(header, rows)
        + f"\n\nKEYWARD_AUDIT_FLUSH_MS = {res['flush_ms']}. wrk on {res['path']} for "
        f"{res['seconds']}s, one of the 2 workers SIGKILLed halfway, then gunicorn stopped "
        "gracefully before wrk (wrk's write and connect errors come after that stop). Loss "
        "window = lost ÷ (req/s ÷ 2 workers) × 1000. More events than 2xx responses: a request "
        "the killed worker had written but not answered."
    )


def _small_big_table(rows: dict, small: str, big: str) -> str:
    out = []
    for name, r in rows.items():
        if r["error"]:
            out.append([name, r["error"][:90], "", "", "", ""])
            continue
        ratios = r.get("ratios") or []
        spread = f"{min(ratios):.2f}–{max(ratios):.2f}" if ratios else "—"
        out.append(
            [
                name,
                r["label"],
                _f(r["small"]["median_ms"]),
                _f(r["big"]["median_ms"]),
                _f(r["ratio"], "{:.2f}×"),
                spread,
            ]
        )
    header = ["row", "what", f"ms at {small}", f"ms at {big}", "big ÷ small (paired)",
              "per-round ratios"]  # fmt: skip
    return _table(header, out)


def scale_text(res: dict) -> str:
    out = []
    keys = res.get("keys")
    if keys:
        c = keys["counts"]
        out.append(f"Key table: {c['small']:,} vs {c['big']:,} rows, interleaved:")
        out.append(_small_big_table(keys["rows"], f"{c['small']:,}", f"{c['big']:,}"))
    pages = res.get("audit_pages")
    if pages:
        c = pages["counts"]
        small, big = c.get("small", (0, 0)), c.get("big", (0, 0))
        out += [
            "",
            f"Audit pages: the audit tenant's events {small[0]:,} vs {big[0]:,} (whole table "
            f"{small[1]:,} vs {big[1]:,}), interleaved:",
            _small_big_table(pages["rows"], f"{small[0]:,}", f"{big[0]:,}"),
        ]
        for name, r in pages["rows"].items():
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
            f"Seal/verify over {seal['events']:,} events: read (ORM values) {m['read']:.1f}s, "
            f"raw read {m.get('raw_read', 0):.1f}s, audit_seal {m['seal']:.1f}s "
            f"({seal['seal_over_read']:.2f}× read), audit_verify {m['verify']:.1f}s "
            f"({seal['verify_over_read']:.2f}× read); seal + verify = "
            f"{seal['seal_plus_verify_over_read']:.2f}× read"
        )
    return "\n".join(out)


def targets(results: dict) -> list[dict]:
    """Each target of issue 6 with its figure and pass / FAIL / n/a."""
    out = []

    def add(name, figure, target, ok, note=""):
        status = "n/a" if ok is None else ("pass" if ok else "FAIL")
        out.append(
            {"target": name, "figure": figure, "goal": target, "status": status, "note": note}
        )

    inproc = results.get("inprocess", {}).get("rows", {})
    http = results.get("http", {}).get("rows", {})

    def ip(row, key):
        r = inproc.get(row)
        return None if not r or r["error"] else r[key]

    def hp(row, key):
        r = http.get(row)
        return None if not r or r["median_rps"] is None else r[key]

    v = ip("auth", "added_vs_drf_token")
    add(
        "auth: in-process added cost ÷ DRF TokenAuthentication's",
        _f(v, "{:.2f}×"),
        "≤ 0.8×",
        None if v is None else v <= 0.8,
        f"{_f(ip('auth', 'added_ms'))} ms vs {_f(ip('drf_token', 'added_ms'))} ms",
    )
    v = hp("auth", "vs_drf_token")
    add(
        "auth: HTTP req/s ÷ DRF TokenAuthentication's",
        _f(v, "{:.2f}×"),
        "≥ 1.1×",
        None if v is None else v >= 1.1,
    )
    v = hp("full", "vs_drf_token")
    add(
        "full: HTTP req/s ÷ DRF TokenAuthentication's",
        _f(v, "{:.2f}×"),
        "≥ 1.0×",
        None if v is None else v >= 1.0,
    )
    v = hp("full", "vs_knox")
    add("full: HTTP req/s ÷ knox's", _f(v, "{:.2f}×"), "≥ 1.35×", None if v is None else v >= 1.35)
    q = ip("malformed", "queries")
    add(
        "malformed token: SQL queries",
        "—" if q is None else str(len(q)),
        "0",
        None if q is None else len(q) == 0,
    )
    v = ip("malformed", "vs_baseline")
    add(
        "malformed token: in-process time ÷ baseline's",
        _f(v, "{:.2f}×"),
        "≤ 1.1×",
        None if v is None else v <= 1.1,
    )
    v = hp("malformed", "vs_baseline")
    add(
        "malformed token: HTTP req/s ÷ baseline's",
        _f(v, "{:.2f}×"),
        "≥ 1/1.1 = 0.91×",
        None if v is None else v >= 1 / 1.1,
    )

    scale = results.get("scale", {})
    keys = scale.get("keys")
    if keys:
        c = keys["counts"]
        for name, r in keys["rows"].items():
            if name == "drf_token":
                continue  # the control
            label = f"keys {c['big']:,} vs {c['small']:,}: {name}"
            if r["error"] or r["ratio"] is None:
                add(label, "—", "≤ 1.1×", None, r["error"][:80])
                continue
            control = keys["rows"].get("drf_token", {}).get("ratio")
            add(
                label,
                f"{r['ratio']:.2f}×",
                "≤ 1.1×",
                r["ratio"] <= 1.1,
                f"paired; control row (DRF token, other table): {_f(control, '{:.2f}×')}",
            )
    pages = scale.get("audit_pages")
    if pages:
        c = pages["counts"]
        small, big = c.get("small", (0, 0))[0], c.get("big", (0, 0))[0]
        for name, r in pages["rows"].items():
            label = f"audit {name}: {big:,} vs {small:,} events"
            if r["error"] or r["ratio"] is None:
                add(label, "—", "≤ 1.5×", None, r["error"][:80])
                continue
            note = "" if big >= 10_000_000 else "the target is at 10M events"
            add(label, f"{r['ratio']:.2f}×", "≤ 1.5×", r["ratio"] <= 1.5, note)
    csv = scale.get("csv")
    if csv:
        if csv.get("error"):
            add("CSV export: peak memory growth", "—", "≤ 64 MiB", None, "export failed")
        else:
            add(
                f"CSV export of {csv['rows']:,} events: peak RSS growth",
                f"{csv['growth_mib']:.1f} MiB",
                "≤ 64 MiB",
                csv["growth_mib"] <= 64,
            )
    seal = scale.get("seal")
    if seal:
        v = seal["seal_plus_verify_over_read"]
        add(
            f"seal + verify of {seal['events']:,} events ÷ read",
            f"{v:.2f}×",
            "≤ 2×",
            v <= 2,
            f"seal {seal['seal_over_read']:.2f}×, verify {seal['verify_over_read']:.2f}× "
            "a plain ORM read of the same rows",
        )
    return out


def rows_without_numbers(results: dict) -> list[str]:
    """Return "part/row: why" for every row of the parts that ran that has no figure."""
    out = []
    for name, r in results.get("inprocess", {}).get("rows", {}).items():
        if r["median_ms"] is None:
            out.append(f"in-process/{name}: {r['error'][:80]}")
    for name, r in results.get("http", {}).get("rows", {}).items():
        if r["median_rps"] is None:
            out.append(f"http/{name}: {r['error'][:80]}")
    for mode, r in results.get("http", {}).get("crash", {}).get("modes", {}).items():
        if r["lost"] is None:
            out.append(f"http/crash/{mode}: {r['error'][:80]}")
    scale = results.get("scale", {})
    for part in ("keys", "audit_pages"):
        for name, r in scale.get(part, {}).get("rows", {}).items():
            if r.get("ratio") is None:
                out.append(f"scale/{part}/{name}: {r['error'][:80]}")
    if "scale" in results and scale.get("csv", {}).get("error"):
        out.append("scale/csv: failed")
    return out


def targets_table(items: list[dict]) -> str:
    return _table(
        ["target", "figure", "goal", "status", "note"],
        [[t["target"], t["figure"], t["goal"], t["status"], t["note"]] for t in items],
    )


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
    lines += [
        "## Targets (issue 6)",
        "",
        targets_table(results.get("targets", [])),
        "",
        "How each figure is made (details in `bench/README.md`): in-process ratios are medians of "
        "per-round paired ratios of interleaved rows; HTTP ratios likewise over wrk rounds; the "
        "scale ratios compare a small and a big version of the same table swapped under its name "
        "between interleaved blocks, with an unaffected control row beside them. The seal target "
        "is read literally, (seal time + verify time) ÷ the time of a plain ORM read of the same "
        "rows; the note gives each on its own.",
        "",
    ]
    if "inprocess" in results:
        res = results["inprocess"]
        c = results["config"]
        lines += [
            "## In-process (Django test client, full middleware)",
            "",
            f"{c['rounds']} interleaved rounds × {c['requests']} requests per row, after "
            f"{c['warmup']} warm-up requests; {res['seconds']:.0f}s. Added = row median − "
            "baseline median; ratios are medians of per-round paired ratios.",
            "",
            inprocess_table(res),
            "",
            "Issue 6's reference figures: "
            + "; ".join(
                f"{k}: {a}, added {b}, HTTP {c_}" for k, (a, b, c_) in ISSUE_REFERENCE.items()
            )
            + ".",
            "",
            "### SQL per request (one request of each row, after warm-up)",
            "",
            queries_text(res, markdown=True),
            "",
        ]
    profiles = results.get("profiles") or {}
    if profiles:
        lines += [
            "### Where the time goes (cProfile, in-process)",
            "",
            f"{results['config']['profile_requests']} requests per row under cProfile (which "
            "inflates Python-heavy parts): a breakdown by layer, and for `full` the top entries. "
            "Full listings: `bench/.results/profile-<row>.txt`.",
            "",
        ]
        for name, text in profiles.items():
            head = profile_head(text, 70) if name == "full" else text.split("\n\n")[0]
            lines += ["```", head, "```", ""]
    if "http" in results:
        c = results["config"]
        lines += [
            "## HTTP (gunicorn, 2 sync workers; wrk -t2 -c2)",
            "",
            f"{c['http_rounds']} interleaved rounds × {c['http_seconds']}s per row after a "
            f"{c['http_warmup']}s warm-up per row; {results['http']['seconds']:.0f}s.",
            "",
            http_table(results["http"]),
            "",
        ]
    if "crash" in results.get("http", {}):
        lines += [
            "## Hard crash of a worker",
            "",
            "What a SIGKILL (or the OOM killer) costs the batched audit writer: the `full` row "
            "under wrk, one gunicorn worker killed halfway, the rest stopped gracefully; the 2xx "
            "responses wrk saw against the `api.request` events in the table.",
            "",
            crash_text(results["http"]["crash"]),
            "",
        ]
    if "scale" in results:
        lines += [
            "## Scale rows",
            "",
            f"{results['scale']['seconds'] / 60:.1f} min, seeding included.",
            "",
            scale_text(results["scale"]),
            "",
        ]
    return "\n".join(lines)
