"""Seed the bench database: the few real objects through the product's own services, the bulk
through ``bulk_create`` (thousands) or ``INSERT … SELECT … FROM generate_series`` (millions).

Bulk rows are not realistic one by one, but they are shaped like real ones (sizes, value spread,
indexes), which is what the scale rows measure.
"""

import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from django.db import connection
from django.test import Client
from django.utils import timezone

from bench import BenchError

BENCH_SLUG = "bench"  # the probe rows: in-process and HTTP
AUDIT_SLUG = "audit"  # the audit scale rows: its events are the seeded ones
CURSOR_SLUG = "cursor"  # the cursor row: a load on the full row polled through the audit API
NOISE_SLUG = "noise"  # one seeded event in ten, and the filler keys
OWNER_EMAIL = "owner@bench.example"
CURSOR_OWNER_EMAIL = "owner@cursor.example"
AUDIT_OWNER_EMAIL = "owner@audit.example"
NOISE_OWNER_EMAIL = "owner@noise.example"
# The portal filter of the audit scale rows: about 5% of the audit tenant's seeded events.
FILTER_ACTION = "key.issued"
GARBAGE_TOKEN = "kwp_" + "x" * 32 + "garbag"  # right shape and length, wrong checksum


@dataclass
class Seed:
    tenant: object
    owner: object
    keyward_token: str  # the bench owner's personal access token, scope keys:read
    drf_token: str
    knox_token: str
    api_key: str
    audit_tenant: object
    audit_owner: object  # verified second factor: reads the portal audit pages
    audit_token: str  # service key of the audit tenant's "siem" service ID, scope audit:read
    noise_tenant: object
    cursor_tenant: object = None
    cursor_token: str = ""  # the cursor tenant owner's personal token, scope keys:read
    cursor_audit_token: str = ""  # the cursor tenant's "siem" service key, scope audit:read
    # Plaintext tokens of the filler keys: the key-scale rows pick one at random per request.
    filler_tokens: tuple = ()  # the bulk_create ones (in the small and the big table)
    sample_tokens: tuple = ()  # spread over the rows grow_keys adds (in the big table only)


class AlreadySeeded(BenchError):
    pass


def seed(*, filler_keys: int = 1000, log=print) -> Seed:
    """Create the tenants, keys and competitor tokens the rows use, through the services."""
    from knox.models import AuthToken
    from rest_framework.authtoken.models import Token
    from rest_framework_api_key.models import APIKey

    from accounts.models import AuthenticatorDevice, Membership, Tenant
    from accounts.principals import Principal
    from accounts.services import service_id_create, tenant_create
    from audit.services import Actor
    from keys.services import key_issue

    if Tenant.objects.filter(slug__in=[BENCH_SLUG, AUDIT_SLUG, NOISE_SLUG, CURSOR_SLUG]).exists():
        raise AlreadySeeded(
            "this database already holds bench data: give DATABASE_URL an empty database"
        )
    cli = Actor.cli("bench")
    expires = timezone.now() + timedelta(days=30)

    def tenant_with_owner(slug, email):
        tenant, owner = tenant_create(name=slug.title(), slug=slug, owner_email=email, actor=cli)
        AuthenticatorDevice.objects.create(user=owner, name="bench", confirmed=True)
        membership = Membership.objects.select_related("tenant", "user").get(
            user=owner, tenant=tenant
        )
        return tenant, owner, membership

    # A person's token, issued by its owner (Principal from the membership), as in the portal.
    tenant, owner, membership = tenant_with_owner(BENCH_SLUG, OWNER_EMAIL)
    _, keyward_token = key_issue(
        actor=Principal.of_membership(membership),
        tenant=tenant,
        owner=owner,
        name="bench probe",
        scopes=["keys:read"],
        expires_at=expires,
    )
    # A service key, issued from the command line for a service ID, as a SIEM would hold.
    audit_tenant, audit_owner, audit_membership = tenant_with_owner(AUDIT_SLUG, AUDIT_OWNER_EMAIL)
    siem = service_id_create(
        actor=Principal.of_membership(audit_membership), name="siem", role="auditor"
    )
    _, audit_token = key_issue(
        actor=cli,
        tenant=audit_tenant,
        owner=siem,
        name="siem pull",
        scopes=["audit:read"],
        expires_at=expires,
    )
    noise, _ = tenant_create(
        name="Noise", slug=NOISE_SLUG, owner_email=NOISE_OWNER_EMAIL, actor=cli
    )
    # The cursor row's tenant: its own history stays small, so the poller catches up at once.
    cursor_tenant, cursor_owner, cursor_membership = tenant_with_owner(
        CURSOR_SLUG, CURSOR_OWNER_EMAIL
    )
    _, cursor_token = key_issue(
        actor=Principal.of_membership(cursor_membership),
        tenant=cursor_tenant,
        owner=cursor_owner,
        name="cursor load",
        scopes=["keys:read"],
        expires_at=expires,
    )
    cursor_siem = service_id_create(
        actor=Principal.of_membership(cursor_membership), name="siem", role="auditor"
    )
    _, cursor_audit_token = key_issue(
        actor=cli,
        tenant=cursor_tenant,
        owner=cursor_siem,
        name="siem poll",
        scopes=["audit:read"],
        expires_at=expires,
    )
    result = Seed(
        tenant=tenant,
        owner=owner,
        keyward_token=keyward_token,
        drf_token=Token.objects.create(user=owner).key,
        knox_token=AuthToken.objects.create(user=owner)[1],
        api_key=APIKey.objects.create_key(name="bench")[1],
        audit_tenant=audit_tenant,
        audit_owner=audit_owner,
        audit_token=audit_token,
        noise_tenant=noise,
        cursor_tenant=cursor_tenant,
        cursor_token=cursor_token,
        cursor_audit_token=cursor_audit_token,
    )
    result.filler_tokens = tuple(bulk_keys(filler_keys, log=log))
    return result


def bulk_keys(count: int, log=print) -> list[str]:
    """Add ``count`` filler keys of the noise tenant's owner with ``bulk_create``; return their
    tokens."""
    from accounts.models import User
    from keys import tokens
    from keys.models import ApiKey

    owner = User.objects.get(email=NOISE_OWNER_EMAIL)
    tenant_id = owner.memberships.get().tenant_id
    started = time.perf_counter()
    now = timezone.now()
    keys, plaintexts = [], []
    for i in range(count):
        token = tokens.generate(tokens.Kind.PERSONAL)
        plaintexts.append(token)
        keys.append(
            ApiKey(
                tenant_id=tenant_id,
                user=owner,
                name=f"filler {i}",
                scopes=["keys:read"],
                digest=tokens.digest(token),
                hint=tokens.hint(token),
                expires_at=now + timedelta(days=30),
            )
        )
    ApiKey.objects.bulk_create(keys, batch_size=1000)
    log(f"  {count:,} filler keys (bulk_create) in {time.perf_counter() - started:.1f}s")
    return plaintexts


def key_count() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM keys_apikey")
        return cursor.fetchone()[0]


def _insert_series(
    cursor, model, template_id: int, overrides: dict, params: dict, join: str = ""
) -> None:
    """INSERT one row per g of generate_series(%(first)s, %(last)s): the columns named in
    ``overrides`` get those SQL expressions, every other column the value of the template row
    (so a column added to the model later needs no change here)."""
    table = model._meta.db_table
    columns = [f.column for f in model._meta.concrete_fields if not f.primary_key]
    values = ", ".join(overrides.get(c, f't."{c}"') for c in columns)
    names = ", ".join(f'"{c}"' for c in columns)
    cursor.execute(
        f'INSERT INTO "{table}" ({names}) SELECT {values} FROM "{table}" t '  # noqa: S608
        f"CROSS JOIN generate_series(%(first)s, %(last)s) AS g {join} "
        "WHERE t.id = %(template)s",
        {**params, "template": template_id},
    )


def grow_keys(total: int, sample: int = 1000, log=print) -> list[str]:
    """Add filler keys with generate_series until the key table holds ``total`` rows: copies of
    the first bulk-created filler key, each with its own name, digest and hint. ``sample`` of
    them, at random positions spread over the added rows, get the digest of a real token made
    here: return those tokens (the key-scale rows pick one at random per request)."""
    import random

    from keys import tokens
    from keys.models import ApiKey

    missing = total - key_count()
    if missing <= 0:
        return []
    started = time.perf_counter()
    template = ApiKey.objects.filter(name="filler 0").values_list("id", flat=True).get()
    positions = sorted(random.sample(range(1, missing + 1), min(sample, missing)))
    known = [tokens.generate(tokens.Kind.PERSONAL) for _ in positions]
    overrides = {
        "name": "'filler ' || (g + %(offset)s)",
        "digest": "coalesce(s.sdigest, sha256(convert_to(%(salt)s || g, 'UTF8')))",
        "hint": "coalesce(s.shint, 'kwp_…' || lpad((g %% 10000)::text, 4, '0'))",
    }
    join = (
        "LEFT JOIN unnest(%(sample_g)s::bigint[], %(sample_digest)s::bytea[], "
        "%(sample_hint)s::text[]) AS s(sg, sdigest, shint) ON s.sg = g"
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) FROM keys_apikey")
        params = {
            "offset": cursor.fetchone()[0],
            "salt": secrets.token_hex(8),
            "sample_g": positions,
            "sample_digest": [tokens.digest(t) for t in known],
            "sample_hint": [tokens.hint(t) for t in known],
        }
        for first in range(1, missing + 1, 250_000):
            last = min(first + 250_000 - 1, missing)
            _insert_series(
                cursor, ApiKey, template, overrides, {**params, "first": first, "last": last}, join
            )
        cursor.execute("VACUUM ANALYZE keys_apikey")
    log(
        f"  key table grown to {key_count():,} rows (generate_series; {len(known):,} known "
        f"tokens spread over them) in {time.perf_counter() - started:.0f}s"
    )
    return known


def event_counts(tenant) -> tuple[int, int]:
    """Return (events of ``tenant``, events in the table)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FILTER (WHERE tenant_id = %s), count(*) FROM audit_auditevent",
            [tenant.pk],
        )
        return cursor.fetchone()


def _secondary_indexes(cursor, table: str) -> list[tuple[str, str]]:
    cursor.execute(
        """
        SELECT c.relname, pg_get_indexdef(i.indexrelid)
        FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE i.indrelid = %s::regclass AND NOT i.indisprimary
          AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
        """,
        [table],
    )
    return cursor.fetchall()


def grow_events(seed: Seed, bench_events: int, log=print) -> None:
    """Append generated events until the audit tenant holds ``bench_events`` of them.

    One row in ten belongs to the noise tenant, so every tenant filter really filters. Times
    rise with ids, ending before the seeding started. For big additions the table's secondary
    indexes are dropped and rebuilt (this throwaway database only), as a bulk load would.
    INSERT is all the append-only trigger allows, and all this needs.
    """
    from audit.models import AuditEvent

    tenant, noise = seed.audit_tenant, seed.noise_tenant
    template = AuditEvent.objects.filter(tenant=tenant).values_list("id", flat=True).first()
    have, _ = event_counts(tenant)
    if have >= bench_events:
        return
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(g), 0) FROM bench_event_series")
        done = cursor.fetchone()[0]
    target_g = _last_g(done, bench_events - have)
    indexes = []
    with connection.cursor() as cursor:
        if target_g - done > 500_000:
            indexes = _secondary_indexes(cursor, "audit_auditevent")
            for name, _ in indexes:
                cursor.execute(f'DROP INDEX "{name}"')
        step = 1_000_000
        for first in range(done + 1, target_g + 1, step):
            last = min(first + step - 1, target_g)
            params = {"bench": tenant.pk, "noise": noise.pk, "first": first, "last": last}
            _insert_series(cursor, AuditEvent, template, EVENT_COLUMNS, params)
            cursor.execute("INSERT INTO bench_event_series VALUES (%s)", [last])
            if target_g - done > step:
                log(f"    events up to g={last:,} ({time.perf_counter() - started:.0f}s)")
        for name, definition in indexes:
            t0 = time.perf_counter()
            cursor.execute(definition)
            log(f"    rebuilt index {name} in {time.perf_counter() - t0:.0f}s")
        cursor.execute("VACUUM ANALYZE audit_auditevent")
    have, total = event_counts(tenant)
    log(
        f"  audit table: {have:,} events of the audit tenant, {total:,} in all (generate_series) "
        f"in {time.perf_counter() - started:.0f}s"
    )


def _bench_rows(done: int, last: int) -> int:
    """Return how many g in (done, last] belong to the audit tenant (all but g % 10 == 0)."""
    return (last - done) - (last // 10 - done // 10)


def _last_g(done: int, need: int) -> int:
    last = done + need + need // 9
    while _bench_rows(done, last) < need:
        last += 1
    while last > done and _bench_rows(done, last - 1) >= need:
        last -= 1
    return last


def prepare_event_series() -> None:
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_event_series (g bigint)")


# Shaped like real events: ~80% api.request, 5% each key.issued, key.revoked, api.denied…, one
# second apart over ~130 days. Columns not named here are copied from a real event (the template).
EVENT_COLUMNS = {
    "occurred_at": "now() - interval '140 days' + g * interval '1 second'",
    "tenant_id": "CASE WHEN g %% 10 = 0 THEN %(noise)s ELSE %(bench)s END",
    "actor_kind": "'key'",
    "actor_id": "(g %% 997)::text",
    "actor_label": "'bench key ' || (g %% 997) || ' (kws_…' "
    "|| lpad((g %% 9973)::text, 4, '0') || ')'",
    "action": "CASE g %% 20 WHEN 1 THEN 'key.issued' WHEN 2 THEN 'key.revoked' "
    "WHEN 3 THEN 'api.denied' WHEN 4 THEN 'auth.login_succeeded' ELSE 'api.request' END",
    "target_kind": "'key'",
    "target_id": "(g %% 997)::text",
    "target_label": "'bench key ' || (g %% 997)",
    "outcome": "CASE g %% 20 WHEN 3 THEN 'denied' ELSE 'success' END",
    "ip": "'10.0.0.0'::inet + (g %% 65536)",
    "user_agent": "'bench-client/1.0 (+https://example.invalid)'",
    "request_id": "md5(g::text)",
    "metadata": "jsonb_build_object('method', 'GET', 'path', '/api/v1/keys/', 'status', 200, "
    "'duration_ms', g %% 40)",
}


def portal_client(user) -> Client:
    """Return a test client logged in as ``user`` with a verified second factor."""
    from django_otp import DEVICE_ID_SESSION_KEY

    from accounts.models import AuthenticatorDevice

    client = Client()
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = AuthenticatorDevice.objects.get(user=user).persistent_id
    session.save()
    return client


class UnknownTokens:
    """Well-formed tokens with a valid checksum that no key has: what a guesser sends (the
    checksum is public). Each call returns a new one (a run-random stem and a counter), so no
    process can answer from its memory of refused digests."""

    def __init__(self):
        from keys import tokens

        self._tokens = tokens
        self._stem = "".join(secrets.choice(tokens.ALPHABET) for _ in range(16))
        self._count = 0

    def __call__(self) -> str:
        self._count += 1
        secret = self._stem + f"{self._count:016d}"
        return self._tokens._assemble(self._tokens.Kind.PERSONAL, secret)
