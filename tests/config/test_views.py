"""Probes for load balancers (config/views.py)."""

import pytest

from tests import factories


@pytest.mark.django_db(transaction=True)
def test_readyz_reconnects_once_before_calling_a_healthy_database_down(client, postgresql):
    assert client.get("/readyz").status_code == 200
    factories.drop_database_connection()
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "ok"}


def test_healthz_needs_nothing(client):
    assert client.get("/healthz").json() == {"status": "ok"}
