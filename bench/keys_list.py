"""The keys list's first page in constant time: a tenant with 10,000 keys against one with 100.

    python -m bench.keys_list [--rounds 7] [--requests 20] [--big 10000] [--small 100]

Production's configuration: DEBUG off, PostgreSQL (DATABASE_URL, an empty database, or a
throwaway cluster like ``make bench``), Redis. Each tenant's owner opens ``/t/<slug>/keys/``
(the default tab, sort and page) through Django's test client (every middleware). Rows are
interleaved in rounds (small, big; big, small; …); the figure is the median request time per
tenant and the ratio big / small is the median of the per-round ratios (target ≤ 1.5). The keys
are inserted in bulk (the page reads them, it does not care how they were made). Writes
bench/results/keys_list.md.
"""

import argparse
import contextlib
import os
import secrets
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "keys_list.md"
TARGET = 1.5


def _environment() -> contextlib.ExitStack:
    stack = contextlib.ExitStack()
    if not os.environ.get("DATABASE_URL"):
        from bench.cluster import Cluster

        cluster = Cluster(log=lambda message: print(message, file=sys.stderr))
        stack.callback(cluster.stop)
        cluster.start()
        os.environ["DATABASE_URL"] = cluster.url
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    os.environ["BENCH_CACHE_PREFIX"] = f"keyward-bench-keys-list-{os.getpid()}"
    return stack


def _tenant(slug: str, keys: int):
    """Create a tenant whose owner holds ``keys`` keys; return its slug and a logged-in client."""
    from datetime import timedelta

    from django.db import connection
    from django.test import Client
    from django.utils import timezone
    from django_otp import DEVICE_ID_SESSION_KEY

    from accounts import services as account_services
    from accounts.models import AuthenticatorDevice, User
    from audit.services import Actor
    from keys import tokens
    from keys.models import ApiKey

    owner = User.objects.create_user(f"owner@{slug}.example", secrets.token_urlsafe(16))
    device = AuthenticatorDevice.objects.create(user=owner, name="phone", confirmed=True)
    tenant, _ = account_services.tenant_create(
        name=slug.title(), slug=slug, owner_email=owner.email, actor=Actor.cli("bench")
    )
    now = timezone.now()
    batch = []
    for i in range(keys):
        token = tokens.generate(tokens.Kind.PERSONAL)
        batch.append(
            ApiKey(
                tenant=tenant,
                user=owner,
                name=f"key {i}",
                scopes=["keys:read", "members:read"],
                digest=tokens.digest(token),
                hint=tokens.hint(token),
                created_at=now - timedelta(minutes=keys - i),
                expires_at=now + timedelta(days=30 + i % 300),
                last_used_at=now - timedelta(hours=i % 500) if i % 3 else None,
                created_by=owner,
            )
        )
        if len(batch) == 2000:
            ApiKey.objects.bulk_create(batch)
            batch = []
    ApiKey.objects.bulk_create(batch)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE keys_apikey")
    client = Client()
    client.force_login(owner)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return slug, client


def _get(client, url: str) -> int:
    started = time.perf_counter_ns()
    response = client.get(url)
    elapsed = time.perf_counter_ns() - started
    if response.status_code != 200:
        raise SystemExit(f"{url}: HTTP {response.status_code}")
    return elapsed


def _queries(client, url: str) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        client.get(url)
    return len(captured)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--big", type=int, default=10_000)
    parser.add_argument("--small", type=int, default=100)
    args = parser.parse_args(argv)

    with _environment():
        sys.path.insert(0, str(REPO))
        import django

        django.setup()
        from django.core.management import call_command
        from django.urls import reverse

        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        rows = {}
        for label, count in (("small", args.small), ("big", args.big)):
            slug, client = _tenant(f"bench-list-{label}-{os.getpid()}", count)
            url = reverse("keys:list", kwargs={"slug": slug})
            rows[label] = {"count": count, "client": client, "url": url, "times": []}
        for row in rows.values():  # warm-up, not counted
            for _ in range(3):
                _get(row["client"], row["url"])
            row["queries"] = _queries(row["client"], row["url"])
        ratios = []
        for r in range(args.rounds):
            order = ["small", "big"] if r % 2 == 0 else ["big", "small"]
            medians = {}
            for label in order:
                row = rows[label]
                times = [_get(row["client"], row["url"]) for _ in range(args.requests)]
                row["times"].extend(times)
                medians[label] = statistics.median(times)
            ratios.append(medians["big"] / medians["small"])

    small, big = rows["small"], rows["big"]
    ratio = statistics.median(ratios)
    ok = ratio <= TARGET and small["queries"] == big["queries"]
    lines = [
        "# Keys list: the first page with many keys",
        "",
        f"`python -m bench.keys_list --rounds {args.rounds} --requests {args.requests} "
        f"--big {args.big} --small {args.small}`, {time.strftime('%Y-%m-%d %H:%M %Z')}. "
        "The tenant owner's `/t/<slug>/keys/` (Active tab, newest first, first page of 25) "
        "through Django's test client (every middleware), PostgreSQL, Redis, DEBUG off. "
        "Rounds interleaved; the ratio is the median of the per-round ratios.",
        "",
        "| keys in the tenant | median ms | queries | ratio to the small tenant | target |",
        "| --- | --- | --- | --- | --- |",
        f"| {small['count']:,} | {statistics.median(small['times']) / 1e6:.2f} | "
        f"{small['queries']} | 1.00 | |",
        f"| {big['count']:,} | {statistics.median(big['times']) / 1e6:.2f} | "
        f"{big['queries']} | {ratio:.2f} | ≤ {TARGET} {'met' if ok else 'MISSED'} |",
        "",
        f"Per-round ratios: {', '.join(f'{x:.2f}' for x in ratios)}.",
        "",
    ]
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
