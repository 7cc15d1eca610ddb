"""The OpenAPI schema and its offline docs (api/schema.py)."""

import json

import pytest

from audit.models import AuditEvent
from tests.api.world import (
    ENDPOINTS,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]


# --- Schema and docs -----------------------------------------------------------------------


def _schema(client) -> dict:
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return json.loads(response.content)


def test_schema_is_valid_openapi_with_bearer_scheme_and_each_operations_scope(client):
    from drf_spectacular.validation import validate_schema

    schema = _schema(client)
    validate_schema(schema)
    assert schema["openapi"].startswith("3.")
    assert schema["components"]["securitySchemes"]["bearerKey"] == {
        **schema["components"]["securitySchemes"]["bearerKey"],
        "type": "http",
        "scheme": "bearer",
    }
    for endpoint in ENDPOINTS:
        path = endpoint.path.replace("{key}", "{id}").replace("{service_id}", "{id}")
        operation = schema["paths"][path][endpoint.method.lower()]
        expected = [endpoint.scope] if endpoint.scope else []
        # A key, or a Keyward JWT (federation) with the same scopes.
        assert operation["security"] == [{"bearerJWT": expected}, {"bearerKey": expected}], (
            endpoint.name
        )
        assert operation["x-required-scopes"] == expected
        assert "Required scope" in operation["description"]
        if endpoint.scope:
            assert f"`{endpoint.scope}`" in operation["description"]


def test_schema_and_docs_need_no_key_and_write_no_event(client):
    before = AuditEvent.objects.count()
    assert client.get("/api/schema/", HTTP_AUTHORIZATION="Bearer garbage").status_code == 200
    assert client.get("/api/docs/").status_code == 200
    assert AuditEvent.objects.count() == before


def test_docs_page_loads_only_local_assets_and_no_inline_code(client):
    response = client.get("/api/docs/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "http://" not in html and "https://" not in html
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    # Under SECURE_CSP (script-src 'self' + nonce, style-src 'self') inline code would not run.
    assert "<style" not in html
    assert html.count("<script") == html.count("<script src=")
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp


def test_docs_assets_exist_in_static_files():
    from django.contrib.staticfiles import finders

    for asset in [
        "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js",
        "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css",
        "js/api-docs.js",
        "css/api-docs.css",
    ]:
        assert finders.find(asset), asset
