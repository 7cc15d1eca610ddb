"""Scale rows: key lookups at 1k vs 1M keys, audit pages at 10k vs 10M events, the CSV export's
peak memory, and seal + verify against a plain read of the same rows."""

import base64
import json
import os
import re
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import psycopg
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from bench import seeding
from bench.measure import Row, flush_audit_writer

REPO = Path(__file__).resolve().parent.parent
AUDIT_API = "/api/v1/audit-events/"


class _Ok:
    status_code = 200
    streaming = False
    content = b""


class CallRow(Row):
    """A row that times a plain function instead of an HTTP request."""

    def __init__(self, name, label, function):
        super().__init__(name=name, label=label, path="", client=None)
        self.function = function

    def get(self):
        self.function()
        return _Ok


def digest_lookup_row(pool) -> CallRow:
    """The product's key lookup without DRF: one ORM query by digest, owner and tenant joined,
    for a key picked at random from the tokens ``pool`` on each call."""
    import random

    from keys import tokens
    from keys.models import ApiKey

    digests = [tokens.digest(token) for token in pool]

    def lookup():
        digest = random.choice(digests)  # noqa: S311
        ApiKey.objects.select_related("tenant", "user", "service_id").filter(digest=digest).first()

    return CallRow("digest_lookup", "ApiKey by digest (ORM, no DRF)", lookup)


def id_at(tenant, fraction: float, action: str = "") -> int | None:
    """Return the id at ``fraction`` of the tenant's (filtered) events in id order (0 = oldest)."""
    flush_audit_writer()
    where, params = "tenant_id = %s", [tenant.pk]
    if action:
        where += " AND action = %s"
        params.append(action)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM audit_auditevent WHERE {where}", params)  # noqa: S608
        count = cursor.fetchone()[0]
        cursor.execute(
            f"SELECT id FROM audit_auditevent WHERE {where} ORDER BY id OFFSET %s LIMIT 1",  # noqa: S608
            [*params, min(max(int(count * fraction), 1), max(count - 1, 0))],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def _txid_of(event_id: int) -> int:
    """The transaction id stored on an event (the commit-order cursor's first number)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT txid FROM audit_auditevent WHERE id = %s", [event_id])
        return cursor.fetchone()[0]


def _recode_cursor(raw: str, deep_id: int) -> str | None:
    """Return ``raw`` re-pointed at ``deep_id``: Keyward's base64url("v2:<txid>:<id>") or
    base64url("v1:<id>"), or DRF's
    CursorPagination base64("p=<position>&…"); None for a format this does not know."""
    padded = raw + "=" * (-len(raw) % 4)
    for decode, encode in (
        (base64.urlsafe_b64decode, base64.urlsafe_b64encode),
        (base64.b64decode, base64.b64encode),
    ):
        try:
            text = decode(padded).decode("ascii")
        except ValueError:
            continue
        match = re.fullmatch(r"(v2:)(\d+):(\d+)", text)
        if match:  # Keyward's commit-order cursor: base64url("v2:<txid>:<id>")
            value = encode(f"v2:{_txid_of(deep_id)}:{deep_id}".encode()).decode()
            return value if raw.endswith("=") else value.rstrip("=")
        match = re.fullmatch(r"([A-Za-z0-9]*:)?(\d+)", text)
        if match:
            value = encode(f"{match.group(1) or ''}{deep_id}".encode()).decode()
            return value if raw.endswith("=") else value.rstrip("=")
        fields = dict(parse_qsl(text))
        if fields.get("p", "").isdigit():
            fields["p"] = str(deep_id)
            fields.pop("o", None)
            return encode(urlencode(fields).encode()).decode()
    return None


def api_deep_path(client: Client, headers: dict, tenant) -> tuple[str | None, str]:
    """Return the audit API's URL of a page deep in the tenant's events, built from its first
    page: the ``next_cursor`` (or ``next`` link) re-pointed at an id 90% of the way along the
    API's order (oldest first or newest first, as the first page shows)."""
    response = client.get(AUDIT_API, headers=headers)
    if response.status_code != 200:
        return None, f"first page answered {response.status_code}"
    body = response.json()
    if not isinstance(body, dict):
        return None, "the first page is not a JSON object"
    ids = [r.get("id") for r in body.get("results", []) if isinstance(r, dict)]
    ascending = len(ids) < 2 or ids[0] < ids[-1]
    deep_id = id_at(tenant, 0.9 if ascending else 0.1)
    if deep_id is None:
        return None, "no events"
    if body.get("next_cursor"):
        cursor = _recode_cursor(body["next_cursor"], deep_id)
        if cursor is None:
            return None, f"unknown cursor format {body['next_cursor']!r}"
        return f"{AUDIT_API}?{urlencode({'cursor': cursor})}", ""
    link = body.get("next") or (body.get("links") or {}).get("next")
    if not link:
        return None, "the first page has no next cursor"
    query = dict(parse_qsl(urlsplit(link).query))
    for name in ("before", "before_id", "after", "max_id"):
        if name in query:
            query[name] = str(deep_id)
            return f"{AUDIT_API}?{urlencode(query)}", ""
    if "cursor" in query:
        cursor = _recode_cursor(query["cursor"], deep_id)
        if cursor is not None:
            query["cursor"] = cursor
            return f"{AUDIT_API}?{urlencode(query)}", ""
    return None, f"unknown cursor format in {link}"


def audit_page_rows(
    seed, api_client: Client, api_headers: dict, portal: Client, *, suffix: str = "", setup=None
) -> list[Row]:
    """First and deep pages of the audit API and of the filtered portal audit page."""
    tenant = seed.audit_tenant
    base = f"/t/{tenant.slug}/audit/"
    query = {"action": seeding.FILTER_ACTION}
    deep = {**query, "before": id_at(tenant, 0.1, seeding.FILTER_ACTION)}
    rows = [
        Row("portal_first", f"portal {base}?action=… first page", f"{base}?{urlencode(query)}",
            portal),
        Row("portal_deep", "portal, same filter, ?before=<id 10% from the oldest>",
            f"{base}?{urlencode(deep)}", portal),
        Row("api_first", f"API {AUDIT_API} first page", AUDIT_API, api_client,
            headers=api_headers),
    ]  # fmt: skip
    deep_path, problem = api_deep_path(api_client, api_headers, tenant)
    api_deep = Row("api_deep", "API, cursor 90% along its order", deep_path or AUDIT_API,
                   api_client, headers=api_headers)  # fmt: skip
    if problem:
        api_deep.error = "not available yet: " + problem
    rows.append(api_deep)
    for row in rows:
        row.name += suffix
        row.setup = setup
    return rows


class TableVersions:
    """Two versions of one table, swapped under its name by renames, so the same requests can
    run interleaved against a small and a big table (A B A B … rather than all of A, then all of
    B, minutes apart on a machine whose load changes).

    ``freeze()`` copies the table as it is now (rows, indexes, constraints; not its triggers or
    foreign keys, which reads do not use) into ``<table>_bench_small``; afterwards the table
    grows as usual. ``use("small")`` / ``use("big")`` rename them in one transaction (a few ms;
    plans are re-checked by PostgreSQL after a rename). ``restore()`` puts the big one back.
    """

    def __init__(self, table: str):
        self.table = table
        self.other = f"{table}_bench_small"
        self.current = "big"
        self.frozen = False

    def freeze(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE TABLE "{self.other}" (LIKE "{self.table}" INCLUDING ALL)')
            cursor.execute(f'INSERT INTO "{self.other}" SELECT * FROM "{self.table}"')  # noqa: S608
            # Rows inserted into the copy while it stands in (request events) need fresh ids.
            cursor.execute(f'SELECT coalesce(max(id), 0) FROM "{self.table}"')  # noqa: S608
            start = cursor.fetchone()[0] + 1_000_000_000
            cursor.execute(f'ALTER TABLE "{self.other}" ALTER COLUMN id RESTART WITH {start}')
            cursor.execute(f'VACUUM ANALYZE "{self.other}"')
        self.frozen = True

    def use(self, which: str) -> None:
        if which == self.current:
            return
        parked = f"{self.table}_bench_parked"
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f'ALTER TABLE "{self.table}" RENAME TO "{parked}"')
            cursor.execute(f'ALTER TABLE "{self.other}" RENAME TO "{self.table}"')
            cursor.execute(f'ALTER TABLE "{parked}" RENAME TO "{self.other}"')
        self.current = which

    def restore(self) -> None:
        if self.frozen:
            self.use("big")

    def count(self, which: str) -> int:
        name = self.table if which == self.current else self.other
        with connection.cursor() as cursor:
            cursor.execute(f'SELECT count(*) FROM "{name}"')  # noqa: S608
            return cursor.fetchone()[0]


def csv_export(env: dict, slug: str, log=print) -> dict:
    """Export the tenant's events as CSV in a fresh process; return its time and peak memory."""
    command = [sys.executable, "-m", "bench.memprobe", slug]
    done = subprocess.run(  # noqa: S603
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=3600
    )
    if done.returncode != 0:
        return {"error": (done.stderr or done.stdout)[-2000:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


class _Rollback(Exception):
    pass


RAW_CHUNK = 100_000  # ids per fetchall of the raw read


def seal_verify(runs: int, log=print) -> dict:
    """Per run: a raw psycopg read of the events, audit_seal (rolled back); then one real seal;
    then per run: the raw read again and audit_verify. A run's ratio is (its seal + its verify)
    ÷ the median of its raw reads.

    The raw read is the fastest honest read of the same rows into the client: every column the
    seal covers (the whole row), ``SELECT … WHERE id BETWEEN …`` in chunks of 100,000 ids with
    a plain (client-side) psycopg cursor and ``fetchall``, as text and as binary results; the
    faster of the two is the yardstick. A binary COPY of the same rows, bytes only and never
    decoded into rows, is timed for reference."""
    from audit import seals
    from audit.models import AuditEvent
    from audit.services import Actor

    flush_audit_writer()
    fields = [f.column for f in AuditEvent._meta.concrete_fields]
    first = AuditEvent.objects.order_by("id").values_list("id", flat=True).first()
    upto = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first()
    count = AuditEvent.objects.filter(id__lte=upto).count()
    # Every event must be sealable: the seeded ones are old, but those the bench's requests
    # wrote are inside the safety window, so seal "as of" a little later.
    later = timezone.now() + 2 * getattr(seals, "SAFETY_WINDOW", timedelta(minutes=1))
    actor = Actor.cli("bench")
    columns = ", ".join(f'"{f}"' for f in fields)
    table = "audit_auditevent"
    chunk_sql = f"SELECT {columns} FROM {table} WHERE id BETWEEN %s AND %s ORDER BY id"  # noqa: S608

    def raw_read(binary: bool):
        n = 0
        # A plain psycopg cursor: Django's connections use client-side binding cursors, which
        # cannot fetch binary results.
        with psycopg.Cursor(connection.connection) as cursor:
            for low in range(first, upto + 1, RAW_CHUNK):
                cursor.execute(chunk_sql, [low, min(low + RAW_CHUNK - 1, upto)], binary=binary)
                n += len(cursor.fetchall())
        return n

    def copy_bytes():
        n = 0
        with connection.connection.cursor() as cursor:
            with cursor.copy(
                f"COPY (SELECT {columns} FROM audit_auditevent WHERE id <= {int(upto)} "  # noqa: S608
                "ORDER BY id) TO STDOUT (FORMAT BINARY)"
            ) as copy:
                for block in copy:
                    n += len(block)
        return n

    def seal_and_roll_back():
        try:
            with transaction.atomic():
                sealed = seals.audit_seal(now=later, actor=actor)
                raise _Rollback(sealed)
        except _Rollback as done:
            return done.args[0].event_count if done.args[0] else 0

    def timed(function, *args):
        started = time.perf_counter()
        n = function(*args)
        return time.perf_counter() - started, n

    per_run = [
        {"raw_text": [], "raw_binary": [], "copy_binary": [], "seal": None, "verify": None}
        for _ in range(runs)
    ]
    counts = {}

    def reads(run):
        for kind, binary in (("raw_text", False), ("raw_binary", True)):
            seconds, counts[kind] = timed(raw_read, binary)
            run[kind].append(seconds)

    for index, run in enumerate(per_run):
        reads(run)
        run["seal"], counts["seal"] = timed(seal_and_roll_back)
        log(
            f"  seal run {index + 1}/{runs}: raw read "
            f"{min(run['raw_text'] + run['raw_binary']):.1f}s, seal {run['seal']:.1f}s "
            f"({counts['seal']:,} events)"
        )
    sealed = seals.audit_seal(now=later, actor=actor)
    ok = True
    for index, run in enumerate(per_run):
        reads(run)
        seconds, counts["copy_binary_bytes"] = timed(copy_bytes)
        run["copy_binary"].append(seconds)
        run["verify"], result = timed(seals.audit_verify)
        counts["verify"] = result.events
        ok = ok and result.ok
        if not result.ok:
            log(f"  audit_verify failed: {result.problem}")
        yardstick = min(
            sorted(run["raw_text"])[len(run["raw_text"]) // 2],
            sorted(run["raw_binary"])[len(run["raw_binary"]) // 2],
        )
        run["read"] = yardstick
        run["ratio"] = (run["seal"] + run["verify"]) / yardstick
        log(
            f"  verify run {index + 1}/{runs}: raw read {yardstick:.1f}s, verify "
            f"{run['verify']:.1f}s ({result.events:,} events, ok={result.ok}): seal + verify = "
            f"{run['ratio']:.2f}× the raw read"
        )

    def median(values):
        return statistics.median(values)

    return {
        "events": count,
        "sealed": sealed.event_count if sealed else 0,
        "verified_ok": ok,
        "counts": counts,
        "runs": per_run,
        "ratios": [run["ratio"] for run in per_run],
        "ratio": median([run["ratio"] for run in per_run]),
        "median_s": {
            "read": median([run["read"] for run in per_run]),
            "raw_text": median([t for run in per_run for t in run["raw_text"]]),
            "raw_binary": median([t for run in per_run for t in run["raw_binary"]]),
            "copy_binary": median([t for run in per_run for t in run["copy_binary"]]),
            "seal": median([run["seal"] for run in per_run]),
            "verify": median([run["verify"] for run in per_run]),
        },
    }


def env_for_children() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO)}
