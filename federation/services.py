"""Token exchange (RFC 8693), introspection (RFC 7662) and revocation (RFC 7009).

Every exchange is recorded (``token.exchanged``, with the key and the ``jti``), and so is every
refused one (``token.exchange_refused``, with the reason), except from an address refused for
its failures: failed exchanges count against the same per-address limit as failed API
authentications.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import transaction
from django.utils import timezone

import audit
from accounts.models import Membership
from audit import conf as audit_conf
from audit.actions import Outcome
from audit.services import Actor, ConditionFailed, record_request
from common.request import RequestContext
from federation import conf, revocation
from federation import tokens as jwts
from federation.models import RevokedToken
from keys import tokens
from keys.lookup import (
    Reason,
    forget_key,
    key_by_digest,
    key_unchanged,
    known_key,
    mark_used,
    refusal_reason,
    remember_key,
)
from keys.models import ApiKey
from keys.scopes import ceiling_for
from keys.throttling import failures

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
MAX_AUDIENCE_CHARS = 300

UNSUPPORTED_GRANT = "Only the token exchange grant (RFC 8693) is supported."
UNSUPPORTED_SUBJECT_TYPE = "subject_token_type must be access_token (a Keyward key) or id_token."
UNSUPPORTED_REQUESTED_TYPE = "Keyward exchanges a credential only for a JWT."
JWT_NOT_EXCHANGEABLE = "A Keyward JWT cannot be exchanged: exchange the key it came from."
INVALID_SUBJECT = "The subject token is invalid, expired or revoked."
SCOPE_TOO_WIDE = "The scope asked for is not within what the subject token may grant."
NO_SCOPE_LEFT = "The subject token grants no scope its owner's role still allows."
BAD_AUDIENCE = "audience must be one URI or name of at most 300 characters, without spaces."
TOO_MANY_FAILURES = "Too many failed exchanges from your address: try again later."

# An introspecting resource server cannot vouch for the address a token came from.
_IP_REASONS = frozenset({Reason.IP_NOT_ALLOWED_BY_KEY, Reason.IP_NOT_ALLOWED_BY_TENANT})


class OAuthError(Exception):
    """An RFC 6749 error answer: ``error``, ``description`` (to the client), HTTP ``status``;
    ``reason`` goes only to the audit log."""

    def __init__(self, error: str, description: str, *, status: int = 400, reason: str = ""):
        super().__init__(description)
        self.error, self.description, self.status = error, description, status
        self.reason = reason or error
        self.retry_after: int | None = None


@dataclass(frozen=True, slots=True)
class Exchanged:
    access_token: str
    expires_in: int
    scope: str
    claims: dict


def subject_of(key) -> str:
    """Return the ``sub`` of a key's owner: ``user:<id>`` or ``service_id:<id>``."""
    return f"user:{key.user_id}" if key.user_id else f"service_id:{key.service_id_id}"


def lifetime_seconds(tenant, not_after: datetime | None, now: datetime) -> int:
    """Return a new token's lifetime: the tenant's policy (1..15 minutes), never past
    ``not_after`` (the key's own expiry)."""
    minutes = min(tenant.max_token_lifetime_minutes, conf.settings.JWT_MAX_LIFETIME_MINUTES)
    seconds = max(60, minutes * 60)
    if not_after is not None:
        seconds = min(seconds, int((not_after - now).total_seconds()))
    return seconds


def narrow_scopes(allowed: set[str], requested: str | None) -> list[str]:
    """Return the scopes to grant: ``requested`` (space-separated) if within ``allowed``, else
    raise ``invalid_scope``; all of ``allowed`` when nothing is asked for."""
    asked = set((requested or "").split())
    if asked - allowed:
        raise OAuthError("invalid_scope", SCOPE_TOO_WIDE, reason="scope_too_wide")
    granted = sorted(asked or allowed)
    if not granted:
        raise OAuthError("invalid_scope", NO_SCOPE_LEFT, reason="no_scope_left")
    return granted


def check_audience(audience: str | None, issuer: str) -> str:
    if not audience:
        return issuer
    if len(audience) > MAX_AUDIENCE_CHARS or not audience.isprintable() or " " in audience:
        raise OAuthError("invalid_target", BAD_AUDIENCE, reason="bad_audience")
    return audience


def record_exchange(
    action: str, *, actor, tenant, target, context, metadata, outcome=None, condition=None
):
    """Commit an exchange's event before the answer leaves, as an API request's is (it changes
    no row: KEYWARD_AUDIT_SYNCHRONOUS_COMMIT applies); raise AuditUnavailable (the view
    answers 503 and hands out no token) when it cannot be, and ConditionFailed when
    ``condition`` (a remembered key still as found) no longer holds."""
    record_request(
        action,
        actor=actor,
        tenant=tenant,
        target=target,
        outcome=outcome or Outcome.SUCCESS,
        context=context,
        metadata=metadata,
        condition=condition,
    )


def _refused(error: OAuthError, *, context: RequestContext, key=None, guess: bool = False):
    """Record a refused exchange (unless the address is refused already), then raise it.

    SECURITY: a refusal without a known key (``guess``) counts against the address, as a failed
    API authentication does, so a flood of bad subject tokens is bounded in events too."""
    blocked = failures.blocked_for(context.ip)
    if blocked is None and guess:
        blocked = failures.count(context.ip)
    elif blocked is not None:
        refusal = OAuthError("slow_down", TOO_MANY_FAILURES, status=429)
        refusal.retry_after = blocked
        raise refusal
    record_exchange(
        "token.exchange_refused",
        actor=key if key is not None else Actor.anonymous(context.user_agent),
        tenant=key.tenant if key is not None else None,
        target=key,
        outcome=Outcome.DENIED,
        context=context,
        metadata={"reason": error.reason},
    )
    raise error


def token_exchange(
    *,
    subject_token: str,
    subject_token_type: str,
    requested_token_type: str | None,
    scope: str | None,
    audience: str | None,
    issuer: str,
    context: RequestContext,
) -> Exchanged:
    """Exchange a Keyward key for a JWT (RFC 8693). Records ``token.exchanged``, or
    ``token.exchange_refused`` with the reason; raises OAuthError."""
    if requested_token_type not in (None, "", jwts.JWT_TYPE, jwts.ACCESS_TOKEN_TYPE):
        raise OAuthError("invalid_request", UNSUPPORTED_REQUESTED_TYPE)
    if subject_token_type == jwts.ID_TOKEN_TYPE:
        from federation.trusts import id_token_exchange

        return id_token_exchange(
            id_token=subject_token, scope=scope, audience=audience, issuer=issuer, context=context
        )
    if subject_token_type != jwts.ACCESS_TOKEN_TYPE:
        raise OAuthError("invalid_request", UNSUPPORTED_SUBJECT_TYPE)
    if jwts.looks_like_jwt(subject_token):
        # SECURITY: a JWT never renews itself into another one: its key must be presented.
        _refused(
            OAuthError("invalid_grant", JWT_NOT_EXCHANGEABLE, reason="jwt_not_exchangeable"),
            context=context,
            guess=True,
        )
    parsed = tokens.parse(subject_token)
    if parsed is None:
        _refused(
            OAuthError("invalid_grant", INVALID_SUBJECT, reason=Reason.MALFORMED),
            context=context,
            guess=True,
        )
    digest = tokens.digest(parsed.token)
    # A key this process found valid lately costs no lookup: the exchange's event is written
    # only if the key is still as it was found, in the same statement (keys/lookup.py), so an
    # exchange of a key revoked, narrowed or moved since hands out nothing. If it changed, the
    # key is looked up afresh and the exchange decided again.
    remembering = audit_conf.settings.AUDIT_FAIL_CLOSED
    try:
        return _exchange_key(digest, scope, audience, issuer, context, remembering)
    except ConditionFailed:
        forget_key(digest)
        return _exchange_key(digest, scope, audience, issuer, context, remembering=False)


def _subject_key(digest: bytes, ip, now, remembering: bool) -> tuple[ApiKey, str | None, bool]:
    """Return (key, its owner's role, whether it came from the process's memory) for a subject
    token's digest; refuse an unknown one."""
    found = known_key(digest) if remembering else None
    if found is not None and refusal_reason(found[0], found[1], ip, now) is None:
        return found[0], found[1], True
    if found is not None:
        forget_key(digest)  # refused now (expired, another address): look it up afresh
    found = key_by_digest(digest)
    if found is None:
        return None, None, False
    key, role = found
    if remembering and key.state_fingerprint and refusal_reason(key, role, ip, now) is None:
        remember_key(digest, key, role)
    return key, role, False


def _exchange_key(digest, scope, audience, issuer, context, remembering: bool) -> Exchanged:
    now = timezone.now()
    key, role, remembered = _subject_key(digest, context.ip, now, remembering)
    if key is None:
        _refused(
            OAuthError("invalid_grant", INVALID_SUBJECT, reason=Reason.UNKNOWN),
            context=context,
            guess=True,
        )
    reason = refusal_reason(key, role, context.ip, now)
    if reason is not None:
        _refused(
            OAuthError("invalid_grant", INVALID_SUBJECT, reason=reason), context=context, key=key
        )
    try:
        granted = narrow_scopes(set(key.scopes) & ceiling_for(role), scope)
        audience = check_audience(audience, issuer)
    except OAuthError as error:
        _refused(error, context=context, key=key)
    lifetime = lifetime_seconds(key.tenant, key.expires_at, now)
    token, claims = jwts.mint(
        issuer=issuer,
        audience=audience,
        subject=subject_of(key),
        tenant=key.tenant,
        scopes=granted,
        role=role,
        key_id=key.pk,
        client_id=f"key:{key.pk}",
        lifetime=lifetime,
        allowed_ips=key.allowed_ips,
        now=now.timestamp(),
    )
    record_exchange(
        "token.exchanged",
        actor=key,
        tenant=key.tenant,
        target=key,
        context=context,
        metadata={
            "jti": claims["jti"],
            "key_id": key.pk,
            "aud": audience,
            "scope": claims["scope"],
            "expires_in": lifetime,
        },
        condition=key_unchanged(key) if remembered else None,
    )
    mark_used(key, context.ip)
    return Exchanged(token, lifetime, claims["scope"], claims)


# --- Introspection and revocation -----------------------------------------------------------

INACTIVE = {"active": False}


def _key_with_role(key_id: int) -> tuple[ApiKey, str | None] | None:
    key = ApiKey.objects.select_related("tenant", "user", "service_id").filter(pk=key_id).first()
    if key is None:
        return None
    if key.service_id_id is not None:
        return key, key.service_id.role
    role = (
        Membership.objects.filter(user_id=key.user_id, tenant_id=key.tenant_id)
        .values_list("role", flat=True)
        .first()
    )
    return key, role


def _usable(key: ApiKey, role: str | None, now: datetime) -> bool:
    reason = refusal_reason(key, role, None, now)
    return reason is None or reason in _IP_REASONS


def token_introspect(*, token: str, tenant, issuer: str) -> dict:
    """Describe ``token`` (a Keyward key or a Keyward JWT) to a resource server of ``tenant``
    (RFC 7662): ``{"active": false}`` for anything else, another tenant's included."""
    now = timezone.now()
    if jwts.looks_like_jwt(token):
        return _introspect_jwt(token, tenant=tenant, issuer=issuer, now=now)
    parsed = tokens.parse(token)
    found = key_by_digest(tokens.digest(parsed.token)) if parsed is not None else None
    if found is None:
        return INACTIVE
    key, role = found
    if key.tenant_id != tenant.pk or not _usable(key, role, now):
        return INACTIVE
    answer = {
        "active": True,
        "scope": " ".join(sorted(set(key.scopes) & ceiling_for(role))),
        "sub": subject_of(key),
        "tenant": key.tenant.slug,
        "client_id": f"key:{key.pk}",
        "token_type": "Bearer",
        "key_id": key.pk,
    }
    if key.expires_at is not None:
        answer["exp"] = int(key.expires_at.timestamp())
    return answer


def _introspect_jwt(token: str, *, tenant, issuer: str, now: datetime) -> dict:
    try:
        claims = jwts.verify(token, issuer=issuer, audience=None)
    except jwts.InvalidJWT:
        return INACTIVE
    if claims.tenant_id != tenant.pk:
        return INACTIVE
    if RevokedToken.objects.filter(jti=claims.jti).exists():
        return INACTIVE
    if claims.key_id is not None:
        found = _key_with_role(claims.key_id)
        if found is None or not _usable(*found, now):
            return INACTIVE
    else:
        from federation.trusts import trust_still_usable

        if not trust_still_usable(claims):
            return INACTIVE
    return {
        "active": True,
        "scope": " ".join(claims.scopes),
        "exp": claims.exp,
        "iat": claims.iat,
        "sub": claims.sub,
        "aud": claims.aud,
        "jti": claims.jti,
        "tenant": claims.tenant,
        "client_id": claims.client_id,
        "token_type": "Bearer",
        "key_id": claims.key_id,
    }


def token_revoke(*, token: str, issuer: str, context: RequestContext) -> None:
    """Revoke a Keyward JWT by its ``jti`` until it expires (RFC 7009). Anything else, or a
    token already revoked or expired, is left alone: the caller answers 200 either way.
    Records ``token.revoked``."""
    if not jwts.looks_like_jwt(token):
        return
    try:
        claims = jwts.verify(token, issuer=issuer, audience=None)
    except jwts.InvalidJWT:
        return
    expires_at = datetime.fromtimestamp(claims.exp, tz=UTC)
    with transaction.atomic():
        revoked, created = RevokedToken.objects.get_or_create(
            jti=claims.jti,
            defaults={
                "tenant_id": claims.tenant_id,
                "key_id": claims.key_id,
                "expires_at": expires_at,
            },
        )
        if not created:
            return
        audit.record(
            "token.revoked",
            actor=Actor.anonymous("holder of the token"),
            tenant=revoked.tenant,
            target=revoked,
            context=context,
            metadata={"jti": claims.jti, "key_id": claims.key_id, "sub": claims.sub},
        )
        transaction.on_commit(lambda: revocation.revoke_jti(claims.jti, claims.exp))


def revoked_tokens_prune(now: datetime | None = None) -> int:
    """Delete the revocations of tokens that have expired; return how many."""
    deleted, _ = RevokedToken.objects.filter(expires_at__lte=now or timezone.now()).delete()
    return deleted
