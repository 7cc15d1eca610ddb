"""The webhook events a tenant may subscribe to, and the audit action each one follows."""

# Event type -> what it tells, in the portal's words.
EVENTS: dict[str, str] = {
    "key.issued": "A key was issued",
    "key.rotated": "A key was rotated (the new key's hint; the old key keeps its grace period)",
    "key.revoked": "A key was revoked",
    "key.expiring": "A key expires soon (at the tenant's warning days)",
    "key.expired": "A key expired",
    "key.unused_revocation_pending": "An unused key will be revoked for inactivity",
    "key.leak_reported": "A key was reported found in public",
    "key.new_network": "A key was used from a network it had never used",
    "member.removed": "A member was removed from the tenant",
}

# Sent by the portal's "send test event" button only; no endpoint subscribes to it.
TEST_EVENT = "webhook.test"

# Audit action -> event type. Only successful events are sent.
FROM_AUDIT: dict[str, str] = {
    "key.issued": "key.issued",
    "key.rotated": "key.rotated",
    "key.revoked": "key.revoked",
    "key.expiry_warning_sent": "key.expiring",
    "key.expired": "key.expired",
    "key.unused_warning_sent": "key.unused_revocation_pending",
    "key.leak_reported": "key.leak_reported",
    "key.new_network": "key.new_network",
    "member.removed": "member.removed",
}

# Audit metadata that stays in Keyward: who was e-mailed is not the receiver's business.
PRIVATE_METADATA = frozenset({"recipients"})
