"""In-process measurement: Django's test client (full middleware), rows interleaved in rounds.

Each round runs every row for ``n`` requests, one row after the other (A B C … A B C …), starting
from a different row each round so no row always follows the same neighbour. A row's figure is
the median of all its request times; its spread is the min–max of its round medians. Ratios are
paired per round (the rows of one round ran within seconds of each other, on the same machine
state), then the median of the per-round ratios is reported.
"""

import gc
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext


@dataclass
class Row:
    name: str
    label: str
    path: str
    client: Client
    expect: int = 200
    headers: dict = field(default_factory=dict)
    error: str = ""  # set when the row cannot be measured (not available yet, wrong status)
    setup: Callable[[], None] | None = None  # puts the database in this row's state
    # Headers made anew for each request (a fresh unknown token, a random key of a pool).
    header_source: Callable[[], dict] | None = None

    def get(self):
        headers = self.header_source() if self.header_source else self.headers
        return self.client.get(self.path, headers=headers)

    def prepare(self) -> None:
        if self.setup is not None:
            self.setup()


@dataclass
class RowResult:
    name: str
    label: str
    times_ns: list[int] = field(default_factory=list)
    round_medians_ns: list[float] = field(default_factory=list)
    bad_status: int = 0
    queries: list[str] = field(default_factory=list)
    error: str = ""

    @property
    def median_ms(self) -> float | None:
        return statistics.median(self.times_ns) / 1e6 if self.times_ns else None

    @property
    def spread_ms(self) -> tuple[float, float] | None:
        if not self.round_medians_ns:
            return None
        return min(self.round_medians_ns) / 1e6, max(self.round_medians_ns) / 1e6


def flush_audit_writer() -> None:
    """Wait for the product's per-process writer of request events, if it has one."""
    try:
        from audit.writer import flush
    except ImportError:
        return
    flush()


def check(rows: list[Row]) -> None:
    """Send one request per row; mark a row whose status is not the expected one."""
    for row in rows:
        if row.error:
            continue
        try:
            row.prepare()
            response = row.get()
        except Exception as error:  # noqa: BLE001 - a broken row must not stop the others
            row.error = f"{type(error).__name__}: {error}"
            continue
        if response.status_code != row.expect:
            body = b"" if response.streaming else response.content[:300]
            if response.status_code in (404, 501):  # no such URL yet, or classes missing
                row.error = f"not available yet ({response.status_code}): " + body.decode(
                    errors="replace"
                )
            else:
                row.error = (
                    f"status {response.status_code}, expected {row.expect}: "
                    f"{body.decode(errors='replace')}"
                )


def capture_queries(row: Row) -> list[str]:
    """Return the SQL of one request of ``row`` (after warm-up, so caches are as in a loop)."""
    with CaptureQueriesContext(connection) as context:
        row.get()
    return [_readable(query["sql"]) for query in context.captured_queries]


def _readable(sql: str) -> str:
    # Django logs a server-side-bound (prepared) query as "QUERY = '…' - PARAMS = (…)", with the
    # parameters' raw bytes: show the statement and say where its parameters went.
    match = re.fullmatch(r"QUERY = '(.*)' - PARAMS = .*", sql, re.DOTALL)
    return f"{match[1]}  -- prepared; parameters bound server-side" if match else sql


def interleave(
    rows: list[Row], *, rounds: int, n: int, warmup: int, log=print
) -> dict[str, RowResult]:
    """Warm up, capture each row's queries, then time ``rounds`` × ``n`` requests per row."""
    results = {row.name: RowResult(row.name, row.label, error=row.error) for row in rows}
    live = [row for row in rows if not row.error]
    for row in live:
        row.prepare()
        for _ in range(warmup):
            row.get()
    for row in live:
        row.prepare()
        results[row.name].queries = capture_queries(row)
    for index in range(rounds):
        started = time.perf_counter()
        order = live[index % len(live) :] + live[: index % len(live)] if live else []
        for row in order:
            result = results[row.name]
            row.prepare()
            gc.collect()
            times = []
            for _ in range(n):
                t0 = time.perf_counter_ns()
                response = row.get()
                times.append(time.perf_counter_ns() - t0)
                if response.status_code != row.expect:
                    result.bad_status += 1
            result.times_ns.extend(times)
            result.round_medians_ns.append(statistics.median(times))
        log(f"  round {index + 1}/{rounds}: {time.perf_counter() - started:.1f}s")
    return results


def round_ratios(results: dict[str, RowResult], row: str, reference: str) -> list[float]:
    """Return row ÷ reference for each round both ran."""
    a, b = results.get(row), results.get(reference)
    if not a or not b:
        return []
    pairs = zip(a.round_medians_ns, b.round_medians_ns, strict=False)
    return [x / y for x, y in pairs if y > 0]


def paired_ratio(
    results: dict[str, RowResult], row: str, reference: str, baseline: str | None = None
) -> float | None:
    """Return the median over rounds of (row − baseline) / (reference − baseline), or of
    row / reference without a baseline. Rows must have run in the same rounds."""
    a, b = results.get(row), results.get(reference)
    base = results.get(baseline) if baseline else None
    if not a or not b or not a.round_medians_ns or not b.round_medians_ns:
        return None
    if baseline and (not base or not base.round_medians_ns):
        return None
    ratios = []
    for i in range(min(len(a.round_medians_ns), len(b.round_medians_ns))):
        x, y = a.round_medians_ns[i], b.round_medians_ns[i]
        if base:
            x, y = x - base.round_medians_ns[i], y - base.round_medians_ns[i]
        if y > 0:
            ratios.append(x / y)
    return statistics.median(ratios) if ratios else None


def added_ms(results: dict[str, RowResult], row: str, baseline: str) -> float | None:
    a, base = results.get(row), results.get(baseline)
    if not a or not base or a.median_ms is None or base.median_ms is None:
        return None
    return a.median_ms - base.median_ms
