"""Usage, rolled up from the audit log by ``keys_maintain``: daily counts, client addresses,
scopes used and networks per key; the first use of a key from a network is an event.

Never written on the request path: the API records one event per request, and this reads them.
"""

import ipaddress
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Max

import audit
from audit.models import AuditEvent
from audit.services import Actor
from common.request import RequestContext
from keys import conf, notifications
from keys.models import (
    ApiKey,
    KeyClientIP,
    KeyNetwork,
    KeyScopeUse,
    KeyUsageDay,
    RollupState,
)
from keys.selectors import REQUEST_ACTIONS, USAGE_ROLLUP
from keys.services.issue import _now

ROLLUP = USAGE_ROLLUP
ROLLUP_BATCH = 5000
ACTOR_LABEL = "keys_maintain"


def _system() -> Actor:
    """The actor of the lifecycle jobs' events."""
    return Actor.system(ACTOR_LABEL)


def network_of(ip: str) -> str | None:
    """Return the network a client address belongs to for new-network alerts: its /24 (IPv4)
    or /64 (IPv6), or None for something that is not an address."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    prefix = 24 if address.version == 4 else 64
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def _state() -> None:
    if not RollupState.objects.filter(name=ROLLUP).exists():
        try:
            with transaction.atomic():
                RollupState.objects.create(name=ROLLUP)
        except IntegrityError:  # another host created it first
            pass


def keys_usage_rollup(
    *,
    now: datetime | None = None,
    window: timedelta | None = None,
    batch: int = ROLLUP_BATCH,
) -> int:
    """Count the ``api.request``/``api.denied`` events recorded since the last run into daily
    counts, client addresses, used scopes and networks per key; return how many were counted.

    Incremental: the last event id read is kept in ``RollupState``, whose row lock (SKIP LOCKED)
    lets one host roll up at a time. Events younger than ``window`` (default
    KEYWARD_USAGE_ROLLUP_DELAY seconds) wait for the next run, so a
    slower transaction that took a lower id is never passed over (as ``audit_seal`` does). The
    first use of a key from a network records ``key.new_network`` (and e-mails its owner when the
    key has ``alert_on_new_network``) in the same transaction as the counts.
    """
    now = now or _now()
    if window is None:
        window = timedelta(seconds=conf.settings.USAGE_ROLLUP_DELAY)
    _state()
    counted = 0
    while True:
        with transaction.atomic():
            state = (
                RollupState.objects.select_for_update(skip_locked=True).filter(name=ROLLUP).first()
            )
            if state is None:
                return counted  # another host is rolling up right now
            last = state.last_event_id
            young = (
                AuditEvent.objects.filter(id__gt=last, occurred_at__gt=now - window)
                .order_by("id")
                .values_list("id", flat=True)
                .first()
            )
            if young is not None:
                upto = young - 1
            else:
                upto = AuditEvent.objects.filter(id__gt=last).aggregate(top=Max("id"))["top"]
            if upto is None or upto <= last:
                return counted
            rows = list(
                AuditEvent.objects.filter(
                    id__gt=last,
                    id__lte=upto,
                    action__in=REQUEST_ACTIONS,
                    target_kind=ApiKey.audit_kind,
                )
                .order_by("id")
                .values_list("id", "occurred_at", "action", "target_id", "ip", "metadata")[:batch]
            )
            more = len(rows) == batch
            _roll_up(rows)
            state.last_event_id = rows[-1][0] if more else upto
            state.updated_at = now
            state.save(update_fields=["last_event_id", "updated_at"])
        counted += len(rows)
        if not more:
            return counted


def _roll_up(rows) -> None:
    days: dict = defaultdict(lambda: [0, 0])
    ips: dict = {}
    scopes: dict = {}
    networks: dict = {}
    for _id, at, action, target_id, ip, metadata in rows:
        if not target_id.isdigit():
            continue
        key_id = int(target_id)
        counts = days[(key_id, at.astimezone(UTC).date())]
        counts[0] += 1
        if action == "api.denied":
            counts[1] += 1
        else:
            # SECURITY: only a request that passed HasScope carries the scopes it was granted.
            for scope in (metadata or {}).get("scopes") or ():
                seen = scopes.setdefault((key_id, str(scope)[:64]), [at, at])
                seen[1] = at
        if ip:
            seen = ips.setdefault((key_id, ip), [at, at, 0])
            seen[1] = at
            seen[2] += 1
            network = network_of(ip)
            if network is not None:
                networks.setdefault((key_id, network), (at, ip))
    key_ids = {key_id for key_id, _ in days}
    live = set(ApiKey.objects.filter(pk__in=key_ids).values_list("pk", flat=True))
    _save_days({k: v for k, v in days.items() if k[0] in live})
    _save_ips({k: v for k, v in ips.items() if k[0] in live})
    _save_scopes({k: v for k, v in scopes.items() if k[0] in live})
    _save_networks({k: v for k, v in networks.items() if k[0] in live})


def _existing(model, field: str, pairs) -> dict:
    if not pairs:
        return {}
    rows = model.objects.filter(
        key_id__in={k for k, _ in pairs}, **{f"{field}__in": {v for _, v in pairs}}
    )
    return {(row.key_id, getattr(row, field)): row for row in rows}


def _save_days(days: dict) -> None:
    existing = _existing(KeyUsageDay, "day", days)
    new, changed = [], []
    for (key_id, day), (requests, denied) in days.items():
        row = existing.get((key_id, day))
        if row is None:
            new.append(KeyUsageDay(key_id=key_id, day=day, requests=requests, denied=denied))
        else:
            row.requests += requests
            row.denied += denied
            changed.append(row)
    KeyUsageDay.objects.bulk_create(new)
    KeyUsageDay.objects.bulk_update(changed, ["requests", "denied"])


def _save_ips(ips: dict) -> None:
    existing = _existing(KeyClientIP, "ip", ips)
    new, changed = [], []
    for (key_id, ip), (first, last, count) in ips.items():
        row = existing.get((key_id, ip))
        if row is None:
            new.append(
                KeyClientIP(
                    key_id=key_id, ip=ip, first_seen_at=first, last_seen_at=last, requests=count
                )
            )
        else:
            row.first_seen_at = min(row.first_seen_at, first)
            row.last_seen_at = max(row.last_seen_at, last)
            row.requests += count
            changed.append(row)
    KeyClientIP.objects.bulk_create(new)
    KeyClientIP.objects.bulk_update(changed, ["first_seen_at", "last_seen_at", "requests"])


def _save_scopes(scopes: dict) -> None:
    existing = _existing(KeyScopeUse, "scope", scopes)
    new, changed = [], []
    for (key_id, scope), (first, last) in scopes.items():
        row = existing.get((key_id, scope))
        if row is None:
            new.append(
                KeyScopeUse(key_id=key_id, scope=scope, first_used_at=first, last_used_at=last)
            )
        else:
            row.first_used_at = min(row.first_used_at, first)
            row.last_used_at = max(row.last_used_at, last)
            changed.append(row)
    KeyScopeUse.objects.bulk_create(new)
    KeyScopeUse.objects.bulk_update(changed, ["first_used_at", "last_used_at"])


def _known_networks(keys: dict) -> dict[int, set[str]]:
    """Return, per key, the networks it or a key it was rotated from was seen from before."""
    lineage: dict[int, list[int]] = {}
    for key in keys.values():
        chain, parent = [key.pk], key.rotated_from_id
        while parent is not None and len(chain) < 100:
            chain.append(parent)
            parent = ApiKey.objects.filter(pk=parent).values_list("rotated_from_id", flat=True)[0]
        lineage[key.pk] = chain
    seen: dict[int, set[str]] = defaultdict(set)
    all_ids = {k for chain in lineage.values() for k in chain}
    for key_id, network in KeyNetwork.objects.filter(key_id__in=all_ids).values_list(
        "key_id", "network"
    ):
        seen[key_id].add(network)
    return {pk: set().union(*(seen[k] for k in chain)) for pk, chain in lineage.items()}


def _save_networks(networks: dict) -> None:
    """Keep the first sighting of each (key, network); record ``key.new_network`` (and alert)
    for a network the key, or the keys it was rotated from, was not seen from before. A key's
    very first network is where it was put to use, not a new one: it is kept, not reported."""
    existing = _existing(KeyNetwork, "network", networks)
    fresh = {k: v for k, v in networks.items() if k not in existing}
    if not fresh:
        return
    keys = ApiKey.objects.select_related("tenant", "user", "service_id").in_bulk(
        {key_id for key_id, _ in fresh}
    )
    known = _known_networks(keys)
    KeyNetwork.objects.bulk_create(
        KeyNetwork(key_id=key_id, network=network, first_seen_at=at, first_ip=ip)
        for (key_id, network), (at, ip) in fresh.items()
    )
    for (key_id, network), (at, ip) in sorted(fresh.items(), key=lambda item: item[1][0]):
        key, seen = keys[key_id], known[key_id]
        if network in seen:
            continue  # a key it was rotated from was seen there
        first_ever = not seen
        seen.add(network)
        if first_ever:
            continue
        recipients = notifications.key_contacts(key) if key.alert_on_new_network else []
        audit.record(
            "key.new_network",
            actor=_system(),
            tenant=key.tenant,
            target=key,
            context=RequestContext(ip=ip),  # where the key was first seen from
            metadata={
                "network": network,
                "first_seen_at": at.isoformat(),
                "alerted": recipients,
            },
        )
        if recipients:
            notifications.new_network(key, network, ip, recipients)
