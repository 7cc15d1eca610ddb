"""A lost or hung Redis is never a 500 (common/ratelimit.py, KEYWARD_CACHE_FAILURE)."""

import socket
import threading

import pytest

from keys import tokens
from tests import factories

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]


def _redis_at(settings, port: int) -> None:
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/0",
            "OPTIONS": {"socket_connect_timeout": 0.25, "socket_timeout": 0.25},
        }
    }


@pytest.fixture
def nothing_listens(settings):
    """A Redis URL on a port where nothing listens (connection refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _redis_at(settings, port)


@pytest.fixture
def never_answers(settings):
    """A Redis URL whose server accepts connections and never says a word (a hung Redis)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held, stop = [], threading.Event()

    def accept():
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    _redis_at(settings, server.getsockname()[1])
    yield
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


@pytest.fixture(params=["nothing_listens", "never_answers"])
def redis_down(request):
    request.getfixturevalue(request.param)
    return request.param


@pytest.fixture
def key_token(tenant, owner):
    return factories.make_api_key(owner, tenant, scopes=["keys:read"])[1]


def test_open_a_keyed_request_is_served_and_the_degradation_logged(
    api_client, redis_down, key_token, caplog
):
    response = api_client.get("/api/v1/whoami/", HTTP_AUTHORIZATION=f"Bearer {key_token}")
    assert response.status_code == 200, response.content
    assert any("rate limits are per process" in r.getMessage() for r in caplog.records)


def test_closed_a_keyed_request_is_503_with_retry_after(
    api_client, redis_down, key_token, settings
):
    settings.KEYWARD_CACHE_FAILURE = "closed"
    response = api_client.get("/api/v1/whoami/", HTTP_AUTHORIZATION=f"Bearer {key_token}")
    assert response.status_code == 503
    assert response.json()["code"] == "cache_unavailable"
    assert int(response["Retry-After"]) > 0


def test_open_a_login_goes_on(client, redis_down, owner):
    response = client.post(
        "/account/login/", {"email": owner.email, "password": factories.PASSWORD}
    )
    assert response.status_code == 302


def test_closed_a_login_is_503_with_retry_after(client, redis_down, owner, settings):
    settings.KEYWARD_CACHE_FAILURE = "closed"
    response = client.post(
        "/account/login/", {"email": owner.email, "password": factories.PASSWORD}
    )
    assert response.status_code == 503 and int(response["Retry-After"]) > 0


def test_open_the_limits_still_hold_per_process(api_client, nothing_listens, settings):
    settings.KEYWARD_FAILED_AUTH_RATE = "3/min"
    unknown = "Bearer " + tokens.generate(tokens.Kind.PERSONAL)  # well formed, no such key
    codes = [
        api_client.get("/api/v1/whoami/", HTTP_AUTHORIZATION=unknown).status_code for _ in range(4)
    ]
    assert codes == [401, 401, 401, 429]


def test_readyz_says_degraded_when_open_and_unavailable_when_closed(client, redis_down, settings):
    response = client.get("/readyz")
    assert (response.status_code, response.json()) == (
        200,
        {"status": "ok", "degraded": ["cache"]},
    )
    settings.KEYWARD_CACHE_FAILURE = "closed"
    response = client.get("/readyz")
    assert response.status_code == 503 and response.json()["failed"] == ["cache"]
