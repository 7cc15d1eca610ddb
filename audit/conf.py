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
    }
)
