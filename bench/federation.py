"""Federation rows: Keyward's JWTs on its own API and in another DRF service, and the token
exchange, against DRF TokenAuthentication, on the same probe view as bench/run.py's rows.

    python -m bench.federation [--rounds 5] [--requests 200] [--http-rounds 3] [--seconds 3]

Production's configuration (bench/settings.py: DEBUG off, PostgreSQL — a throwaway cluster
unless DATABASE_URL is set —, Redis, the real middleware). In-process: Django's test client,
rows interleaved in rounds, medians; the added cost of a row is its median minus the baseline's,
per round, and the ratio is the median of the per-round ratios. HTTP: gunicorn (2 sync workers)
driven by wrk, rows interleaved in rounds (bench/httpbench.py). Writes bench/results/federation.md.

Targets (issue 16): a JWT through Keyward's authentication makes no SQL query to authenticate
and serves ≥ 2.0× DRF TokenAuthentication's req/s; keyward_client's in-process added cost is
≤ 0.3× DRF TokenAuthentication's; the token exchange serves ≥ 1.0× DRF Token's req/s.
"""

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "federation.md"
EXCHANGE_SCRIPT = REPO / "bench" / "federation_exchange.lua"
GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS = "urn:ietf:params:oauth:token-type:access_token"

IN_PROCESS = [
    # name, label, path, header kind
    ("baseline", "no authentication (AllowAny)", "/api/bench/baseline/", None),
    ("drf_token", "DRF TokenAuthentication", "/api/bench/drf_token/", "drf"),
    ("jwt", "Keyward JWT, API v1 classes (+ its api.request event)", "/api/bench/fed/jwt/", "jwt"),
    (
        "jwt_only",
        "Keyward JWT class alone (audited all the same)",
        "/api/bench/fed/jwt_only/",
        "jwt",
    ),
    ("client", "keyward_client in another DRF service", "/api/bench/fed/client/", "client"),
]
HTTP = ["baseline", "drf_token", "jwt", "jwt_only"]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _headers(kind, seed, jwts) -> dict:
    value = {
        None: None,
        "drf": f"Token {seed.drf_token}",
        "jwt": f"Bearer {jwts['keyward']}",
        "client": f"Bearer {jwts['client']}",
    }[kind]
    return {"Authorization": value} if value else {}


def _exchange(key: str, audience: str | None) -> str:
    from django.conf import settings

    from common.request import RequestContext
    from federation.services import token_exchange

    return token_exchange(
        subject_token=key,
        subject_token_type=ACCESS,
        requested_token_type=None,
        scope=None,
        audience=audience,
        issuer=settings.KEYWARD_JWT_ISSUER,
        context=RequestContext(ip="127.0.0.1"),
    ).access_token


def _cold_verification_us(token: str, n: int = 200) -> tuple[float, float]:
    """Median µs of one first-time verification: keyward_client's, Keyward's own."""
    from django.conf import settings
    from keyward_client import drf as client_drf

    from federation import tokens

    verifier = client_drf.verifier()
    client_times, own_times = [], []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        verifier._verify_signature(token)
        client_times.append(time.perf_counter_ns() - t0)
        t0 = time.perf_counter_ns()
        tokens.verify(token, issuer=settings.KEYWARD_JWT_ISSUER, audience=None)
        own_times.append(time.perf_counter_ns() - t0)
    return statistics.median(client_times) / 1e3, statistics.median(own_times) / 1e3


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--http-rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=3)
    args = parser.parse_args(argv)

    from bench.run import Cleanup

    cleanup = Cleanup()
    try:
        env = dict(os.environ)
        if not env.get("DATABASE_URL"):
            from bench.cluster import Cluster

            cluster = Cluster(log=log)
            cleanup.push(cluster.stop)
            cluster.start()
            env["DATABASE_URL"] = cluster.url
        env.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
        env.setdefault("REDIS_URL", "redis://127.0.0.1:6379/1")
        env["DJANGO_SETTINGS_MODULE"] = "bench.federation_settings"
        env["PYTHONPATH"] = str(REPO)
        env["BENCH_CACHE_PREFIX"] = f"keyward-bench-federation-{os.getpid()}"
        os.environ.update(env)
        sys.path.insert(0, str(REPO))
        import django

        django.setup()
        return _run(args, env, cleanup)
    finally:
        cleanup.run()


def _run(args, env: dict, cleanup) -> int:
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client
    from keyward_client import drf as client_drf
    from keyward_client.verify import JWKSCache, KeywardVerifier

    from bench import httpbench, measure, seeding
    from federation import signing

    log("Migrating, seeding…")
    call_command("migrate", interactive=False, verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    seed = seeding.seed(filler_keys=10, log=log)
    jwts = {
        "keyward": _exchange(seed.keyward_token, None),
        "client": _exchange(seed.keyward_token, settings.KEYWARD_CLIENT["AUDIENCE"]),
    }
    # The other service's JWKS, fetched once (from Keyward's own JWKS in this process).
    client_drf._verifier = KeywardVerifier(
        issuer=settings.KEYWARD_CLIENT["ISSUER"],
        audience=settings.KEYWARD_CLIENT["AUDIENCE"],
        jwks=JWKSCache("in-process", fetch=lambda url: signing.jwks()),
    )

    log("In-process rows…")
    rows = [
        measure.Row(name, label, path, Client(), headers=_headers(kind, seed, jwts))
        for name, label, path, kind in IN_PROCESS
    ]
    measure.check(rows)
    for row in rows:
        if row.error:
            log(f"  {row.name}: {row.error[:300]}")
    results = measure.interleave(
        rows, rounds=args.rounds, n=args.requests, warmup=args.warmup, log=log
    )
    cold_client_us, cold_own_us = _cold_verification_us(jwts["client"])

    log("HTTP rows (gunicorn, wrk)…")
    wrk_path = httpbench.ensure_wrk(log)
    http_rows = {}
    if wrk_path:
        body = tempfile.NamedTemporaryFile("w", suffix=".form", delete=False)  # noqa: SIM115
        cleanup.push(lambda: os.unlink(body.name))
        os.chmod(body.name, 0o600)
        body.write(
            urlencode(
                {
                    "grant_type": GRANT,
                    "subject_token": seed.keyward_token,
                    "subject_token_type": ACCESS,
                }
            )
        )
        body.close()
        server = httpbench.Gunicorn(
            env, REPO / "bench" / ".results" / "gunicorn-federation.log", log=log
        )
        cleanup.push(server.stop)
        server.start("/api/bench/baseline/")
        by_name = {row.name: row for row in rows}
        for name in HTTP:
            row = by_name[name]
            http_rows[name] = httpbench.HttpRow(name, row.label, row.path, row.headers)
        http_rows["exchange"] = httpbench.HttpRow(
            "exchange",
            "POST /oauth/token: a key for a JWT (one lookup, one signature, one event)",
            "/oauth/token",
            {},
            script=str(EXCHANGE_SCRIPT),
            script_args=(body.name,),
        )
        httpbench.run_rows(
            wrk_path,
            server.base,
            list(http_rows.values()),
            rounds=args.http_rounds,
            seconds=args.seconds,
            warmup=1,
            log=log,
        )
        server.stop()
    _write(args, rows, results, http_rows, cold_client_us, cold_own_us)
    return 0


def _auth_queries(queries: list[str]) -> list[str]:
    return [q for q in queries if "audit_auditevent" not in q]


def _write(args, rows, results, http_rows, cold_client_us, cold_own_us) -> None:
    from bench import httpbench, measure

    def ratio_text(value, target, at_least: bool) -> tuple[str, str]:
        if value is None:
            return "—", "no figure"
        ok = value >= target if at_least else value <= target
        return f"{value:.2f}×", "met" if ok else "MISSED"

    lines = [
        "# Federation: Keyward's JWTs and the token exchange",
        "",
        f"`python -m bench.federation --rounds {args.rounds} --requests {args.requests} "
        f"--http-rounds {args.http_rounds} --seconds {args.seconds}`, "
        f"{time.strftime('%Y-%m-%d %H:%M %Z')}, on a 2-core machine shared with other work "
        "(figures are noisy; ratios are paired per round). Same probe view as bench/run.py's "
        "rows; in-process through Django's test client (every middleware), HTTP through gunicorn "
        "(2 sync workers) and wrk (2 connections).",
        "",
        "## In-process",
        "",
        "| row | median ms | added ms | added ÷ DRF Token's | queries (authentication) | "
        "queries (all) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        result = results[row.name]
        if result.error or result.median_ms is None:
            lines.append(f"| {row.name}: {row.label} | {result.error[:80] or '—'} | | | | |")
            continue
        added = measure.added_ms(results, row.name, "baseline")
        ratio = measure.paired_ratio(results, row.name, "drf_token", "baseline")
        lines.append(
            f"| {row.name}: {row.label} | {result.median_ms:.3f} | "
            f"{added:.3f} | {'' if ratio is None else f'{ratio:.2f}×'} | "
            f"{len(_auth_queries(result.queries))} | {len(result.queries)} |"
        )
    lines += [
        "",
        f"First verification of a token (signature, claims), median of 200: keyward_client "
        f"{cold_client_us:.0f} µs, Keyward's own {cold_own_us:.0f} µs. Both then remember a "
        "verified token (bounded) and check only its expiry (and, in Keyward, its revocation) on "
        "each use: a bot reuses its JWT until it expires.",
        "",
        "Queries per request (after warm-up):",
        "",
    ]
    for row in rows:
        queries = results[row.name].queries
        lines.append(
            f"- {row.name}: {len(queries)}" + "".join(f"\n  - `{q[:160]}`" for q in queries)
        )
    if http_rows:
        drf = http_rows["drf_token"]
        lines += [
            "",
            "## HTTP",
            "",
            "| row | median req/s | spread | ÷ DRF Token (paired) |",
            "| --- | --- | --- | --- |",
        ]
        for row in http_rows.values():
            paired = httpbench.paired_ratio(row, drf)
            spread = row.spread_rps
            lines.append(
                f"| {row.name}: {row.label} | {row.median_rps or 0:.0f} | "
                f"{'' if not spread else f'{spread[0]:.0f}–{spread[1]:.0f}'} | "
                f"{'' if paired is None else f'{paired:.2f}×'} |"
                + (f" {row.error}" if row.error else "")
            )
    client_ratio = measure.paired_ratio(results, "client", "drf_token", "baseline")
    jwt_http = (
        httpbench.paired_ratio(http_rows["jwt"], http_rows["drf_token"]) if http_rows else None
    )
    jwt_only_http = (
        httpbench.paired_ratio(http_rows["jwt_only"], http_rows["drf_token"]) if http_rows else None
    )
    exchange_http = (
        httpbench.paired_ratio(http_rows["exchange"], http_rows["drf_token"]) if http_rows else None
    )
    auth_queries = len(_auth_queries(results["jwt"].queries))
    targets = [
        (
            "JWT through Keyward's authentication: SQL queries to authenticate",
            f"{auth_queries}",
            "0",
            "met" if auth_queries == 0 else "MISSED",
        ),
        (
            "JWT, API v1 classes with its api.request event: HTTP req/s ÷ DRF Token's",
            *ratio_text(jwt_http, 2.0, True)[:1],
            "≥ 2.0×",
            ratio_text(jwt_http, 2.0, True)[1],
        ),
        (
            "JWT class alone (audited all the same): HTTP req/s ÷ DRF Token's",
            *ratio_text(jwt_only_http, 2.0, True)[:1],
            "≥ 2.0×",
            ratio_text(jwt_only_http, 2.0, True)[1],
        ),
        (
            "keyward_client: in-process added cost ÷ DRF Token's",
            *ratio_text(client_ratio, 0.3, False)[:1],
            "≤ 0.3×",
            ratio_text(client_ratio, 0.3, False)[1],
        ),
        (
            "token exchange: HTTP req/s ÷ DRF Token's",
            *ratio_text(exchange_http, 1.0, True)[:1],
            "≥ 1.0×",
            ratio_text(exchange_http, 1.0, True)[1],
        ),
    ]
    lines += ["", "## Targets", "", "| target | measured | goal | |", "| --- | --- | --- | --- |"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in targets]
    lines.append("")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(main())
