"""Probes for load balancers (config/views.py)."""

import pytest
from django.db import DEFAULT_DB_ALIAS, connection, connections


@pytest.mark.django_db(transaction=True)
def test_readyz_reconnects_once_before_calling_a_healthy_database_down(client, postgresql):
    assert client.get("/readyz").status_code == 200
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    other = connections.create_connection(DEFAULT_DB_ALIAS)  # e.g. a database restart
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    finally:
        other.close()
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "ok"}


def test_healthz_needs_nothing(client):
    assert client.get("/healthz").json() == {"status": "ok"}
