"""Tenant-scoped reads of keys: the only code that turns a role into a key filter."""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import F, Q, Value
from django.http import Http404
from django.utils import timezone

from accounts import roles
from accounts.models import Membership, ServiceID
from accounts.principals import Principal
from audit.models import AuditEvent
from keys.models import (
    EXPIRING_SOON,
    ApiKey,
    Approval,
    KeyClientIP,
    KeyScopeUse,
    KeyStatus,
    KeyUsageDay,
)
from keys.scopes import describe

NO_SUCH_KEY = "No such key."
# A scope no request of a key (or of the keys it was rotated from) used for this long is unused:
# the key review flags it, and narrowing removes it.
UNUSED_SCOPE_DAYS = 90
# The audit actions of API requests made with a key, which keys_maintain rolls up into usage.
REQUEST_ACTIONS = ("api.request", "api.denied")
USAGE_ROLLUP = "key-usage"  # its RollupState row


def key_list(principal: Principal):
    """Return the keys ``principal`` may see: its own; with keys.manage_all, the tenant's."""
    keys = ApiKey.objects.for_tenant(principal.tenant).select_related("user", "service_id")
    if not roles.may(principal.role, roles.Action.KEYS_MANAGE_ALL):
        own = Q(user=principal.user) if principal.user else Q(service_id=principal.service_id)
        keys = keys.filter(own)
    return keys.order_by("-created_at", "-id")


def key_get(principal: Principal, pk) -> ApiKey:
    """Return one key ``principal`` may see, or raise Http404 (also for other tenants' keys)."""
    try:
        return key_list(principal).get(pk=pk)
    except (ApiKey.DoesNotExist, ValueError, TypeError):
        raise Http404(NO_SUCH_KEY) from None


def key_list_for_service_id(principal: Principal, service_id: ServiceID):
    """Return a service ID's keys (the service ID must belong to the principal's tenant)."""
    if service_id.tenant_id != principal.tenant.pk:
        raise Http404("No such service ID.")
    return (
        ApiKey.objects.for_tenant(principal.tenant)
        .filter(service_id=service_id)
        .order_by("-created_at", "-id")
    )


def key_list_for_member(principal: Principal, membership: Membership):
    """Return the personal access tokens of ``membership``'s person in the tenant that still
    work: those removing the person revokes."""
    if membership.tenant_id != principal.tenant.pk:
        raise Http404("No such member.")
    return (
        ApiKey.objects.for_tenant(principal.tenant)
        .usable()
        .filter(user_id=membership.user_id)
        .order_by("-created_at", "-id")
    )


def _check_tenant(principal: Principal, key: ApiKey) -> None:
    if key.tenant_id != principal.tenant.pk:
        raise Http404(NO_SUCH_KEY)


def key_list_personal(principal: Principal):
    """Return the principal's own personal access tokens, newest first."""
    if principal.user is None:
        return ApiKey.objects.none()
    return (
        ApiKey.objects.for_tenant(principal.tenant)
        .filter(user=principal.user)
        .order_by("-created_at", "-id")
    )


def key_recent_events(principal: Principal, key: ApiKey, limit: int = 20):
    """Return the latest audit events about ``key``, newest first (Http404 for another tenant's)."""
    _check_tenant(principal, key)
    return (
        AuditEvent.objects.for_tenant(principal.tenant)
        .filter(target_kind=ApiKey.audit_kind, target_id=str(key.pk))
        .order_by("-id")[:limit]
    )


# --- Usage and least privilege (rolled up by keys_maintain) ---------------------------------

USAGE_DAYS = 30
RECENT_REQUESTS = 50
CLIENT_IPS = 100
REVIEW_DENIED = "Your role does not allow reviewing the tenant's keys."


@dataclass(frozen=True)
class UsageDay:
    day: date
    requests: int
    denied: int


def key_usage_days(key: ApiKey, *, days: int = USAGE_DAYS, today: date | None = None):
    """Return ``days`` UsageDay rows ending today (UTC), oldest first, zero-filled.

    The rolled-up counts plus the key's requests the rollup has not read yet (straight from the
    audit log), so that the chart never says "0 requests" above a list of them.
    """
    today = today or timezone.now().date()
    first = today - timedelta(days=days - 1)
    counts = {
        row.day: [row.requests, row.denied]
        for row in KeyUsageDay.objects.filter(key=key, day__gte=first, day__lte=today)
    }
    for day, requests, denied in _requests_not_rolled_up(key, since=first):
        if first <= day <= today:
            row = counts.setdefault(day, [0, 0])
            row[0] += requests
            row[1] += denied
    out = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        requests, denied = counts.get(day, (0, 0))
        out.append(UsageDay(day, requests, denied))
    return out


def _requests_not_rolled_up(key: ApiKey, *, since: date):
    """Yield (day, requests, denied) of ``key``'s request events after the rollup's mark."""
    from datetime import UTC

    from django.db.models import Count, Subquery
    from django.db.models.functions import Coalesce, TruncDate

    from keys.models import RollupState

    mark = RollupState.objects.filter(name=USAGE_ROLLUP).values_list("last_event_id", flat=True)
    rows = (
        AuditEvent.objects.filter(
            tenant_id=key.tenant_id,
            target_kind=ApiKey.audit_kind,
            target_id=str(key.pk),
            action__in=REQUEST_ACTIONS,
            id__gt=Coalesce(Subquery(mark[:1]), 0),
            occurred_at__date__gte=since,
        )
        .annotate(day=TruncDate("occurred_at", tzinfo=UTC))
        .values("day")
        .annotate(requests=Count("id"), denied=Count("id", filter=Q(action="api.denied")))
        .values_list("day", "requests", "denied")
    )
    yield from rows


def key_client_ips(key: ApiKey, limit: int = CLIENT_IPS):
    """Return the addresses ``key`` was presented from, most recently seen first."""
    return KeyClientIP.objects.filter(key=key).order_by("-last_seen_at", "ip")[:limit]


def key_scope_uses(key: ApiKey) -> dict[str, datetime]:
    """Return, per scope the key's requests were granted, when it was last used."""
    return dict(KeyScopeUse.objects.filter(key=key).values_list("scope", "last_used_at"))


def key_recent_requests(principal: Principal, key: ApiKey, limit: int = RECENT_REQUESTS):
    """Return the latest API requests made with ``key`` (denied ones too), newest first."""
    _check_tenant(principal, key)
    return (
        AuditEvent.objects.for_tenant(principal.tenant)
        .filter(target_kind=ApiKey.audit_kind, target_id=str(key.pk), action__in=REQUEST_ACTIONS)
        .order_by("-id")[:limit]
    )


def _lineage(key_id: int, parents: dict[int, int | None]) -> list[int]:
    """Return ``key_id`` and the keys it was rotated from, newest first (cycles cannot occur:
    a successor is always created after its predecessor, but stop at 100 anyway)."""
    chain = [key_id]
    while len(chain) < 100:
        parent = parents.get(chain[-1])
        if parent is None:
            break
        chain.append(parent)
    return chain


def _lineage_of(key: ApiKey) -> list[tuple[int, datetime]]:
    """Return (id, created_at) of ``key`` and the keys it was rotated from, newest first."""
    chain, current = [(key.pk, key.created_at)], key.rotated_from_id
    while current is not None and len(chain) < 100:
        row = ApiKey.objects.filter(pk=current).values_list("rotated_from_id", "created_at")[0]
        chain.append((current, row[1]))
        current = row[0]
    return chain


def key_observed_since(key: ApiKey) -> datetime:
    """Return since when ``key``'s use is known: the creation of the first key of its lineage
    (a rotation keeps watching)."""
    return _lineage_of(key)[-1][1]


def key_used_scopes(key: ApiKey, *, since: datetime) -> set[str]:
    """Return the scopes ``key``, or a key it was rotated from, was granted since ``since``.

    A rotation issues a new key with the same scopes: its predecessors' use counts, so that
    rotating often never hides an unused scope.
    """
    chain = [pk for pk, _ in _lineage_of(key)]
    return set(
        KeyScopeUse.objects.filter(key_id__in=chain, last_used_at__gte=since).values_list(
            "scope", flat=True
        )
    )


@dataclass(frozen=True)
class ScopeUse:
    """What the key page says of each scope; the one judgement the review shares."""

    rows: list[dict]
    observed_since: datetime
    judged: bool  # observed for the whole UNUSED_SCOPE_DAYS window
    judged_from: datetime  # when it will be (or was)
    narrowable: bool  # judged, some scopes used and some not
    after: list[str]  # the scopes narrowing keeps


def key_scope_use(key: ApiKey, *, now: datetime) -> ScopeUse:
    """Return each scope of ``key`` with its description, its last use and whether it was used
    in the last UNUSED_SCOPE_DAYS days; whether the key was observed long enough to judge
    (otherwise it is "too new to judge", as in the key review); and what narrowing would keep.
    """
    uses = key_scope_uses(key)
    since = now - timedelta(days=UNUSED_SCOPE_DAYS)
    used = key_used_scopes(key, since=since)
    observed_since = key_observed_since(key)
    judged = observed_since <= since
    rows = [
        {
            "scope": scope,
            "description": describe(scope),
            "last_used_at": uses.get(scope),
            "recently_used": scope in used,
            "too_new": not judged and scope not in used,
        }
        for scope in key.scopes
    ]
    after = [scope for scope in key.scopes if scope in used]
    return ScopeUse(
        rows=rows,
        observed_since=observed_since,
        judged=judged,
        judged_from=observed_since + timedelta(days=UNUSED_SCOPE_DAYS),
        narrowable=judged and 0 < len(after) < len(key.scopes),
        after=after,
    )


def key_scope_rows(key: ApiKey, *, now: datetime) -> tuple[list[dict], bool]:
    """Return ``key_scope_use``'s rows and whether narrowing is offered."""
    use = key_scope_use(key, now=now)
    return use.rows, use.narrowable


@dataclass
class ReviewedKey:
    key: ApiKey
    unused_scopes: list[str] = field(default_factory=list)
    used_scopes: list[str] = field(default_factory=list)


@dataclass
class KeyReview:
    over_scoped: list[ReviewedKey]
    no_expiry: list[ApiKey]
    orphaned: list[ApiKey]
    created_by_former_members: list[ApiKey]
    since: datetime
    too_new: list[ApiKey] = field(default_factory=list)  # not observed for the whole window


def may_review_keys(principal: Principal) -> bool:
    """Return whether ``principal`` may read the tenant's key review (key managers, auditors)."""
    return roles.may(principal.role, roles.Action.KEYS_MANAGE_ALL) or roles.may(
        principal.role, roles.Action.AUDIT_READ
    )


def key_review(principal: Principal, now: datetime | None = None) -> KeyReview:
    """Return the tenant's active keys that deserve a look: scopes unused for 90 days (keys
    observed that long, rotations included), no expiry, owner no longer a member, service keys
    issued by someone no longer a member (they saw the token).

    Raises PermissionDenied unless the role may manage every key or read the audit log.
    """
    if not may_review_keys(principal):
        raise PermissionDenied(REVIEW_DENIED)
    now = now or timezone.now()
    since = now - timedelta(days=UNUSED_SCOPE_DAYS)
    tenant = principal.tenant
    active = (
        ApiKey.objects.for_tenant(tenant)
        .active()
        .usable(now)
        .select_related("user", "service_id")
        .order_by("name", "id")
    )
    all_keys = list(
        ApiKey.objects.for_tenant(tenant).values_list("id", "rotated_from_id", "created_at")
    )
    parents = {pk: parent for pk, parent, _ in all_keys}
    created = {pk: at for pk, _, at in all_keys}
    used: dict[int, set[str]] = {}
    for key_id, scope in KeyScopeUse.objects.filter(
        key__tenant=tenant, last_used_at__gte=since
    ).values_list("key_id", "scope"):
        used.setdefault(key_id, set()).add(scope)
    over_scoped, too_new = [], []
    for key in active:
        chain = _lineage(key.pk, parents)
        if created[chain[-1]] > since:
            too_new.append(key)  # not observed for the whole window yet
            continue
        used_here = set().union(*(used.get(k, set()) for k in chain))
        unused = [s for s in key.scopes if s not in used_here]
        if unused:
            over_scoped.append(ReviewedKey(key, unused, [s for s in key.scopes if s in used_here]))
    no_expiry = [key for key in active if key.expires_at is None]
    orphaned = list(
        active.filter(user__isnull=False).filter(
            ~Q(user__memberships__tenant=tenant) | Q(user__is_active=False)
        )
    )
    # SECURITY: the person who issued a service key saw its token; it outlives their removal.
    former = Q(created_by__is_active=False) | ~Q(
        created_by__in=Membership.objects.for_tenant(tenant).values("user_id")
    )
    created_by_former_members = list(
        active.filter(service_id__isnull=False, created_by__isnull=False)
        .filter(former)
        .select_related("created_by")
    )
    return KeyReview(
        over_scoped, no_expiry, orphaned, created_by_former_members, since, too_new=too_new
    )


# --- Approvals ------------------------------------------------------------------------------

APPROVALS_DENIED = "Only the tenant's owners and admins see the keys waiting for approval."


def key_list_pending(principal: Principal):
    """Return the tenant's keys waiting for approval, oldest first (owners and admins only;
    PermissionDenied otherwise)."""
    if not roles.may(principal.role, roles.Action.KEYS_MANAGE_ALL):
        raise PermissionDenied(APPROVALS_DENIED)
    return (
        ApiKey.objects.for_tenant(principal.tenant)
        .filter(approval=Approval.PENDING, revoked_at=None)
        .select_related("user", "service_id", "created_by")
        .order_by("created_at", "id")
    )


# --- The keys list: search, filters, sort, tabs, pages ----------------------------------------

KEYS_PER_PAGE = 25
TABS = ("active", "inactive")
SORTS = {
    "newest": (F("created_at").desc(), F("id").desc()),
    "oldest": (F("created_at").asc(), F("id").asc()),
    "name": (F("name").asc(), F("id").asc()),
    "expires": (F("expires_at").asc(nulls_last=True), F("id").asc()),
    "last_used": (F("last_used_at").desc(nulls_last=True), F("id").desc()),
}
EXPIRING_CHOICES = (7, 30, 90)
BAD_STATE = "Unknown state: use one of %(states)s."


def key_state_filter(state: str, now: datetime) -> Q:
    """Return the filter of keys whose ``status(now)`` is ``state`` (a KeyStatus value), as the
    database can apply it; ValidationError for an unknown state."""
    live = Q(revoked_at=None) & ~Q(approval=Approval.PENDING)
    unexpired = Q(expires_at=None) | Q(expires_at__gt=now)
    # "expiring": inside the last EXPIRING_SOON, or the last quarter of a shorter life
    # (ApiKey.status): 4 * (expires - now) <= expires - created.
    # 4 (e - n) <= e - c  <=>  3e <= 4n - c  <=>  e <= n + (n - c) / 3
    soon = Q(expires_at__gt=now, expires_at__lte=now + EXPIRING_SOON) & Q(
        expires_at__lte=Value(now) + (Value(now) - F("created_at")) / 3
    )
    filters = {
        KeyStatus.REVOKED: ~Q(revoked_at=None),
        KeyStatus.PENDING: Q(revoked_at=None, approval=Approval.PENDING),
        KeyStatus.EXPIRED: live & Q(expires_at__lte=now),
        KeyStatus.ROTATED: live & unexpired & ~Q(rotated_at=None),
        KeyStatus.EXPIRING: live & Q(rotated_at=None) & soon,
        KeyStatus.ACTIVE: live & unexpired & Q(rotated_at=None) & ~soon,
    }
    try:
        return filters[KeyStatus(state)]
    except ValueError:
        raise ValidationError(BAD_STATE % {"states": ", ".join(KeyStatus.values)}) from None


@dataclass(frozen=True)
class KeyQuery:
    """What the keys list asks for; every field already validated (``KeyListForm``)."""

    tab: str = "active"
    q: str = ""
    status: str = ""
    owner: str = ""  # "me", "user:<id>" or "service:<id>"
    scope: str = ""
    expiring_days: int | None = None
    sort: str = "newest"
    page: int = 1


@dataclass
class KeyPage:
    keys: list
    number: int
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.number > 1


def key_search(principal: Principal, query: KeyQuery, *, now: datetime | None = None):
    """Return the keys ``principal`` may see that match ``query``, in its order."""
    now = now or timezone.now()
    keys = key_list(principal)
    if query.tab == "inactive":
        keys = keys.filter(~Q(revoked_at=None) | Q(expires_at__lte=now))
    else:
        keys = keys.filter(revoked_at=None).filter(Q(expires_at=None) | Q(expires_at__gt=now))
    if query.q:
        keys = keys.filter(Q(name__icontains=query.q) | Q(hint__icontains=query.q))
    if query.status:
        keys = keys.filter(key_state_filter(query.status, now))
    if query.owner == "me":
        keys = keys.filter(user=principal.user) if principal.user else keys.none()
    elif query.owner.startswith("user:"):
        keys = keys.filter(user_id=int(query.owner[5:]))
    elif query.owner.startswith("service:"):
        keys = keys.filter(service_id_id=int(query.owner[8:]))
    if query.scope:
        keys = keys.filter(scopes__contains=[query.scope])
    if query.expiring_days:
        keys = keys.filter(
            revoked_at=None,
            expires_at__gt=now,
            expires_at__lte=now + timedelta(days=query.expiring_days),
        )
    return keys.order_by(*SORTS.get(query.sort, SORTS["newest"]))


def key_page(principal: Principal, query: KeyQuery, *, now: datetime | None = None) -> KeyPage:
    """Return one page of ``key_search``: one query, no count (the first page costs the same
    however many keys the tenant has)."""
    start = (query.page - 1) * KEYS_PER_PAGE
    rows = list(key_search(principal, query, now=now)[start : start + KEYS_PER_PAGE + 1])
    return KeyPage(rows[:KEYS_PER_PAGE], query.page, len(rows) > KEYS_PER_PAGE)


def key_owner_choices(principal: Principal) -> list[tuple[str, str]]:
    """Return the owners the keys list can filter by: people with keys, then service IDs."""
    choices = [("me", "My keys")]
    if not roles.may(principal.role, roles.Action.KEYS_MANAGE_ALL):
        return choices
    tenant = principal.tenant
    members = (
        Membership.objects.for_tenant(tenant)
        .select_related("user")
        .order_by("user__email")
        .values_list("user_id", "user__email")
    )
    choices += [(f"user:{pk}", email) for pk, email in members]
    services = ServiceID.objects.for_tenant(tenant).order_by("name").values_list("id", "name")
    choices += [(f"service:{pk}", f"{name} (service ID)") for pk, name in services]
    return choices


def key_pending_count(principal: Principal) -> int:
    """Return how many keys wait for approval (0 for those who may not decide)."""
    if not roles.may(principal.role, roles.Action.KEYS_MANAGE_ALL):
        return 0
    return key_list_pending(principal).count()


def key_list_by_ids(principal: Principal, ids) -> list[ApiKey]:
    """Return the keys among ``ids`` that ``principal`` may see (others' ids are dropped)."""
    return list(key_list(principal).filter(pk__in=list(ids)[:500]).select_related("tenant"))


def key_list_filtered(
    principal: Principal,
    *,
    state: str | None = None,
    last_used_before: datetime | None = None,
    expires_before: datetime | None = None,
    now: datetime | None = None,
):
    """Return ``key_list`` narrowed to a state (a KeyStatus value), keys last used before a
    moment (never-used keys left out) and keys expiring before a moment."""
    now = now or timezone.now()
    keys = key_list(principal)
    if state:
        keys = keys.filter(key_state_filter(state, now))
    if last_used_before is not None:
        keys = keys.filter(last_used_at__lt=last_used_before)
    if expires_before is not None:
        keys = keys.filter(expires_at__lt=expires_before)
    return keys
