"""The one query of the API's hot path: a key by digest, with its tenant, owner and the owner's
current role, as precompiled SQL; the checks a found key must pass; its throttled last-use mark.

Building the same query through the ORM on every request costs more than running it (the
compiler's work, not the database's, dominated the profile). The SQL text is made once per
database vendor from the models' own metadata, and each column goes through the same converters
the ORM would apply, so the instances are exactly what ``select_related`` would have built.
"""

import copy
import time
from datetime import datetime

from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connections
from django.db.models.expressions import Col
from django.utils import timezone

from accounts.models import Membership, ServiceID, Tenant, User
from common import ratelimit
from common.db import prepared_cursor
from keys import tokens
from keys.models import ApiKey, Approval
from keys.networks import ip_allowed

LAST_USED_INTERVAL = 60  # seconds between two writes of last_used_at for one key
MAX_MARKS = 100_000


class Reason:
    """Why a key was refused: recorded in the audit event, never sent to the client."""

    MALFORMED = "malformed_token"
    UNKNOWN = "unknown_key"
    REVOKED = "revoked"
    EXPIRED = "expired"
    ROTATED = "rotated_grace_ended"
    SUCCESSOR_USED = "rotated_successor_used"  # its successor's first request retired it
    PENDING_APPROVAL = "pending_approval"
    TENANT_INACTIVE = "tenant_inactive"
    OWNER_INACTIVE = "owner_inactive"
    OWNER_NOT_MEMBER = "owner_not_member"
    SERVICE_ID_DISABLED = "service_id_disabled"
    IP_NOT_ALLOWED_BY_KEY = "ip_not_allowed_by_key"
    IP_NOT_ALLOWED_BY_TENANT = "ip_not_allowed_by_tenant"
    TOKEN_IN_QUERY = "token_in_query"
    FAILED_AUTH_THROTTLED = "failed_auth_throttled"


# Never loaded on the API path: the key's digest (it is the lookup) and the owner's password hash.
_SKIP = {ApiKey: {"digest"}, User: {"password"}}
_JOINED = (("k", ApiKey), ("t", Tenant), ("u", User), ("s", ServiceID))
_plans: dict[str, tuple[str, list]] = {}


def _plan(connection) -> tuple[str, list]:
    """Return (sql, [(alias, model, attnames, converters by position)]) for the connection's
    vendor."""
    plan = _plans.get(connection.vendor)
    if plan is not None:
        return plan
    q = connection.ops.quote_name
    columns, parts = [], []
    for alias, model in _JOINED:
        fields = [f for f in model._meta.concrete_fields if f.name not in _SKIP.get(model, ())]
        converters = []
        for field in fields:
            col = Col(alias, field)
            converters.append(
                connection.ops.get_db_converters(col) + col.get_db_converters(connection)
            )
            columns.append(f"{q(alias)}.{q(field.column)}")
        # Only the columns that have converters, by position.
        converters = [(i, chain) for i, chain in enumerate(converters) if chain]
        parts.append((alias, model, [f.attname for f in fields], converters))
    role = Membership._meta.get_field("role").column

    def col(alias: str, column: str) -> str:
        return f"{q(alias)}.{q(column)}"

    def table(model, alias: str) -> str:
        return f"{q(model._meta.db_table)} {q(alias)}"

    # SECURITY: only identifiers from model metadata, quoted; the digest is a bound parameter.
    joins = (
        f"FROM {table(ApiKey, 'k')} "
        f"JOIN {table(Tenant, 't')} ON {col('t', 'id')} = {col('k', 'tenant_id')} "
        f"LEFT JOIN {table(User, 'u')} ON {col('u', 'id')} = {col('k', 'user_id')} "
        f"LEFT JOIN {table(ServiceID, 's')} ON {col('s', 'id')} = {col('k', 'service_id_id')} "
        f"LEFT JOIN {table(Membership, 'm')} ON {col('m', 'user_id')} = {col('k', 'user_id')} "
        f"AND {col('m', 'tenant_id')} = {col('k', 'tenant_id')} "
    )
    state = _state_sql(connection, col)
    sql = (
        f"SELECT {', '.join(columns)}, {col('m', role)}, {state} {joins}"  # noqa: S608
        f"WHERE {col('k', 'digest')} = %s"
    )
    # True while the key is in the state it was found in (see key_unchanged).
    _guards[connection.vendor] = f"(SELECT {state} {joins}WHERE {col('k', 'id')} = %s) = %s"
    _plans[connection.vendor] = (sql, parts)
    return sql, parts


_guards: dict[str, str] = {}
# Every column refusal_reason and the owner's role read: a key found again with the same
# fingerprint would get the same answer (at the same time, from the same address).
_STATE = (
    ("k", "revoked_at"),
    ("k", "expires_at"),
    ("k", "scopes"),
    ("k", "allowed_ips"),
    ("k", "user_id"),
    ("k", "service_id_id"),
    ("k", "tenant_id"),
    ("k", "rate"),
    ("k", "approval"),
    ("t", "is_active"),
    ("t", "allowed_ips"),
    ("t", "key_rate"),
    ("u", "is_active"),
    ("m", "role"),
    ("s", "is_active"),
    ("s", "role"),
    ("s", "tenant_id"),
)


def _state_sql(connection, col) -> str:
    """The fingerprint of a found key's state (PostgreSQL: md5 of the row of _STATE; SQLite,
    where keys are not kept in memory: a constant)."""
    if connection.vendor != "postgresql":
        return "''"
    return "md5(row(" + ", ".join(col(alias, column) for alias, column in _STATE) + ")::text)"


def key_unchanged(key: ApiKey) -> tuple[str, list]:
    """Return (SQL condition, parameters): true while ``key``'s state, as checked when it was
    found, still holds in the database. ``audit`` writes a remembered key's request event under
    this condition, so a response is only served if the key was still good when it committed."""
    conn = connections[DEFAULT_DB_ALIAS]
    _plan(conn)
    return _guards[conn.vendor], [key.pk, key.state_fingerprint]


def _fetch(conn, sql: str, digest: bytes):
    # Prepared: planning this five-table join cost ~0.25 ms of its ~0.33 ms.
    with prepared_cursor(conn) as cursor:
        cursor.execute(sql, [digest])
        return cursor.fetchone()


def key_by_digest(digest: bytes) -> tuple[ApiKey, str | None] | None:
    """Return (key with tenant, user and service ID attached, owner's role: a person's in the
    tenant or None, a service ID's own), or None when no key has this digest. One query."""
    conn = connections[DEFAULT_DB_ALIAS]
    sql, parts = _plan(conn)
    try:
        row = _fetch(conn, sql, digest)
    except (InterfaceError, OperationalError):
        if conn.in_atomic_block:
            raise
        # The kept connection died while idle (database restart, failover, a proxy's timeout):
        # this read is the request's first query, so it reconnects and retries once, instead of
        # a health-check round trip before every request (CONN_HEALTH_CHECKS).
        conn.close()
        row = _fetch(conn, sql, digest)
    if row is None:
        return None
    objects, at = {}, 0
    for alias, model, attnames, converters in parts:
        values = list(row[at : at + len(attnames)])
        at += len(attnames)
        if values[0] is None:  # the LEFT JOIN found no user / service ID
            objects[alias] = None
            continue
        for i, chain in converters:
            for convert in chain:
                values[i] = convert(values[i], None, conn)
        objects[alias] = model.from_db(conn.alias, attnames, values)
    key = objects["k"]
    key.tenant = objects["t"]
    key.user = objects["u"]
    key.service_id = objects["s"]
    key.state_fingerprint = row[at + 1]
    if key.service_id is not None:
        key.service_id.tenant = key.tenant
        return key, key.service_id.role
    return key, row[at]


# Keys found valid lately, kept per process (PostgreSQL, fail-closed audit only): a request
# with one costs no lookup, and its audit event is written only if the key is still in the
# state it was found in (key_unchanged), in the same statement. So a key revoked, narrowed,
# expired early or moved to another role is served nothing once that change has committed.
KEY_MEMORY = 60  # seconds a found key is kept
_known: dict[bytes, tuple[float, ApiKey, str | None]] = {}  # digest -> (until, key, role)


def known_key(digest: bytes) -> tuple[ApiKey, str | None] | None:
    """Return a copy of the key this process found for ``digest`` lately, and its role."""
    seen = _known.get(digest)
    if seen is None or seen[0] < time.monotonic():
        return None
    return copy.copy(seen[1]), seen[2]


def remember_key(digest: bytes, key: ApiKey, role: str | None) -> None:
    """Keep a key that was just found valid (see KEY_MEMORY)."""
    if len(_known) > MAX_MARKS // 10:
        _known.clear()
    _known[digest] = (time.monotonic() + KEY_MEMORY, copy.copy(key), role)


def forget_key(digest: bytes) -> None:
    """Drop a kept key (its state changed)."""
    _known.pop(digest, None)


def forget_token(token: str) -> None:
    """Drop the kept key of ``token``, if any."""
    forget_key(tokens.digest(token))


def refusal_reason(key: ApiKey, role: str | None, ip: str | None, now: datetime) -> str | None:
    """Return why ``key`` (as found by ``key_by_digest``, with its owner's ``role``) may not be
    used from ``ip`` at ``now``, or None if it may."""
    if key.revoked_at is not None:
        if key.revoked_reason == Reason.SUCCESSOR_USED:
            return Reason.SUCCESSOR_USED
        return Reason.REVOKED
    if key.approval == Approval.PENDING:
        return Reason.PENDING_APPROVAL
    if key.is_expired(now):  # a rotated key's grace period ends at its expires_at
        return Reason.ROTATED if key.rotated_at else Reason.EXPIRED
    if not key.tenant.is_active:
        return Reason.TENANT_INACTIVE
    if key.user_id is not None:
        if not key.user.is_active:
            return Reason.OWNER_INACTIVE
        if role is None:  # removed from the tenant since the key was issued
            return Reason.OWNER_NOT_MEMBER
    elif not key.service_id.is_active or key.service_id.tenant_id != key.tenant_id:
        return Reason.SERVICE_ID_DISABLED
    if not ip_allowed(ip, key.allowed_ips or []):
        return Reason.IP_NOT_ALLOWED_BY_KEY
    if not ip_allowed(ip, key.tenant.allowed_ips or []):
        return Reason.IP_NOT_ALLOWED_BY_TENANT
    return None


# Refusals that hold for good: a digest no key has (a guess, or a key deleted), a key revoked or
# past its expiry. Remembered per process for a minute, so a client retrying a dead key, or a
# guesser repeating a guess, costs no lookup.
_FINAL = frozenset(
    {Reason.UNKNOWN, Reason.REVOKED, Reason.EXPIRED, Reason.ROTATED, Reason.SUCCESSOR_USED}
)
REFUSAL_MEMORY = 60  # seconds
_refused: dict[bytes, tuple[float, str, ApiKey | None]] = {}  # digest -> (until, reason, key)


def known_refusal(digest: bytes) -> tuple[str, ApiKey | None] | None:
    """Return the final refusal this process remembers for ``digest`` and the key it names
    (None for a digest no key has), if any."""
    seen = _refused.get(digest)
    if seen is None or seen[0] < time.monotonic():
        return None
    return seen[1], seen[2]


def remember_refusal(digest: bytes, reason: str, key: ApiKey | None = None) -> str:
    """Remember ``reason`` (and the refused ``key``) for ``digest`` if it holds for good; return
    the reason. The key keeps naming its tenant and itself in the audit events of retries."""
    if reason in _FINAL:
        if len(_refused) > MAX_MARKS:
            _refused.clear()
        _refused[digest] = (time.monotonic() + REFUSAL_MEMORY, reason, key)
    return reason


_marked: dict[int, float] = {}  # key id -> when this process last marked it used


def mark_used(key: ApiKey, ip: str | None) -> None:
    """Record the last use at most once a minute per key: a shared cache op at most once a
    minute per key and process, and one UPDATE at most once a minute per key."""
    now = time.monotonic()
    last = _marked.get(key.pk)
    if last is not None and now - last < LAST_USED_INTERVAL:
        return
    if len(_marked) > MAX_MARKS:
        _marked.clear()
    _marked[key.pk] = now
    if ratelimit.add(f"kw:lu:{key.pk}", LAST_USED_INTERVAL):
        used_at = timezone.now()
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=used_at, last_used_ip=ip)
        key.last_used_at, key.last_used_ip = used_at, ip


def forget_marks() -> None:
    """Forget this process's last-use marks, remembered refusals and kept keys (tests)."""
    _marked.clear()
    _refused.clear()
    _known.clear()
