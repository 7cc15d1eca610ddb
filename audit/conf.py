"""The audit app's settings (``KEYWARD_AUDIT_*``), read when used, with their defaults here."""

from common.conf import AppSettings

settings = AppSettings(
    {
        # True: a request made with a key is answered only once its event is committed (else
        # 503 audit_unavailable). False: events go through the per-process batched writer after
        # the response (audit/writer.py), and a hard crash can lose the last batch.
        "AUDIT_FAIL_CLOSED": True,
        # "off": request events commit with PostgreSQL's asynchronous commit (a database crash
        # can lose the last few hundred milliseconds of them); "on": each one waits for its
        # WAL flush. Changes of state always commit synchronously.
        "AUDIT_SYNCHRONOUS_COMMIT": "off",
        # A request made with a Keyward JWT (federation), safe methods only: "batched" (its event
        # goes through the per-process batched writer after the response: a hard crash can
        # lose the last batch; while a batch cannot be written, JWT requests are answered only
        # once their event is committed, as a key's) or "committed" (always as a key's).
        "AUDIT_JWT_EVENTS": "batched",
        "AUDIT_FLUSH_MS": 20,  # fail-open writer: a batch is written this long after its first
        "AUDIT_BATCH": 500,  # event; at most this many events per INSERT
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
