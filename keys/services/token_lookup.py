"""Incident response: find the key a pasted token belongs to (``keyward_lookup_token`` and the
admin's look-up page)."""

from datetime import datetime

from django.db import transaction

import audit
from audit.services import Actor
from common.request import RequestContext
from keys import tokens
from keys.models import ApiKey


class LookupResult:
    """What an operator's look-up found: ``key`` (or None) and ``outcome``."""

    NOT_A_KEY = "not_a_keyward_key"
    NO_SUCH_KEY = "no_such_key"
    FOUND = "found"

    def __init__(self, outcome: str, key: ApiKey | None = None, hint: str = "") -> None:
        self.outcome, self.key, self.hint = outcome, key, hint

    @property
    def message(self) -> str:
        if self.outcome == self.NOT_A_KEY:
            return "not a Keyward key (its format or checksum is wrong)"
        if self.outcome == self.NO_SUCH_KEY:
            return f"no such key ({self.hint}): well-formed, but Keyward never issued it"
        return f"{self.key.name} ({self.hint})"

    def facts(self, now: datetime | None = None) -> list[tuple[str, str]]:
        """Return (label, value) lines describing the key found (none if nothing was found)."""
        key = self.key
        if key is None:
            return []

        def when(moment) -> str:
            return f"{moment:%Y-%m-%d %H:%M:%S} UTC" if moment else "never"

        last = when(key.last_used_at)
        if key.last_used_at and key.last_used_ip:
            last += f" from {key.last_used_ip}"
        facts = [
            ("Key", f"{key.name} ({key.hint}), id {key.pk}"),
            ("Kind", "personal access token" if key.is_personal else "service key"),
            ("Tenant", f"{key.tenant.slug} ({key.tenant.name})"),
            ("Owner", key.owner_description),
            ("Status", str(key.status(now))),
            ("Scopes", ", ".join(key.scopes) or "none"),
            ("Created", when(key.created_at)),
            ("Expires", when(key.expires_at)),
            ("Last used", last),
        ]
        if key.revoked_at:
            reason = f": {key.revoked_reason}" if key.revoked_reason else ""
            facts.append(("Revoked", when(key.revoked_at) + reason))
        return facts


@transaction.atomic
def key_lookup_token(
    *, actor: Actor, token: str, context: RequestContext | None = None
) -> LookupResult:
    """Find the key a plaintext token belongs to, for incident response. Records
    ``key.looked_up`` (with the token's hint, never the token) whatever the outcome.

    A string that fails the format or checksum is "not a Keyward key" with no key query.
    """
    parsed = tokens.parse(token.strip())
    if parsed is None:
        result = LookupResult(LookupResult.NOT_A_KEY)
    else:
        key = (
            ApiKey.objects.select_related("tenant", "user", "service_id")
            .filter(digest=tokens.digest(parsed.token))
            .first()
        )
        outcome = LookupResult.FOUND if key is not None else LookupResult.NO_SUCH_KEY
        result = LookupResult(outcome, key, parsed.hint)
    audit.record(
        "key.looked_up",
        actor=actor,
        tenant=result.key.tenant if result.key else None,
        target=result.key,
        outcome="success" if result.key else "failure",
        context=context,
        metadata={"result": result.outcome, "hint": result.hint},
    )
    return result
