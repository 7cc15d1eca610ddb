"""Where a delivery may go (SSRF): https only (http in DEBUG), to public addresses only.

The name is resolved once per attempt, every address it resolves to is checked, and the
connection goes to the checked address (the name is kept for TLS: SNI and the certificate):
a name that resolves to a public address for the check and a private one for the connection
(DNS rebinding) cannot slip through. Redirects are never followed.
"""

import http.client
import ipaddress
import socket
import ssl
from urllib.parse import urlsplit

from webhooks import conf

NOT_HTTPS = "The URL must start with https://."
NOT_HTTP_OR_HTTPS = "The URL must start with https:// (or http:// while DEBUG is on)."
NO_HOST = "The URL has no host name."
CREDENTIALS = "The URL must not hold a user name or password."
UNRESOLVED = "The host name does not resolve."
NOT_PUBLIC = (
    "The URL resolves to an address that is not public (loopback, private, link-local or metadata)."
)

# Metadata services that sit on addresses ipaddress does not flag on its own (the rest, such as
# 169.254.169.254 and fd00:ec2::254, are link-local or private and refused anyway).
_METADATA = {ipaddress.ip_address("100.100.100.200")}  # Alibaba Cloud (shared address space)


class Refused(ValueError):
    """A URL or an address a delivery must not go to; the message says why."""


def _allowed(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback and conf.settings.WEBHOOKS_ALLOW_LOOPBACK:
        return True
    return address.is_global and not address.is_multicast and address not in _METADATA


def check_url(url: str) -> tuple[str, str, int, str]:
    """Return ``(scheme, host, port, path)`` of a URL a delivery may use; raise ``Refused``.
    Checks the form only; ``resolve`` checks the addresses."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise Refused(NO_HOST) from exc
    schemes = ("https", "http") if conf.allow_http() else ("https",)
    if parts.scheme not in schemes:
        raise Refused(NOT_HTTP_OR_HTTPS if conf.allow_http() else NOT_HTTPS)
    if not parts.hostname:
        raise Refused(NO_HOST)
    if parts.username is not None or parts.password is not None:
        raise Refused(CREDENTIALS)
    port = port or (443 if parts.scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, parts.hostname, port, path


def resolve(host: str, port: int) -> str:
    """Return the address to connect to: ``host`` resolved, every address public; else raise
    ``Refused``."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise Refused(UNRESOLVED) from exc
    addresses = []
    for info in infos:
        try:
            addresses.append(ipaddress.ip_address(info[4][0].split("%")[0]))
        except ValueError as exc:
            raise Refused(NOT_PUBLIC) from exc
    if not addresses:
        raise Refused(UNRESOLVED)
    if not all(_allowed(address) for address in addresses):
        raise Refused(NOT_PUBLIC)
    return str(addresses[0])


def validate(url: str) -> None:
    """Raise ``Refused`` unless a delivery may go to ``url`` now (form and addresses)."""
    _scheme, host, port, _path = check_url(url)
    resolve(host, port)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host, port, address, timeout):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host, port, address, timeout):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


MAX_RESPONSE_BYTES = 4096


def post(url: str, body: bytes, headers: dict[str, str], *, timeout: float) -> int:
    """POST ``body`` to ``url`` at the address checked now; return the status code. Raises
    ``Refused`` for a URL or address not allowed, ``OSError`` (timeouts included) or
    ``http.client.HTTPException`` for a transport failure."""
    scheme, host, port, path = check_url(url)
    address = resolve(host, port)
    cls = _PinnedHTTPSConnection if scheme == "https" else _PinnedHTTPConnection
    connection = cls(host, port, address, timeout)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read(MAX_RESPONSE_BYTES)  # read a little, so the receiver sees its answer taken
        return response.status
    finally:
        connection.close()
