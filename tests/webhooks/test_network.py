"""SSRF: where a webhook may go. The production default (no loopback, https only) is what these
tests check, except where they say otherwise."""

import socket

import pytest

from webhooks import network


def _resolving_to(monkeypatch, *addresses):
    def fake_getaddrinfo(host, port, *args, **kwargs):
        family = lambda a: socket.AF_INET6 if ":" in a else socket.AF_INET  # noqa: E731
        return [(family(a), socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

    monkeypatch.setattr(network.socket, "getaddrinfo", fake_getaddrinfo)


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://[::1]/hook",
        "https://10.0.0.5/hook",
        "https://172.16.3.4/hook",
        "https://192.168.1.1/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://[fd00:ec2::254]/hook",
        "https://100.100.100.200/hook",
        "https://0.0.0.0/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://[fe80::1]/hook",
        "https://224.0.0.1/hook",
    ],
)
def test_non_public_addresses_are_refused(url):
    with pytest.raises(network.Refused, match="not public"):
        network.validate(url)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://93.184.215.14/hook", network.NOT_HTTPS),
        ("ftp://93.184.215.14/hook", network.NOT_HTTPS),
        ("https:///hook", network.NO_HOST),
        ("https://user:pw@93.184.215.14/hook", network.CREDENTIALS),
        ("https://93.184.215.14:99999/hook", network.NO_HOST),
    ],
)
def test_malformed_or_plain_http_urls_are_refused(url, message):
    with pytest.raises(network.Refused) as raised:
        network.validate(url)
    assert str(raised.value) == message


def test_a_public_address_is_allowed():
    network.validate("https://93.184.215.14/hook")


def test_a_name_is_refused_if_any_of_its_addresses_is_private(monkeypatch):
    _resolving_to(monkeypatch, "93.184.215.14", "10.1.2.3")
    with pytest.raises(network.Refused, match="not public"):
        network.validate("https://hooks.example.com/x")


def test_an_unresolvable_name_is_refused(monkeypatch):
    def fail(*args, **kwargs):
        raise socket.gaierror("no such name")

    monkeypatch.setattr(network.socket, "getaddrinfo", fail)
    with pytest.raises(network.Refused, match="does not resolve"):
        network.validate("https://nowhere.invalid/x")


def test_http_is_allowed_in_debug_only(settings):
    settings.DEBUG = True
    network.validate("http://93.184.215.14/hook")
    settings.DEBUG = False
    with pytest.raises(network.Refused):
        network.validate("http://93.184.215.14/hook")


def test_the_loopback_test_setting_opens_loopback_only(settings):
    settings.KEYWARD_WEBHOOKS_ALLOW_LOOPBACK = True
    network.validate("https://127.0.0.1/hook")
    with pytest.raises(network.Refused):
        network.validate("https://10.0.0.5/hook")
    with pytest.raises(network.Refused):
        network.validate("https://169.254.169.254/")


def test_the_connection_goes_to_the_address_that_was_checked(monkeypatch):
    """DNS rebinding: the name is resolved once; the socket connects to that very address."""
    _resolving_to(monkeypatch, "93.184.215.14")
    connected = []

    def fake_create_connection(address, timeout=None):
        connected.append(address)
        raise OSError("stop here")

    monkeypatch.setattr(network.socket, "create_connection", fake_create_connection)
    with pytest.raises(OSError, match="stop here"):
        network.post("https://hooks.example.com/x", b"{}", {}, timeout=1)
    assert connected == [("93.184.215.14", 443)]


def test_a_redirect_is_not_followed(local_receivers_allowed):
    """The receiver's answer is taken as it is: a 3xx is a failed attempt, never followed."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    hits = []

    class Redirect(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            hits.append(self.path)
            self.send_response(307)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        status = network.post(
            f"http://127.0.0.1:{server.server_address[1]}/a", b"{}", {}, timeout=2
        )
    finally:
        server.shutdown()
        server.server_close()
    assert status == 307 and hits == ["/a"]
