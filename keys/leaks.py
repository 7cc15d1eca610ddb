"""Leaked keys: signed reports from secret scanners, and keys sent in a URL, handled by each
tenant's leak policy (revoke, notify, or both).

A report is a JSON array of ``{"token", "type", "url", "source"}`` objects, signed with ECDSA
P-256 / SHA-256 over the raw body; the base64 DER signature comes in ``Keyward-Signature`` and the
signer's key id in ``Keyward-Key-Id``. Public keys are configured, by key id, in
``KEYWARD_LEAK_REPORT_PUBLIC_KEYS``. No token is ever logged, recorded or echoed: only its hint.

GitHub's secret scanning partner program sends the same body signed the same way, with the key
id in ``Github-Public-Key-Identifier`` and the signature in ``Github-Public-Key-Signature``. Its
signer keys come from a document shaped like GitHub's ``meta/public_keys/secret_scanning``
(``{"public_keys": [{"key_identifier", "key", "is_current"}]}``), read from the file or https URL
in ``KEYWARD_LEAK_REPORT_GITHUB_KEYS`` by a task and kept in the shared cache; it is read again
after an hour, or when a report names a key id it does not hold (at most once a minute). Such a
report is answered in GitHub's feedback format: ``token_hash`` (the SHA-256 digest Keyward
stores), ``token_type`` and ``label``.
"""

import base64
import binascii
import functools
import json
import logging
import time
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.tasks import task
from rest_framework import exceptions

import audit
from accounts.models import LeakPolicy
from audit.actions import Outcome
from audit.services import Actor
from common import ratelimit
from common.request import RequestContext
from keys import conf, notifications, tokens
from keys.models import ApiKey
from keys.services import key_revoke
from keys.services.issue import _now

logger = logging.getLogger("keyward.leaks")

SIGNATURE_HEADER = "Keyward-Signature"
KEY_ID_HEADER = "Keyward-Key-Id"
GITHUB_SIGNATURE_HEADER = "Github-Public-Key-Signature"
GITHUB_KEY_ID_HEADER = "Github-Public-Key-Identifier"
GITHUB_KEYS_CACHE = "kw:leaks:github-keys"
GITHUB_KEYS_MAX_AGE = 3600  # seconds before the signer keys are read again
GITHUB_KEYS_REFRESH_INTERVAL = 60  # at most one read a minute asked for by an unknown key id
GITHUB_KEYS_TIMEOUT = 10  # seconds to fetch the document
MAX_KEYS_DOCUMENT = 256 * 1024
MAX_BODY_BYTES = 1024 * 1024
MAX_TOKENS = 1000
MAX_FIELD = 500
EXPOSED_NOTIFY_SECONDS = 3600  # at most one "found in a URL" e-mail per key and hour
# RFC 6750's query parameter; any other parameter is refused only if its value is a token, so
# filters such as ``?key=<id>`` on the audit API keep working.
QUERY_TOKEN_PARAMS = frozenset({"access_token"})
TOKEN_IN_QUERY = (
    "Keys are never accepted in a URL: send the key in the Authorization header "
    "(`Bearer <key>`). Treat this key as exposed: revoke it and issue a new one."
)
# What the answer to a key sent in a URL says the tenant's leak policy did (keyed by Action).
TOKEN_IN_QUERY_DONE = {
    "revoked": (
        "Keys are never accepted in a URL: a URL ends up in logs and proxies, so this key was "
        "revoked under your tenant's leak policy and no longer works. Issue a new key and send "
        "it in the Authorization header (`Bearer <key>`)."
    ),
    "revoked_and_notified": (
        "Keys are never accepted in a URL: a URL ends up in logs and proxies, so this key was "
        "revoked under your tenant's leak policy and no longer works; its owner and the "
        "tenant's admins were e-mailed. Issue a new key and send it in the Authorization "
        "header (`Bearer <key>`)."
    ),
    "notified": (
        "Keys are never accepted in a URL: send the key in the Authorization header "
        "(`Bearer <key>`). Your tenant's leak policy only notifies, so this key still works, "
        "but it is exposed (a URL ends up in logs and proxies) and its owner and the tenant's "
        "admins were told: rotate or revoke it."
    ),
}
TOKEN_IN_QUERY_INACTIVE = (
    "Keys are never accepted in a URL: send the key in the Authorization header "
    "(`Bearer <key>`). This key was already revoked or expired: nothing more was done."
)


def token_in_query_detail(key, action: str) -> str:
    """Return what the 400 answer to a key sent in a URL says: what the tenant's leak policy
    did with it (``action``), or the general advice for a string Keyward does not know."""
    if key is None:
        return TOKEN_IN_QUERY
    return TOKEN_IN_QUERY_DONE.get(action, TOKEN_IN_QUERY_INACTIVE)


NOT_AN_ARRAY = "Send a JSON array of objects with token, type, url and source."
BAD_ITEM = "Item %(index)d: an object with a string token is required."
TOO_MANY = f"At most {MAX_TOKENS} tokens per report: split it."
TOO_LARGE = f"A leak report is at most {MAX_BODY_BYTES} bytes: split it."


class Action:
    """What the policy did with one reported token."""

    NONE = "none"
    REVOKED = "revoked"
    NOTIFIED = "notified"
    REVOKED_AND_NOTIFIED = "revoked_and_notified"


class Refusal:
    """Why a report was refused (audited; the client only hears ``invalid_signature``)."""

    UNSIGNED = "unsigned"
    UNKNOWN_KEY_ID = "unknown_key_id"
    BAD_SIGNATURE = "bad_signature"
    SIGNER_KEYS_UNAVAILABLE = "signer_keys_unavailable"  # GitHub's document never read yet


class ReportRefused(Exception):
    def __init__(self, reason: str, key_id: str = "") -> None:
        super().__init__(reason)
        self.reason, self.key_id = reason, key_id


@functools.lru_cache(maxsize=32)
def load_public_key(pem: str) -> ec.EllipticCurvePublicKey:
    """Return the P-256 public key in ``pem``; raise ValueError for anything else."""
    try:
        key = load_pem_public_key(pem.encode())
    except (TypeError, UnsupportedAlgorithm) as error:
        raise ValueError(str(error)) from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("not an ECDSA P-256 public key")
    return key


def verify_report(body: bytes, key_id: str | None, signature: str | None) -> str:
    """Return the signer's key id if ``signature`` (base64 DER) signs ``body`` under the public
    key configured as ``key_id``; raise ReportRefused otherwise."""
    if not key_id or not signature:
        raise ReportRefused(Refusal.UNSIGNED, (key_id or "")[:64])
    pem = conf.settings.LEAK_REPORT_PUBLIC_KEYS.get(key_id)
    if not isinstance(pem, str):
        raise ReportRefused(Refusal.UNKNOWN_KEY_ID, key_id[:64])
    _verify_signature(body, pem, signature, key_id)
    return key_id


def _verify_signature(body: bytes, pem: str, signature: str, key_id: str) -> None:
    try:
        raw = base64.b64decode(signature, validate=True)
        load_public_key(pem).verify(raw, body, ec.ECDSA(hashes.SHA256()))
    except (binascii.Error, ValueError, InvalidSignature):
        raise ReportRefused(Refusal.BAD_SIGNATURE, key_id[:64]) from None


def verify_github_report(body: bytes, key_id: str | None, signature: str | None) -> str:
    """Return the signer (``github <key id>``) if ``signature`` signs ``body`` under a key of
    GitHub's secret scanning document; raise ReportRefused otherwise."""
    if not key_id or not signature:
        raise ReportRefused(Refusal.UNSIGNED, (key_id or "")[:64])
    keys = github_signer_keys(wanted=key_id)
    if keys is None:
        raise ReportRefused(Refusal.SIGNER_KEYS_UNAVAILABLE, key_id[:64])
    pem = keys.get(key_id)
    if pem is None:
        raise ReportRefused(Refusal.UNKNOWN_KEY_ID, key_id[:64])
    _verify_signature(body, pem, signature, key_id)
    return f"github {key_id[:64]}"


def parse_signer_keys(document: bytes) -> dict[str, str]:
    """Return ``{key_identifier: PEM}`` of the ECDSA P-256 keys in a document shaped like
    GitHub's ``meta/public_keys/secret_scanning``; raise ValueError if it is not one. A key that
    is not P-256 is left out (and logged)."""
    try:
        data = json.loads(document)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise ValueError("the signer keys document is not JSON") from None
    entries = data.get("public_keys") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ValueError('the signer keys document has no "public_keys" list')
    keys = {}
    for entry in entries:
        key_id = entry.get("key_identifier") if isinstance(entry, dict) else None
        pem = entry.get("key") if isinstance(entry, dict) else None
        if not isinstance(key_id, str) or not key_id or not isinstance(pem, str):
            continue
        try:
            load_public_key(pem)
        except ValueError:
            logger.warning("leak reports: signer key %s is not an ECDSA P-256 key", key_id[:64])
            continue
        keys[key_id] = pem
    return keys


def _read_signer_keys_document(source: str) -> bytes:
    if source.startswith("https://"):
        request = urllib.request.Request(  # noqa: S310 - https only, the operator's own setting
            source, headers={"Accept": "application/json", "User-Agent": "Keyward"}
        )
        with urllib.request.urlopen(request, timeout=GITHUB_KEYS_TIMEOUT) as response:  # noqa: S310
            document = response.read(MAX_KEYS_DOCUMENT + 1)
    elif "://" in source:
        raise ValueError("KEYWARD_LEAK_REPORT_GITHUB_KEYS must be a file or an https:// URL")
    else:
        with Path(source).open("rb") as file:
            document = file.read(MAX_KEYS_DOCUMENT + 1)
    if len(document) > MAX_KEYS_DOCUMENT:
        raise ValueError(f"the signer keys document is over {MAX_KEYS_DOCUMENT} bytes")
    return document


@task
def leak_signer_keys_refresh() -> int:
    """Read GitHub's signer keys from KEYWARD_LEAK_REPORT_GITHUB_KEYS into the shared cache;
    return how many. A document that cannot be read or parsed leaves the cached keys as they
    were (and raises, so the task's result says why)."""
    source = conf.settings.LEAK_REPORT_GITHUB_KEYS
    if not source:
        return 0
    try:
        keys = parse_signer_keys(_read_signer_keys_document(source))
    except (OSError, ValueError):
        logger.exception("leak reports: could not read GitHub's signer keys")
        raise
    cache.set(GITHUB_KEYS_CACHE, {"keys": keys, "read_at": time.time()}, timeout=None)
    return len(keys)


def github_signer_keys(*, wanted: str | None = None, now: float | None = None) -> dict | None:
    """Return GitHub's signer keys ``{key id: PEM}`` from the cache, or None if they were never
    read. Enqueue a new read (at most once a minute) when they are older than an hour, missing,
    or lack ``wanted``: with a worker, reports use them once it has run."""
    now = time.time() if now is None else now
    cached = cache.get(GITHUB_KEYS_CACHE)
    stale = (
        cached is None
        or now - cached["read_at"] > GITHUB_KEYS_MAX_AGE
        or (wanted is not None and wanted not in cached["keys"])
    )
    if stale and conf.settings.LEAK_REPORT_GITHUB_KEYS:
        # SECURITY: reports naming made-up key ids cost at most one read a minute.
        if ratelimit.add(f"{GITHUB_KEYS_CACHE}:refresh", GITHUB_KEYS_REFRESH_INTERVAL):
            leak_signer_keys_refresh.enqueue()
            cached = cache.get(GITHUB_KEYS_CACHE)  # read already by the immediate backend
    return cached["keys"] if cached is not None else None


def github_feedback(report: list[dict], findings: list["Finding"]) -> list[dict]:
    """Return GitHub's feedback for a report: per token, its SHA-256 digest (hex, as Keyward
    stores it), the type it was reported as, and whether it is a key Keyward issued."""
    return [
        {
            "token_hash": tokens.digest(item["token"]).hex(),
            "token_type": item.get("type", ""),
            "label": "true_positive" if finding.is_true_positive else "false_positive",
        }
        for item, finding in zip(report, findings, strict=True)
    ]


def parse_report(body: bytes) -> list[dict]:
    """Return the report's items as dicts of strings; raise ValidationError for anything else.

    Bounded: at most MAX_TOKENS items (the body's size is bounded by the view).
    """
    try:
        items = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise ValidationError(NOT_AN_ARRAY, code="invalid") from None
    if not isinstance(items, list):
        raise ValidationError(NOT_AN_ARRAY, code="invalid")
    if len(items) > MAX_TOKENS:
        raise ValidationError(TOO_MANY, code="too_many_tokens")
    report = []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("token"), str):
            raise ValidationError(BAD_ITEM % {"index": index}, code="invalid")
        where = {
            field: item[field][:MAX_FIELD]
            for field in ("type", "url", "source")
            if isinstance(item.get(field), str)
        }
        report.append({"token": item["token"], **where})
    return report


def apply_leak_policy(key: ApiKey, *, actor: Actor, where: dict, notify: bool = True) -> str:
    """Revoke and/or notify as ``key``'s tenant decided; return the Action taken.

    Call inside the transaction that locked the (usable) key; e-mails go out on its commit to the
    tenant's owners and admins and the key's owner, saying where the key was found.
    """
    policy = key.tenant.leak_policy
    revoke = policy in (LeakPolicy.REVOKE, LeakPolicy.REVOKE_AND_NOTIFY)
    tell = policy in (LeakPolicy.NOTIFY, LeakPolicy.REVOKE_AND_NOTIFY)
    found = where.get("source") or where.get("url") or "a leak report"
    if revoke:
        key_revoke(actor=actor, key=key, reason=f"found in public: {found}"[:200])
    if revoke and tell:
        action = Action.REVOKED_AND_NOTIFIED
    elif revoke:
        action = Action.REVOKED
    else:
        action = Action.NOTIFIED
    if tell and notify:
        recipients = notifications.tenant_key_managers(key.tenant) + notifications.key_contacts(key)
        notifications.leak_found(key, where, action, recipients)
    return action


@dataclass(frozen=True)
class Finding:
    token_hint: str | None
    is_true_positive: bool
    action: str

    def as_dict(self) -> dict:
        return {
            "token_hint": self.token_hint,
            "is_true_positive": self.is_true_positive,
            "action": self.action,
        }


@transaction.atomic
def key_leak_handle(
    *,
    token: str,
    where: dict,
    signer: str,
    context: RequestContext | None = None,
    now: datetime | None = None,
) -> Finding:
    """Handle one reported token: a Keyward key is a true positive; a usable one gets its
    tenant's leak policy. Records ``key.leak_reported`` (hint, where, action; never the token).

    A string that is not a well-formed Keyward token costs no query.
    """
    parsed = tokens.parse(token)
    if parsed is None:
        return Finding(None, False, Action.NONE)
    now = now or _now()
    key = (
        ApiKey.objects.select_for_update(of=("self",))
        .select_related("tenant", "user", "service_id")
        .filter(digest=tokens.digest(parsed.token))
        .first()
    )
    if key is None:
        return Finding(parsed.hint, False, Action.NONE)
    actor = Actor.system(f"leak report ({signer})")
    usable = key.revoked_at is None and not key.is_expired(now)
    action = apply_leak_policy(key, actor=actor, where=where) if usable else Action.NONE
    audit.record(
        "key.leak_reported",
        actor=actor,
        tenant=key.tenant,
        target=key,
        context=context,
        metadata={
            **where,
            "signer": signer,
            "policy": key.tenant.leak_policy,
            "was_usable": usable,
            "action": action,
        },
    )
    return Finding(parsed.hint, True, action)


def key_leak_report(
    *, report: list[dict], signer: str, context: RequestContext | None = None
) -> list[Finding]:
    """Handle each token of a verified report, in order; a token reported twice is handled once
    (each token in its own transaction, so one failure never undoes the others)."""
    seen: dict[str, Finding] = {}
    findings = []
    for item in report:
        token = item["token"]
        if token not in seen:
            where = {k: v for k, v in item.items() if k != "token"}
            seen[token] = key_leak_handle(token=token, where=where, signer=signer, context=context)
        findings.append(seen[token])
    return findings


@transaction.atomic
def key_exposure_handle(*, key: ApiKey, path: str, now: datetime | None = None) -> str:
    """Apply the tenant's leak policy to a key that was sent in a URL query string (it is in
    access logs and proxies now). Returns the Action; e-mails at most once an hour per key."""
    now = now or _now()
    locked = (
        ApiKey.objects.select_for_update(of=("self",))
        .select_related("tenant", "user", "service_id")
        .get(pk=key.pk)
    )
    if locked.revoked_at is not None or locked.is_expired(now):
        return Action.NONE
    where = {"source": "Keyward API: key sent in a URL query string", "url": path[:300]}
    # SECURITY: someone holding a key under a notify-only policy must not be able to send the
    # tenant's admins one e-mail per request.
    notify = cache.add(f"kw:exposed:{locked.pk}", 1, EXPOSED_NOTIFY_SECONDS)
    return apply_leak_policy(locked, actor=Actor.system("leak policy"), where=where, notify=notify)


class TokenInQuery(exceptions.APIException):
    """400 ``invalid_request`` (RFC 6750 §3.1): a key was sent in the URL."""

    status_code = 400
    default_detail = TOKEN_IN_QUERY
    default_code = "invalid_request"


def query_token(request) -> tuple[str, str] | None:
    """Return (param, value) of the first query parameter that carries a key, or None."""
    if not request.META.get("QUERY_STRING"):
        return None
    for name, values in request.query_params.lists():
        for value in values:
            if value and (name.lower() in QUERY_TOKEN_PARAMS or tokens.parse(value)):
                return name, value
    return None


def key_exposed(
    param: str, value: str, *, method: str, path: str, context: RequestContext
) -> tuple[ApiKey | None, bool, str]:
    """Record ``key.exposed`` for a token sent in the URL of a request (``method`` ``path``)
    and apply its tenant's leak policy; return (the key, if Keyward knows it; whether an event
    was recorded; the Action the policy took)."""
    parsed = tokens.parse(value)
    if parsed is None:
        return None, False, Action.NONE
    key = ApiKey.objects.select_related("tenant").filter(digest=tokens.digest(parsed.token)).first()
    audit.record(
        "key.exposed",
        actor=Actor.anonymous(),
        tenant=key.tenant if key else None,
        target=key,
        outcome=Outcome.DENIED,
        context=context,
        metadata={
            "param": param[:64],
            "method": method,
            "path": path[:300],
            "matched": key is not None,
            "hint": parsed.hint,
        },
    )
    action = Action.NONE
    if key is not None:  # in access logs now: the tenant's leak policy applies
        action = key_exposure_handle(key=key, path=path)
    return key, True, action


# --- Revocation by value (POST /api/v1/credentials/revoke) ------------------------------------
MAX_CREDENTIALS = 1000
REPORTED_BY_VALUE = "reported by value"
BY_VALUE_SOURCE = "someone who sent it to Keyward's public revocation endpoint"


def credential_digests(credentials: list[str]) -> list[str]:
    """Return the hex digests of the well-formed tokens among ``credentials``, each once, in
    order: no query, and the same work whether a token is live, revoked or unknown."""
    digests = dict.fromkeys(
        tokens.digest(parsed.token).hex()
        for parsed in map(tokens.parse, credentials)
        if parsed is not None
    )
    return list(digests)


@task
def keys_revoke_reported(digests: list[str], context: dict) -> int:
    """Revoke the live keys among ``digests`` (hex), reported by value by the request described
    by ``context`` (ip, user_agent, request_id); return how many were revoked."""
    return keys_revoke_by_value(
        digests=[bytes.fromhex(d) for d in digests[:MAX_CREDENTIALS]],
        context=RequestContext(
            ip=context.get("ip"),
            user_agent=context.get("user_agent", ""),
            request_id=context.get("request_id", ""),
        ),
    )


def keys_revoke_by_value(
    *, digests: list[bytes], context: RequestContext | None = None, now: datetime | None = None
) -> int:
    """Revoke, irreversibly, each usable key whose digest is in ``digests``; return how many.

    Each key in its own transaction, with its ``key.revoked`` event (reason "reported by value",
    the key's hint in its target) and, on commit, an e-mail to its owner and the tenant's owners
    and admins. An unknown, revoked or expired key costs nothing more than the one query.
    """
    now = now or _now()
    found = (
        ApiKey.objects.filter(digest__in=digests, revoked_at__isnull=True)
        .select_related("tenant", "user", "service_id")
        .order_by("pk")
    )
    revoked = 0
    for key in found:
        if key.is_expired(now):
            continue
        try:
            with transaction.atomic():
                key_revoke(
                    actor=Actor.anonymous(REPORTED_BY_VALUE),
                    key=key,
                    reason=REPORTED_BY_VALUE,
                    context=context,
                )
                recipients = notifications.tenant_key_managers(key.tenant)
                recipients += notifications.key_contacts(key)
                where = {"source": BY_VALUE_SOURCE}
                notifications.leak_found(key, where, Action.REVOKED, recipients)
        except ValidationError:
            continue  # revoked meanwhile by someone else: nothing left to do
        revoked += 1
    return revoked
