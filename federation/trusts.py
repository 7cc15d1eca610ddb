"""Keyless CI (workload identity federation): an owner trusts an OIDC issuer's ID tokens for a
service ID (issuer, audience, subject pattern); the token endpoint exchanges such an ID token
for a short-lived JWT acting for the service ID, with no stored secret.

An ID token is verified against its issuer's keys, found through the issuer's OIDC discovery
document (``<issuer>/.well-known/openid-configuration`` -> ``jwks_uri``), both cached
(KEYWARD_OIDC_CACHE_SECONDS) in the shared cache; an unknown ``kid`` fetches the JWKS again, at
most once a minute per issuer. Only asymmetric signatures (RS256, ES256) are accepted; ``exp``
and ``iat`` are required, ``jti`` is used once (replays are refused until it expires).
"""

import json
import re
import time
import urllib.request
from urllib.parse import urlsplit

import jwt
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

import audit
from accounts import roles
from accounts.models import ServiceID
from accounts.principals import Principal
from audit.actions import Outcome
from audit.services import Actor
from common.request import RequestContext
from federation import conf
from federation import tokens as jwts
from federation.models import WorkloadTrust
from keys.scopes import ceiling_for, parse_scopes
from keys.throttling import failures

ID_TOKEN_ALGORITHMS = ("RS256", "ES256")
JWKS_MIN_REFRESH = 60  # seconds between two fetches of one issuer's JWKS for an unknown kid
MAX_DOCUMENT_BYTES = 256 * 1024
OWNERS_ONLY = "Only an owner of the tenant may change the trusts of a service ID."
HTTPS_ONLY = "The issuer must be an https URL without query or fragment."
BAD_PATTERN = "The subject pattern may use * as a wildcard; it must not be * alone."
NOT_TRUSTED = "The ID token is not trusted by any service ID."
ALREADY_REMOVED = "This trust was already removed."
_PATTERN_CHARS = re.compile(r"[ -~]{1,300}")


# --- Trusts (owner, sudo in the portal, audited) --------------------------------------------


def trust_list(actor: Principal, service_id: ServiceID):
    """Return the trusts of ``service_id`` (of the actor's tenant), newest first."""
    return (
        WorkloadTrust.objects.for_tenant(actor.tenant)
        .filter(service_id=service_id, removed_at=None)
        .order_by("-created_at")
    )


def _check_owner(actor: Principal, service_id: ServiceID) -> None:
    if not roles.may(actor.role, roles.Action.POLICY_EDIT) or actor.key is not None:
        raise PermissionDenied(OWNERS_ONLY)
    if service_id.tenant_id != actor.tenant.pk:
        raise PermissionDenied(OWNERS_ONLY)


def _clean_issuer(issuer: str) -> str:
    issuer = (issuer or "").strip().rstrip("/")
    parts = urlsplit(issuer)
    if parts.scheme != "https" or not parts.netloc or parts.query or parts.fragment:
        raise ValidationError({"issuer": [HTTPS_ONLY]})
    return issuer


def _clean_pattern(pattern: str) -> str:
    pattern = (pattern or "").strip()
    if not _PATTERN_CHARS.fullmatch(pattern) or pattern.strip("*") == "":
        raise ValidationError({"subject_pattern": [BAD_PATTERN]})
    return pattern


@transaction.atomic
def trust_add(
    *,
    actor: Principal,
    service_id: ServiceID,
    issuer: str,
    audience: str,
    subject_pattern: str,
    scopes: list[str],
    context: RequestContext | None = None,
) -> WorkloadTrust:
    """Trust ID tokens of ``issuer`` for ``audience`` whose ``sub`` matches ``subject_pattern``
    to act for ``service_id`` with at most ``scopes``. Owners only; records ``trust.added``."""
    _check_owner(actor, service_id)
    try:
        chosen = parse_scopes(scopes)
    except ValidationError as error:
        raise ValidationError({"scopes": error.messages}) from None
    beyond = sorted(set(chosen) - ceiling_for(service_id.role))
    if beyond:
        raise ValidationError({"scopes": [f"Beyond the service ID's role: {', '.join(beyond)}."]})
    trust = WorkloadTrust(
        tenant_id=service_id.tenant_id,
        service_id=service_id,
        issuer=_clean_issuer(issuer),
        audience=(audience or "").strip(),
        subject_pattern=_clean_pattern(subject_pattern),
        scopes=chosen,
        created_by=actor.user,
    )
    trust.full_clean()
    trust.save()
    audit.record(
        "trust.added",
        actor=actor,
        tenant=actor.tenant,
        target=trust,
        context=context,
        metadata={
            "service_id": service_id.pk,
            "issuer": trust.issuer,
            "audience": trust.audience,
            "subject_pattern": trust.subject_pattern,
            "scopes": chosen,
        },
    )
    return trust


@transaction.atomic
def trust_remove(
    *, actor: Principal, trust: WorkloadTrust, context: RequestContext | None = None
) -> WorkloadTrust:
    """Stop trusting: no new exchange, and its JWTs introspect inactive. Records
    ``trust.removed``."""
    locked = WorkloadTrust.objects.select_for_update().select_related("service_id").get(pk=trust.pk)
    _check_owner(actor, locked.service_id)
    if locked.removed_at is not None:
        raise ValidationError(ALREADY_REMOVED)
    locked.removed_at = timezone.now()
    locked.save(update_fields=["removed_at"])
    audit.record(
        "trust.removed",
        actor=actor,
        tenant=actor.tenant,
        target=locked,
        context=context,
        metadata={"service_id": locked.service_id_id, "issuer": locked.issuer},
    )
    return locked


def subject_matches(pattern: str, subject: str) -> bool:
    """Return whether ``subject`` matches ``pattern``, where only ``*`` is a wildcard."""
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, subject, flags=re.DOTALL) is not None


# --- The issuer's keys ----------------------------------------------------------------------


def _fetch_json(url: str) -> dict:
    """GET ``url`` (https only) and return its JSON object; raise OSError or ValueError."""
    if urlsplit(url).scheme != "https":
        raise ValueError("not an https URL")
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    timeout = conf.settings.OIDC_FETCH_TIMEOUT
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - https
        value = json.loads(response.read(MAX_DOCUMENT_BYTES))
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object")
    return value


def _cached(name: str, url: str) -> dict:
    value = cache.get(name)
    if value is None:
        value = _fetch_json(url)
        cache.set(name, value, conf.settings.OIDC_CACHE_SECONDS)
    return value


def issuer_keys(issuer: str, kid: str) -> object | None:
    """Return the issuer's public key ``kid`` (discovery, then JWKS; both cached), or None."""
    discovery = _cached(f"fed:oidc:disc:{issuer}", f"{issuer}/.well-known/openid-configuration")
    if discovery.get("issuer", "").rstrip("/") != issuer:
        raise ValueError("the discovery document names another issuer")
    jwks_uri = discovery.get("jwks_uri")
    if not isinstance(jwks_uri, str):
        raise ValueError("no jwks_uri")
    name = f"fed:oidc:jwks:{issuer}"
    keys = _cached(name, jwks_uri)
    found = _jwk(keys, kid)
    if found is None and cache.add(f"fed:oidc:refetch:{issuer}", 1, JWKS_MIN_REFRESH):
        keys = _fetch_json(jwks_uri)
        cache.set(name, keys, conf.settings.OIDC_CACHE_SECONDS)
        found = _jwk(keys, kid)
    return found


def _jwk(document: dict, kid: str):
    for jwk in document.get("keys", []):
        if not isinstance(jwk, dict) or jwk.get("kid") != kid:
            continue
        try:
            if jwk.get("kty") == "RSA":
                return RSAAlgorithm.from_jwk(jwk)
            if jwk.get("kty") == "EC":
                return ECAlgorithm.from_jwk(jwk)
        except (jwt.InvalidKeyError, ValueError, KeyError, TypeError):
            return None
    return None


# --- The exchange ---------------------------------------------------------------------------


class _Refused(Exception):
    def __init__(self, reason: str, trust: WorkloadTrust | None = None):
        super().__init__(reason)
        self.reason, self.trust = reason, trust


def _verify(id_token: str) -> tuple[dict, WorkloadTrust]:
    """Return (the verified claims, the trust that accepts them); raise _Refused."""
    try:
        header = jwt.get_unverified_header(id_token)
        unverified = jwt.decode(id_token, options={"verify_signature": False})
    except jwt.PyJWTError as error:
        raise _Refused("malformed_id_token") from error
    # SECURITY: only asymmetric algorithms: never "none", never HS256 keyed with a public key.
    if header.get("alg") not in ID_TOKEN_ALGORITHMS:
        raise _Refused("unexpected_alg")
    issuer = str(unverified.get("iss", "")).rstrip("/")
    trusts = list(
        WorkloadTrust.objects.active().filter(issuer=issuer).select_related("service_id__tenant")
    )
    if not trusts:
        raise _Refused("untrusted_issuer")
    kid = header.get("kid")
    try:
        key = issuer_keys(issuer, kid) if isinstance(kid, str) else None
    except (OSError, ValueError):
        raise _Refused("issuer_unreachable", trusts[0]) from None
    if key is None:
        raise _Refused("unknown_kid", trusts[0])
    audiences = sorted({t.audience for t in trusts})
    try:
        claims = jwt.decode(
            id_token,
            key,
            algorithms=[header["alg"]],
            audience=audiences,
            issuer=unverified.get("iss"),
            leeway=conf.settings.OIDC_LEEWAY,
            options={"require": ["iss", "sub", "aud", "exp", "iat"]},
        )
    except jwt.ExpiredSignatureError:
        raise _Refused("expired", trusts[0]) from None
    except jwt.InvalidAudienceError:
        raise _Refused("wrong_audience", trusts[0]) from None
    except jwt.PyJWTError:
        raise _Refused("bad_signature_or_claims", trusts[0]) from None
    token_audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    subject = str(claims["sub"])
    for trust in trusts:
        if trust.audience in token_audiences and subject_matches(trust.subject_pattern, subject):
            return claims, trust
    raise _Refused("subject_not_trusted", trusts[0])


def _first_use(claims: dict) -> bool:
    """Return whether this ID token's ``jti`` (or, without one, the token's own identity) is
    used for the first time; remembered until the token expires."""
    identity = claims.get("jti") or f"{claims['sub']}:{claims['iat']}:{claims['exp']}"
    ttl = max(1, int(claims["exp"] - time.time()) + conf.settings.OIDC_LEEWAY)
    return cache.add(f"fed:oidc:seen:{claims['iss']}:{identity}"[:250], 1, ttl)


def id_token_exchange(
    *, id_token: str, scope: str | None, audience: str | None, issuer: str, context
):
    """Exchange a trusted CI's OIDC ID token for a JWT acting for the trusted service ID.
    Records ``token.exchanged`` or ``token.exchange_refused`` (with the reason); raises
    OAuthError (401)."""
    from federation.services import (
        Exchanged,
        OAuthError,
        check_audience,
        lifetime_seconds,
        narrow_scopes,
        record_exchange,
    )

    blocked = failures.blocked_for(context.ip)
    if blocked is not None:
        refusal = OAuthError("slow_down", "Too many failed exchanges.", status=429)
        refusal.retry_after = blocked
        raise refusal
    try:
        claims, trust = _verify(id_token)
        if not _first_use(claims):
            raise _Refused("replayed", trust)
    except _Refused as refused:
        failures.count(context.ip)
        _record_refusal(refused.reason, refused.trust, context)
        raise OAuthError("invalid_grant", NOT_TRUSTED, status=401, reason=refused.reason) from None
    service_id = trust.service_id
    tenant = service_id.tenant
    try:
        granted = narrow_scopes(set(trust.scopes) & ceiling_for(service_id.role), scope)
        audience = check_audience(audience, issuer)
    except OAuthError as error:
        _record_refusal(error.reason, trust, context)
        raise
    lifetime = lifetime_seconds(tenant, None, timezone.now())
    token, minted = jwts.mint(
        issuer=issuer,
        audience=audience,
        subject=f"service_id:{service_id.pk}",
        tenant=tenant,
        scopes=granted,
        role=service_id.role,
        key_id=None,
        client_id=f"trust:{trust.pk}",
        lifetime=lifetime,
    )
    record_exchange(
        "token.exchanged",
        actor=service_id,
        tenant=tenant,
        target=trust,
        context=context,
        metadata={
            "jti": minted["jti"],
            "trust_id": trust.pk,
            "issuer": trust.issuer,
            "subject": str(claims["sub"])[:300],
            "aud": audience,
            "scope": minted["scope"],
            "expires_in": lifetime,
        },
    )
    return Exchanged(token, lifetime, minted["scope"], minted)


def _record_refusal(reason: str, trust: WorkloadTrust | None, context) -> None:
    from federation.services import record_exchange

    record_exchange(
        "token.exchange_refused",
        actor=Actor.anonymous(context.user_agent),
        tenant=trust.service_id.tenant if trust is not None else None,
        target=trust,
        outcome=Outcome.DENIED,
        context=context,
        metadata={"reason": reason, "subject_token_type": "id_token"},
    )


def trust_still_usable(claims: jwts.Claims) -> bool:
    """Return whether the trust a JWT was minted through still stands (introspection)."""
    kind, _, trust_id = claims.client_id.partition(":")
    if kind != "trust" or not trust_id.isdigit():
        return False
    return WorkloadTrust.objects.active().filter(pk=int(trust_id)).exists()


def trust_get(actor: Principal, pk: int) -> WorkloadTrust:
    """Return a trust of the actor's tenant, or raise Http404."""
    from django.http import Http404

    try:
        return (
            WorkloadTrust.objects.for_tenant(actor.tenant)
            .select_related("service_id")
            .get(pk=pk, removed_at=None)
        )
    except (WorkloadTrust.DoesNotExist, ValueError, TypeError):
        raise Http404("No such trust.") from None
