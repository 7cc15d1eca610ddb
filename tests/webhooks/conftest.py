"""A webhook receiver on loopback for the tests, and endpoints that point at it."""

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks import Webhook

from accounts.models import Membership
from accounts.principals import Principal
from webhooks import services
from webhooks.events import EVENTS


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def verify(self, secret: str) -> dict:
        """Return the payload if the reference library accepts the delivery's signature."""
        return Webhook(secret).verify(self.body, self.headers)


@dataclass
class Receiver:
    """What a local HTTP server received; ``statuses`` are answered in turn (then 204)."""

    url: str
    received: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)


@pytest.fixture
def receiver():
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            length = int(self.headers.get("Content-Length") or 0)
            state.received.append(
                Received(
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length),
                )
            )
            self.send_response(state.statuses.pop(0) if state.statuses else 204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/keyward"
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def local_receivers_allowed(settings):
    """SECURITY: tests only. The production default refuses loopback and plain http
    (tests/webhooks/test_network.py)."""
    settings.KEYWARD_WEBHOOKS_ALLOW_LOOPBACK = True
    settings.KEYWARD_WEBHOOKS_ALLOW_HTTP = True


@pytest.fixture
def owner_principal(tenant) -> Principal:
    membership = Membership.objects.select_related("tenant", "user").get(
        tenant=tenant, role="owner"
    )
    return Principal.of_membership(membership)


@pytest.fixture
def endpoint(owner_principal, receiver, local_receivers_allowed):
    """``(endpoint, secret)`` subscribed to every event, pointing at ``receiver``."""
    return services.endpoint_create(
        actor=owner_principal, url=receiver.url, events=list(EVENTS), description="tests"
    )
