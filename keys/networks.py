"""Allowed networks of keys and tenants: parsing CIDR lists and matching client IPs."""

import functools
import ipaddress
from collections.abc import Iterable

from django.core.exceptions import ValidationError

BAD_CIDR = "Not an IP address or CIDR range: %(value)s."
TOO_MANY = "At most %(max)d ranges."
MAX_RANGES = 50


def parse_cidrs(value: str | Iterable[str]) -> list[str]:
    """Return normalised CIDR ranges from a comma/space/newline separated string or a list.

    A bare address becomes a /32 (or /128); host bits are cleared (10.0.0.7/24 → 10.0.0.0/24).
    Raises ValidationError naming each bad entry.
    """
    items = value.replace(",", " ").split() if isinstance(value, str) else list(value)
    errors, networks = [], []
    for item in items:
        if not isinstance(item, str):
            errors.append(ValidationError(BAD_CIDR, params={"value": repr(item)}, code="cidr"))
            continue
        try:
            network = ipaddress.ip_network(item.strip(), strict=False)
        except ValueError:
            errors.append(ValidationError(BAD_CIDR, params={"value": item[:60]}, code="cidr"))
            continue
        if str(network) not in networks:
            networks.append(str(network))
    if errors:
        raise ValidationError(errors)
    if len(networks) > MAX_RANGES:
        raise ValidationError(TOO_MANY, params={"max": MAX_RANGES}, code="too_many")
    return networks


@functools.lru_cache(maxsize=4096)
def _networks(cidrs: tuple[str, ...]):
    return tuple(ipaddress.ip_network(c) for c in cidrs)


def ip_allowed(ip: str | None, cidrs: list[str]) -> bool:
    """Return whether ``ip`` is inside one of ``cidrs`` (an empty list allows every address)."""
    if not cidrs:
        return True
    if not ip:
        return False
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in network for network in _networks(tuple(cidrs)))
