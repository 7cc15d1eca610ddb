"""Keyward as a credential authority for other services: short-lived signed JWTs exchanged for
keys (RFC 8693), the published keys (JWKS, RFC 8414 metadata), introspection (RFC 7662),
revocation (RFC 7009) and keyless CI (workload identity federation).

It stands above keys, accounts, audit and common; none of them imports it.
"""
