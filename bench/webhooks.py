"""What webhooks cost a request: issue, rotate and revoke a key through the portal, for a tenant
with no webhook endpoint and for one whose endpoint subscribes to every event.

    python -m bench.webhooks [--rounds 7] [--requests 20]

Production's configuration: DEBUG off, the database task backend (``db_worker`` is not run:
deliveries stay queued, as they leave the request), PostgreSQL (DATABASE_URL, an empty database,
or a throwaway cluster like ``make bench``), Redis. Rows are interleaved in rounds (plain, hooked;
hooked, plain; …) and each request is timed through Django's test client (every middleware). The
figure is the median request time per operation; the ratio is hooked / plain, as the median of
the per-round ratios. Writes bench/results/webhooks.md.
"""

import argparse
import contextlib
import itertools
import os
import secrets
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "webhooks.md"
OPERATIONS = ("issue", "rotate", "revoke")
TARGET = 1.10
_names = itertools.count(1)


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
    os.environ["KEYWARD_TASKS_BACKEND"] = "database"
    os.environ["BENCH_CACHE_PREFIX"] = f"keyward-bench-webhooks-{os.getpid()}"
    return stack


def _tenant(slug: str):
    from django.test import Client
    from django_otp import DEVICE_ID_SESSION_KEY

    from accounts import services as account_services
    from accounts.decorators import SUDO_SESSION_KEY
    from accounts.models import AuthenticatorDevice, User
    from audit.services import Actor

    owner = User.objects.create_user(f"owner@{slug}.example", secrets.token_urlsafe(16))
    device = AuthenticatorDevice.objects.create(user=owner, name="phone", confirmed=True)
    tenant, _ = account_services.tenant_create(
        name=slug.title(), slug=slug, owner_email=owner.email, actor=Actor.cli("bench")
    )
    client = Client()
    client.force_login(owner)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session[SUDO_SESSION_KEY] = time.time() + 10 * 3600  # fresh for the whole run
    session.save()
    return tenant, owner, client


def _keys(tenant, owner, count: int) -> list[int]:
    from datetime import timedelta

    from django.utils import timezone

    from accounts.models import Membership
    from accounts.principals import Principal
    from keys.services import key_issue

    principal = Principal.of_membership(
        Membership.objects.select_related("tenant", "user").get(tenant=tenant, user=owner)
    )
    return [
        key_issue(
            actor=principal,
            tenant=tenant,
            owner=owner,
            name=f"bench {i}",
            scopes=["keys:read"],
            expires_at=timezone.now() + timedelta(days=30),
        )[0].pk
        for i in range(count)
    ]


def _request(client, slug: str, operation: str, key_pk: int | None, n: int) -> tuple[int, int]:
    from django.urls import reverse

    if operation == "issue":
        url = reverse("keys:issue", kwargs={"slug": slug})
        data = {"name": f"issued {next(_names)}", "expiry": "30", "scopes": ["keys:read"]}
        expect = 200
    elif operation == "rotate":
        url = reverse("keys:rotate", kwargs={"slug": slug, "pk": key_pk})
        data, expect = {"grace": "24h"}, 200
    else:
        url = reverse("keys:revoke", kwargs={"slug": slug, "pk": key_pk})
        data, expect = {"reason": "bench"}, 302
    started = time.perf_counter_ns()
    response = client.post(url, data)
    elapsed = time.perf_counter_ns() - started
    if response.status_code != expect:
        import re

        errors = re.findall(
            r'class="errorlist[^"]*"[^>]*>(.*?)</ul>', response.content.decode(), re.S
        )
        raise SystemExit(
            f"{operation} on {slug}: HTTP {response.status_code}, expected {expect} {errors}"
        )
    return elapsed, response.status_code


def _key_for(row: dict, operation: str) -> int | None:
    """A key issued before the timing starts, for rotate and revoke; none for issue."""
    return None if operation == "issue" else row["keys"].pop()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args(argv)

    with _environment():
        sys.path.insert(0, str(REPO))
        import django

        django.setup()
        from django.core.management import call_command
        from django.tasks import default_task_backend

        from accounts.models import Membership
        from accounts.principals import Principal
        from webhooks import services as webhook_services
        from webhooks.events import EVENTS
        from webhooks.models import WebhookDelivery

        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        assert not default_task_backend.__class__.__name__.startswith("Immediate")
        rows = {}
        for label, slug in (("plain", "bench-plain"), ("hooked", "bench-hooked")):
            tenant, owner, client = _tenant(slug)
            rows[label] = {"slug": slug, "tenant": tenant, "owner": owner, "client": client}
        hooked = rows["hooked"]
        membership = Membership.objects.select_related("tenant", "user").get(
            tenant=hooked["tenant"], user=hooked["owner"]
        )
        # A public address literal: no DNS on the bench machine; no worker, so never contacted.
        webhook_services.endpoint_create(
            actor=Principal.of_membership(membership),
            url="https://93.184.215.14/keyward-bench",
            events=list(EVENTS),
        )
        per_round = args.requests
        for row in rows.values():
            row["keys"] = _keys(row["tenant"], row["owner"], 2 * per_round * args.rounds + 2)
            row["times"] = {op: [] for op in OPERATIONS}
        ratios = {op: [] for op in OPERATIONS}
        # Warm-up: one of each per row, not counted.
        for row in rows.values():
            for op in OPERATIONS:
                _request(row["client"], row["slug"], op, _key_for(row, op), 0)
        for r in range(args.rounds):
            order = ["plain", "hooked"] if r % 2 == 0 else ["hooked", "plain"]
            medians = {}
            for label in order:
                row = rows[label]
                for op in OPERATIONS:
                    times = [
                        _request(row["client"], row["slug"], op, _key_for(row, op), n)[0]
                        for n in range(per_round)
                    ]
                    row["times"][op].extend(times)
                    medians[(label, op)] = statistics.median(times)
            for op in OPERATIONS:
                ratios[op].append(medians[("hooked", op)] / medians[("plain", op)])
        queued = WebhookDelivery.objects.filter(endpoint__tenant=hooked["tenant"]).count()

    lines = [
        "# Webhooks: what they cost a request",
        "",
        f"`python -m bench.webhooks --rounds {args.rounds} --requests {args.requests}`, "
        f"{time.strftime('%Y-%m-%d %H:%M %Z')}. Portal POSTs through Django's test client "
        "(every middleware), PostgreSQL, Redis, DEBUG off, the database task backend (each "
        "outbox row and its delivery task's row are one INSERT statement, committed with the "
        "change; no worker runs). The machine's load is reported below: on a shared machine the "
        "per-round ratios are noisy.",
        "",
        "| operation | no endpoint (median ms) | one endpoint, every event (median ms) | "
        "ratio (median of rounds) | target |",
        "| --- | --- | --- | --- | --- |",
    ]
    ok = True
    for op in OPERATIONS:
        plain = statistics.median(rows["plain"]["times"][op]) / 1e6
        hook = statistics.median(rows["hooked"]["times"][op]) / 1e6
        ratio = statistics.median(ratios[op])
        ok &= ratio <= TARGET
        verdict = "met" if ratio <= TARGET else "MISSED"
        lines.append(
            f"| {op} | {plain:.2f} | {hook:.2f} | {ratio:.3f} | ≤ {TARGET:.2f} ({verdict}) |"
        )
    lines += [
        "",
        f"{queued} deliveries were queued for the hooked tenant (outbox rows, with their tasks); "
        f"{args.rounds} rounds × {args.requests} requests per operation and tenant, interleaved.",
        "",
    ]
    lines.append(f"Load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs.")
    lines.append("")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
