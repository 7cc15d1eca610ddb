"""The tenant's sign-in policy: whether its members must hold a phishing-resistant factor."""

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django_otp_webauthn.models import WebAuthnCredential

import audit
from accounts import roles
from accounts.models import Tenant
from accounts.principals import Principal
from common.request import RequestContext

NOT_OWNER = "Only owners may change the sign-in policy."
PASSKEY_FIRST = "Add a passkey to your own account before you require one of every member."


@transaction.atomic
def tenant_passkey_policy_set(
    *, actor: Principal, require: bool, context: RequestContext | None = None
) -> Tenant:
    """Require a passkey of every member (or stop requiring one): members without one are sent
    to add one before any tenant page, and a code alone no longer opens sudo for the tenant's
    actions. Owners only; audited as ``tenant.policy_changed``. Raise ``PermissionDenied`` or,
    for an owner without a passkey who turns it on, ``ValidationError``."""
    if not roles.may(actor.role, roles.Action.POLICY_EDIT):
        raise PermissionDenied(NOT_OWNER)
    tenant = Tenant.objects.select_for_update().get(pk=actor.tenant.pk)
    before = tenant.require_phishing_resistant_mfa
    if before == require:
        return tenant
    if require and not (
        actor.user is not None
        and WebAuthnCredential.objects.filter(user=actor.user, confirmed=True).exists()
    ):
        raise ValidationError(PASSKEY_FIRST)
    tenant.require_phishing_resistant_mfa = require
    tenant.full_clean()
    tenant.save(update_fields=["require_phishing_resistant_mfa"])
    audit.record(
        "tenant.policy_changed",
        actor=actor,
        tenant=tenant,
        target=tenant,
        context=context,
        metadata={"changed": {"require_phishing_resistant_mfa": [before, require]}},
    )
    return tenant
