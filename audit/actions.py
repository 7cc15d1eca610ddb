"""The one registry of audit actions: dotted, past tense. ``record()`` refuses any other name."""

ACTIONS: dict[str, str] = {
    # Authentication (portal)
    "auth.login_succeeded": "Password accepted",
    "auth.login_failed": "Password refused",
    "auth.login_throttled": "Login attempt refused by a rate limit or back-off",
    "auth.account_locked": "Account locked after too many failures",
    "auth.account_unlocked": "Account lock lifted",
    "auth.logged_out": "Logged out",
    "auth.session_expired": "Session ended by its time limit",
    "auth.password_changed": "Password changed",
    "auth.password_reset": "Password set through a reset or set-password link",
    "auth.password_reset_requested": "Password reset e-mail requested",
    "auth.password_reset_throttled": "Password reset request refused by a rate limit",
    "mfa.enrolled": "Authenticator app enrolled",
    "mfa.verified": "Second factor verified",
    "mfa.verify_failed": "Second factor refused",
    "mfa.sudo_verified": "Second factor re-verified for a sensitive action",
    "mfa.device_removed": "Authenticator removed",
    "mfa.backup_codes_generated": "Backup codes generated",
    "mfa.backup_code_used": "Backup code used",
    "mfa.passkey_added": "Passkey added",
    "mfa.passkey_removed": "Passkey removed",
    "auth.session_ended": "Session ended by its owner from the account security page",
    # Tenants, members, service IDs
    "tenant.created": "Tenant created",
    "tenant.policy_changed": "Tenant key policy changed",
    "member.invited": "Member invited",
    "member.invitation_revoked": "Invitation revoked",
    "member.joined": "Invitation accepted",
    "member.role_changed": "Member role changed",
    "member.removed": "Member removed",
    "service_id.created": "Service ID created",
    "service_id.changed": "Service ID changed",
    "service_id.disabled": "Service ID disabled",
    "service_id.enabled": "Service ID enabled",
    # Keys
    "key.issued": "Key issued",
    "key.rotated": "Key rotated",
    "key.revoked": "Key revoked",
    "key.expired": "Key expired",
    "key.exposed": "Key seen in a URL query string",
    "key.scanned": "Files scanned for keys from the command line",
    "key.expiry_warning_sent": "Expiry warning e-mailed about a key",
    "key.unused_warning_sent": "Warning e-mailed that an unused key will be revoked",
    "key.new_network": "Key used from a network it had never used",
    "key.network_alert_changed": "New-network alerts of a key turned on or off",
    "key.scopes_narrowed": "Key's scopes narrowed to the ones it used",
    "key.leak_reported": "Key reported found in public by a signed leak report",
    "key.leak_report_refused": "Leak report refused: unsigned, badly signed or malformed",
    "key.looked_up": "Token looked up by an operator",
    "key.updated": "Key edited (each changed field before and after)",
    "key.rotation_completed": "Rotated key retired by its successor's first request",
    "key.approval_requested": "Key issued pending a second person's approval",
    "key.approved": "Pending key approved",
    "key.approval_denied": "Pending key denied (by a person, or after the policy's days)",
    "key.approval_digest_sent": "Daily digest of pending keys e-mailed to approvers",
    "key.inventory_exported": "Key inventory exported as CSV",
    # Webhooks
    "webhook.endpoint_created": "Webhook endpoint added",
    "webhook.endpoint_deleted": "Webhook endpoint deleted",
    "webhook.endpoint_disabled": "Webhook endpoint disabled",
    "webhook.endpoint_enabled": "Webhook endpoint enabled again",
    "webhook.secret_rotated": "Webhook signing secret rotated",
    "webhook.test_sent": "Webhook test event sent",
    # API
    "api.request": "API request made with a key",
    "api.denied": "API request denied",
    "api.refused": "API requests without a usable key refused (one event per address and minute)",
    "api.throttled": "API requests of a key over its rate (one event per key and minute)",
    # Signed tokens and keyless CI (federation)
    "token.exchanged": "Key or CI ID token exchanged for a short-lived JWT",
    "token.exchange_refused": "Token exchange refused",
    "token.revoked": "JWT revoked before it expired",
    "signing_key.rotated": "JWT signing key rotated",
    "trust.added": "Workload identity trust added to a service ID",
    "trust.removed": "Workload identity trust removed",
    # Audit log itself
    "audit.sealed": "Audit events sealed",
    "audit.pruned": "Old sealed audit events pruned",
    "audit.verified": "Audit seal chain verified",
    # Operators
    "admin.added": "Object added in the admin",
    "admin.changed": "Object changed in the admin",
    "admin.deleted": "Object deleted in the admin",
    "admin.denied": "Admin refused without a verified second factor",
}


class Outcome:
    SUCCESS = "success"
    FAILURE = "failure"
    DENIED = "denied"
    CHOICES = [(SUCCESS, "success"), (FAILURE, "failure"), (DENIED, "denied")]
