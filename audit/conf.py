"""The audit app's settings (``KEYWARD_AUDIT_*``), read when used, with their defaults here."""

from common.conf import AppSettings

settings = AppSettings(
    {
        # Seconds the API holds the newest events back, so a cursor never passes an event whose
        # id was taken before a slower transaction committed.
        "AUDIT_API_LAG": 5,
        # "batched": API request events go through the per-process writer (audit/writer.py);
        # "sync": one INSERT per request, in the request.
        "AUDIT_REQUEST_EVENTS": "batched",
        "AUDIT_FLUSH_MS": 20,  # a batch is written this long after its first event
        "AUDIT_BATCH": 500,  # at most this many events per INSERT
        # The Ed25519 private key (PKCS#8 PEM) that signs new seals, or the path of a file that
        # holds it. It never enters the database. Empty: seals are made unsigned.
        "AUDIT_SIGNING_KEY": "",
        # Public keys (PEM, or paths of PEM files) that audit_verify also accepts: the keys that
        # signed older seals. The signing key's own public key is always accepted.
        "AUDIT_VERIFY_KEYS": [],
        # With a key configured, audit_verify refuses unsigned seals except those of formats 1 and
        # 2 and those up to and including the seal with this hash (the last one made before
        # signing was configured; its hash, kept outside the database, pins them).
        "AUDIT_UNSIGNED_UNTIL": "",
    }
)
