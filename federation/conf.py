"""The federation app's settings (``KEYWARD_*``), read when used, with their defaults here."""

from common.conf import AppSettings

settings = AppSettings(
    {
        # The ``iss`` of every JWT and the issuer of the RFC 8414 metadata. Empty: the origin
        # the request came to (``https://host``), which ALLOWED_HOSTS bounds.
        "JWT_ISSUER": "",
        # The hard ceiling of a JWT's lifetime in minutes; a tenant's
        # ``max_token_lifetime_minutes`` (1..15) lowers it.
        "JWT_MAX_LIFETIME_MINUTES": 15,
        # Seconds between two reads of the revoked jtis and keys from Redis by one process: the
        # bound within which Keyward's own API refuses a JWT revoked in another process.
        "JWT_REVOCATION_REFRESH": 5,
        # Seconds a process keeps accepting JWTs while it cannot read the revocation list: past
        # this, every JWT is refused (fail-closed).
        "JWT_REVOCATION_MAX_STALE": 30,
        # Seconds a process keeps the signing and verification keys read from the database.
        "JWT_KEY_CACHE": 60,
        # Workload identity federation: seconds an issuer's discovery document and JWKS are kept,
        # and how long to wait for them.
        "OIDC_CACHE_SECONDS": 300,
        "OIDC_FETCH_TIMEOUT": 3.0,
        # Clock skew allowed on an ID token's exp, iat and nbf (seconds).
        "OIDC_LEEWAY": 30,
    }
)
