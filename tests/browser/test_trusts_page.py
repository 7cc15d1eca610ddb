"""End to end: an owner trusts a CI for a service ID on a phone-sized screen and removes it."""

import re

import pytest
from playwright.sync_api import expect

from federation.models import WorkloadTrust
from tests import factories
from tests.browser.test_keys_flow import _log_in, _path_is

pytestmark = pytest.mark.browser


def test_an_owner_adds_and_removes_a_keyless_ci_trust(live_server, page, screenshot):
    acme = factories.make_tenant("acme")
    owner = acme.memberships.get(role="owner").user
    deployer = factories.make_service_id(acme, name="deployer", role="admin")
    base = live_server.url
    _log_in(page, base, owner)
    expect(page).to_have_url(_path_is("/t/acme/"))

    for width, height in ((1280, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.goto(f"{base}/t/acme/service-ids/{deployer.pk}/trusts/")
        expect(page.get_by_role("heading", level=1)).to_contain_text("deployer")
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        screenshot(page, f"trusts-empty-{width}")

    page.get_by_label("Issuer").fill("https://token.actions.githubusercontent.com")
    page.get_by_label("Audience").fill("keyward")
    page.get_by_label("Subject pattern").fill("repo:acme/app:ref:refs/heads/main")
    page.get_by_role("checkbox", name=re.compile(r"keys:read")).check()
    page.get_by_role("button", name="Add trust").click()
    expect(page.get_by_text("now trusts that workload")).to_be_visible()
    expect(page.get_by_text("repo:acme/app:ref:refs/heads/main", exact=True)).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "trusts-added-390")
    trust = WorkloadTrust.objects.get()
    assert trust.service_id == deployer and trust.scopes == ["keys:read"]

    page.get_by_role("button", name="Remove").click()
    expect(page.get_by_text("Trust removed")).to_be_visible()
    trust.refresh_from_db()
    assert trust.removed_at is not None
