"""Every API error is JSON (api/errors.py)."""

import pytest

from api import errors as api_errors
from api.errors import SERVER_ERROR
from audit.models import AuditEvent
from tests.api.world import (
    bearer,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]


# --- Errors are JSON -----------------------------------------------------------------------


@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_unknown_api_path_is_json_404(method):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    for path in ["/api/v1/nothing/", "/api/v2/keys/", "/api/v1/keys/abc/", "/api/v1/whoami"]:
        response = getattr(client, method)(path)
        assert response.status_code == 404
        assert response.json() == {"code": "not_found", "detail": api_errors.API_NOT_FOUND}


def test_unsupported_method_is_json_405(api_client, world):
    response = api_client.delete(f"/api/v1/keys/{world.target_key.pk}/", **bearer(world.user_token))
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
    for path in ["/api/v1/whoami/", "/api/v1/keys/", "/api/v1/service-ids/"]:
        options = api_client.options(path, **bearer(world.user_token))
        assert options.status_code == 405, path
        assert options.json()["code"] == "method_not_allowed"


def test_malformed_json_body_is_400_invalid_request(api_client, world):
    response = api_client.generic(
        "POST",
        f"/api/v1/keys/{world.target_key.pk}/revoke/",
        "{not json",
        content_type="application/json",
        **bearer(world.user_token),
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"


def test_unexpected_error_is_json_500_without_details(api_client, world, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("database password is hunter2")

    monkeypatch.setattr("keys.selectors.key_list", explode)
    response = api_client.get("/api/v1/keys/", **bearer(world.user_token))
    assert response.status_code == 500
    assert response.json() == {"code": "server_error", "detail": SERVER_ERROR}
    assert AuditEvent.objects.get(action="api.request").outcome == "failure"
