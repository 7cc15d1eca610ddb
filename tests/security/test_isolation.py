"""Tenant isolation, generated from the URL resolver and the models.

Every portal route under ``/t/<slug>/`` and every ``/api/v1/`` route is asked, by people and keys
of tenant B ("beta"), for tenant A's ("alpha") objects: each answer is a 404 that holds none of A's
names, e-mails, key names or hints, and nothing of A changes. A new view or model is covered
without editing this file; one that no builder can serve fails with "add a builder for …".
"""

import pytest

from api.errors import api_not_found
from tests.security.surface import (
    API_BODIES,
    FORM_DATA,
    KIND_MODELS,
    api_routes,
    body_of,
    build_world,
    leaked,
    regex_routes,
    rolled_back,
    tenant_owned_models,
    tenant_routes,
    tenant_state,
    verified_client,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]

TENANT_ROUTES = tenant_routes()
OBJECT_ROUTES = [r for r in TENANT_ROUTES if r.object_params]
API_OBJECT_ROUTES = [r for r in api_routes() if r.object_params]
API_LISTINGS = [r for r in api_routes() if not r.object_params and "get" in r.api_methods]


@pytest.fixture
def alpha(db):
    return build_world("alphaco")


@pytest.fixture
def beta(db):
    return build_world("betaco")


def _send(client, method: str, path: str, data=None, **extra):
    return getattr(client, method)(path, data, **extra)


# --- What the matrix is generated from ------------------------------------------------------


def test_the_matrix_covers_every_tenant_route_and_api_endpoint():
    assert len(TENANT_ROUTES) >= 20 and len(api_routes()) >= 8
    assert {
        "keys:detail",
        "keys:service_issue",
        "accounts:audit_detail",
        "accounts:member_role",
    } <= {r.name for r in OBJECT_ROUTES}
    assert {"api:key", "api:key_revoke", "api:service_id"} <= {r.name for r in API_OBJECT_ROUTES}
    # Regex routes cannot be built from; the API's JSON 404 is the only one.
    assert [view for _, view in regex_routes()] == [api_not_found]
    for route in TENANT_ROUTES + api_routes():
        others = set(route.params) - {"slug", *route.object_params}
        assert not others, f"add a builder for {route.route} ({others}) to the surface"
        for param in route.object_params:
            route.kind_of(param)  # fails with "add a builder for …"
    for route in API_LISTINGS:
        route.listing_kind  # noqa: B018 - fails with "add a listing kind for …"


def test_every_tenant_owned_model_has_for_tenant_and_a_builder(alpha, beta):
    models = tenant_owned_models()
    missing = sorted(m._meta.label for m in models if m not in KIND_MODELS.values())
    assert not missing, f"add a builder for {missing} to tests/security/surface.py"
    for kind, model in KIND_MODELS.items():
        assert hasattr(model._default_manager, "for_tenant"), model
        own = set(model._default_manager.for_tenant(beta.tenant).values_list("pk", flat=True))
        assert own, f"beta has no {kind}"
        assert not own & {obj.pk for obj in alpha.objects(kind)}
        theirs = model._default_manager.filter(tenant=alpha.tenant).values_list("pk", flat=True)
        assert not own & set(theirs)


# --- Portal ---------------------------------------------------------------------------------


def _accepted(client, route, values) -> dict[str, bool]:
    """Return, per method, whether the view takes it (it does not answer 405 on one's own
    tenant). Call it after the foreign requests: a POST here may change one's own tenant."""
    path = route.path(**values)
    return {m: _send(client, m, path, FORM_DATA).status_code != 405 for m in ("get", "post")}


@pytest.mark.parametrize("route", TENANT_ROUTES, ids=str)
def test_another_tenants_portal_pages_are_404_to_its_non_members(route, alpha, beta):
    """B's owner and B's member ask for A's pages under A's slug: 404 (or 405 for a method the
    view never takes), with nothing of A in the answer and nothing of A changed."""
    before = tenant_state(alpha.tenant)
    seen = {}
    for role in ("owner", "member"):
        client = verified_client(beta.membership(role).user)
        for values in alpha.variants(route):
            path = route.path(**values)
            for method in ("get", "post"):
                response = _send(client, method, path, FORM_DATA)
                seen[role, method, path] = response.status_code
                assert not leaked(alpha, body_of(response)), (role, method, path)
    accepted = _accepted(verified_client(beta.owner.user), route, beta.variants(route)[0])
    # 405 only for a method the view never takes (so nothing of A was looked at).
    wrong = {k: v for k, v in seen.items() if v != 404 and (v, accepted[k[1]]) != (405, False)}
    assert not wrong, wrong
    assert tenant_state(alpha.tenant) == before


@pytest.mark.parametrize("route", OBJECT_ROUTES, ids=str)
def test_another_tenants_object_is_404_under_ones_own_tenant(route, alpha, beta):
    """B's owner asks for A's object under B's slug: 404, and B's own object is the control
    (found, so the 404 is isolation and not a wrong URL; 405 where the view refuses the method)."""
    before = tenant_state(alpha.tenant)
    client = verified_client(beta.owner.user)
    for theirs, own in zip(alpha.variants(route), beta.variants(route), strict=True):
        for method in ("get", "post"):
            foreign = _send(client, method, route.path(**theirs | {"slug": beta.slug}), FORM_DATA)
            control = _send(client, method, route.path(**own), FORM_DATA)
            expected = {404, 405} if control.status_code == 405 else {404}
            assert foreign.status_code in expected and control.status_code != 404, (
                method,
                theirs,
                foreign.status_code,
                control.status_code,
            )
            assert not leaked(alpha, body_of(foreign)), (method, theirs)
    assert tenant_state(alpha.tenant) == before


@pytest.mark.parametrize("route", TENANT_ROUTES, ids=str)
def test_ones_own_pages_never_show_another_tenants_rows(route, alpha, beta):
    client = verified_client(beta.owner.user)
    for values in beta.variants(route):
        response = client.get(route.path(**values))
        assert response.status_code in (200, 302, 405), (values, response.status_code)
        assert not leaked(alpha, body_of(response)), values


# --- API ------------------------------------------------------------------------------------


def _callers(world):
    return {"owner key": world.owner_token, "service key": world.service_token}


@pytest.mark.parametrize("route", API_OBJECT_ROUTES, ids=str)
def test_another_tenants_object_is_404_to_an_all_scopes_key(route, api_client, alpha, beta):
    """B's all-scopes keys (a person's and a service's) ask for A's object: 404 with nothing of
    A; the same request for B's own object is the control (it succeeds)."""
    before = tenant_state(alpha.tenant)
    for caller, token in _callers(beta).items():
        headers = {"HTTP_AUTHORIZATION": f"Bearer {token}", "format": "json"}
        for theirs, own in zip(alpha.variants(route), beta.variants(route), strict=True):
            for method in route.api_methods:
                body = API_BODIES[method]
                foreign = _send(api_client, method, route.path(**theirs), body, **headers)
                assert foreign.status_code == 404, (caller, method, theirs, foreign.json())
                assert foreign.json()["code"] == "not_found"
                assert not leaked(alpha, body_of(foreign)), (caller, method, theirs)
                with rolled_back():
                    control = _send(api_client, method, route.path(**own), body, **headers)
                assert control.status_code < 300, (caller, method, own, control.json())
    assert tenant_state(alpha.tenant) == before


@pytest.mark.parametrize("route", API_LISTINGS, ids=str)
def test_api_listings_never_include_another_tenants_rows(route, api_client, alpha, beta, settings):
    kind = route.listing_kind
    before = tenant_state(alpha.tenant)
    for caller, token in _callers(beta).items():
        headers = {"HTTP_AUTHORIZATION": f"Bearer {token}", "format": "json"}
        response = api_client.get(route.path(), **headers)
        assert response.status_code == 200, (caller, response.json())
        assert not leaked(alpha, body_of(response)), caller
        if kind is not None:
            data = response.json()
            rows = data["results"] if isinstance(data, dict) else data
            ids = {row["id"] for row in rows}
            assert ids, f"{caller} lists no {kind} of its own tenant: the check proves nothing"
            assert not ids & alpha.ids(kind), caller
            assert ids <= beta.ids(kind), caller
        for method in set(route.api_methods) - {"get"}:
            with rolled_back():
                write = _send(api_client, method, route.path(), API_BODIES[method], **headers)
            assert write.status_code < 500, (caller, method)
            assert not leaked(alpha, body_of(write)), (caller, method)
    assert tenant_state(alpha.tenant) == before
