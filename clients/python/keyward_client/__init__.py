"""Accept Keyward credentials in your own services (see README.md)."""

from keyward_client.introspection import introspect
from keyward_client.verify import InvalidToken, JWKSCache, KeywardVerifier

__all__ = ["InvalidToken", "JWKSCache", "KeywardVerifier", "introspect"]
__version__ = "0.1.0"
