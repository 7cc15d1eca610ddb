"""End to end: an owner adds a webhook endpoint, copies its secret, sends a test event and reads
the delivery log, on a desktop and a phone-sized screen; the receiver verifies the delivery."""

import re

import pytest
from playwright.sync_api import expect

from tests import factories
from tests.browser.test_keys_flow import _log_in, _path_is
from tests.webhooks.conftest import local_receivers_allowed, receiver  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser


def test_an_owner_adds_an_endpoint_and_sends_a_test_event(
    live_server,
    page,
    screenshot,
    receiver,  # noqa: F811
    local_receivers_allowed,  # noqa: F811
):
    acme = factories.make_tenant("acme")
    owner = acme.memberships.get(role="owner").user
    base = live_server.url
    _log_in(page, base, owner)
    expect(page).to_have_url(_path_is("/t/acme/"))
    page.get_by_role("link", name=re.compile("Webhooks")).click()
    expect(page).to_have_url(_path_is("/t/acme/webhooks/"))

    page.get_by_label("URL").fill(receiver.url)
    page.get_by_label("A key was issued").check()
    page.get_by_label("A key was revoked").check()
    page.get_by_role("button", name="Add endpoint").click()
    secret = page.locator("#secret").inner_text().strip()
    assert secret.startswith("whsec_")
    screenshot(page, "secret")

    page.get_by_role("link", name=re.compile("view the endpoint")).click()
    page.get_by_role("button", name="Send test event").click()
    expect(page.get_by_text("Test event queued")).to_be_visible()
    expect(page.get_by_role("cell", name="delivered")).to_be_visible()
    assert receiver.received[0].verify(secret)["type"] == "webhook.test"
    screenshot(page, "detail-desktop")

    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing overflows
    screenshot(page, "detail-phone")
    page.goto(base + "/t/acme/webhooks/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "list-phone")
