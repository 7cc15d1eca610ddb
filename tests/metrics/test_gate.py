"""/metrics answers only the configured networks or the token's holder: 403 to anyone else."""

import logging

import pytest
from django.core.checks import Error

from metrics.checks import check_metrics_settings

pytestmark = pytest.mark.django_db

TOKEN = "m" * 40
OUTSIDE = "203.0.113.9"


def test_loopback_may_scrape_by_default(client):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    assert b"# HELP keyward_api_requests_total" in response.content


def test_another_address_is_refused_with_403(client):
    response = client.get("/metrics", REMOTE_ADDR=OUTSIDE)
    assert response.status_code == 403
    assert b"keyward_" not in response.content


def test_a_configured_network_may_scrape_and_loopback_then_may_not(client, settings):
    settings.KEYWARD_METRICS_ALLOWED_NETWORKS = ["203.0.113.0/24"]
    assert client.get("/metrics", REMOTE_ADDR=OUTSIDE).status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="203.0.114.1").status_code == 403
    assert client.get("/metrics").status_code == 403


def test_a_forged_forwarded_for_is_no_way_in(client):
    response = client.get("/metrics", REMOTE_ADDR=OUTSIDE, HTTP_X_FORWARDED_FOR="127.0.0.1")
    assert response.status_code == 403


def test_behind_a_trusted_proxy_on_loopback_the_client_address_decides(client, settings):
    # SECURITY: a reverse proxy on the same host must not open /metrics to the whole internet.
    settings.KEYWARD_TRUSTED_PROXIES = ["127.0.0.1"]
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=OUTSIDE)
    assert response.status_code == 403


def test_the_token_opens_the_door_from_anywhere(client, settings):
    settings.KEYWARD_METRICS_TOKEN = TOKEN
    response = client.get("/metrics", REMOTE_ADDR=OUTSIDE, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    "header",
    [
        f"Bearer {TOKEN}x",
        f"Bearer {TOKEN[:-1]}",
        f"Basic {TOKEN}",
        "Bearer ",
        "Bearer",
        TOKEN,
        "Bearer kwp_not_the_metrics_token",
    ],
)
def test_a_wrong_token_is_refused_and_never_logged(client, settings, caplog, header):
    settings.KEYWARD_METRICS_TOKEN = TOKEN
    caplog.set_level(logging.DEBUG)
    response = client.get("/metrics", REMOTE_ADDR=OUTSIDE, HTTP_AUTHORIZATION=header)
    assert response.status_code == 403
    assert TOKEN not in caplog.text and TOKEN[:20] not in response.content.decode()


def test_without_a_configured_token_an_empty_bearer_is_refused(client):
    response = client.get("/metrics", REMOTE_ADDR=OUTSIDE, HTTP_AUTHORIZATION="Bearer ")
    assert response.status_code == 403


def test_only_get_is_served(client):
    assert client.post("/metrics").status_code == 405


def test_bad_networks_and_a_short_token_fail_the_system_checks(settings):
    settings.KEYWARD_METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8", "not-a-network"]
    settings.KEYWARD_METRICS_TOKEN = "short"
    errors = check_metrics_settings(None)
    assert [e.id for e in errors] == ["keyward.E040", "keyward.E041"]
    assert all(isinstance(e, Error) for e in errors)


def test_the_default_settings_pass_the_system_checks():
    assert check_metrics_settings(None) == []
