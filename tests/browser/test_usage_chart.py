"""End to end: a key's usage chart, drawn by the server as inline SVG, with its table fallback."""

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from keys.services import keys_usage_rollup
from tests import factories

pytestmark = pytest.mark.browser


def test_key_page_shows_the_requests_of_the_day_as_a_chart_and_a_table(
    live_server, page, screenshot
):
    acme = factories.make_tenant("acme")
    alice = factories.make_user("alice@acme.example")
    factories.add_member(acme, "member", alice)
    key, token = factories.make_api_key(alice, acme, name="nightly export")
    base = live_server.url
    for _ in range(3):
        response = page.request.get(
            base + "/api/v1/whoami/", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status == 200
    assert keys_usage_rollup(window=timedelta(0)) == 3

    page.goto(base + "/account/login/")
    page.get_by_label("E-mail").fill(alice.email)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Code").fill(factories.totp_code(alice))
    page.get_by_role("button", name="Verify").click()
    expect(page).to_have_url(re.compile(r"/t/acme/$"))

    page.goto(f"{base}/t/acme/keys/{key.pk}/")
    chart = page.get_by_role("img", name=re.compile(r"^Requests per day, last 30 days"))
    expect(chart).to_be_visible()
    expect(chart.locator("rect.bar")).to_have_count(1)
    box = chart.locator("rect.bar").bounding_box()
    assert box is not None and box["height"] > 0
    expect(page.locator("figcaption")).to_contain_text("3 requests (0 denied)")

    page.get_by_text("Requests per day as a table").click()
    today_row = page.get_by_role("row").filter(has_text=re.compile(r"\b3\b")).last
    expect(today_row).to_be_visible()
    expect(page.get_by_role("cell", name="127.0.0.1").first).to_be_visible()
    screenshot(page, "usage")
