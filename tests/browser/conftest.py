"""Playwright fixtures: Debian's chromium (never a downloaded browser) against live_server."""

import os
from pathlib import Path

import pytest

# Playwright's sync API keeps an asyncio loop running in the main thread from the moment it
# starts until the session ends, and Django refuses ORM calls from a thread with a running loop
# (SynchronousOnlyOperation). Django documents this variable as the way out for tests. It is set
# at import time because the session-scoped browser outlives each test: with random test order,
# non-browser tests that run after it need it too.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]
DEFAULT_TIMEOUT_MS = 10_000
SCREENSHOT_DIR = Path("/tmp/keyward-shots")
_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items):
    # Every test in this folder drives a browser, whether or not its module says so.
    for item in items:
        if _HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.browser)


def _browser_required() -> bool:
    return bool(os.environ.get("KEYWARD_REQUIRE_BROWSER") or os.environ.get("CI"))


@pytest.fixture(scope="session")
def browser():
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        reason = f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)"
        if _browser_required():
            pytest.fail(f"{reason}; browser tests are required (CI or KEYWARD_REQUIRE_BROWSER)")
        pytest.skip(reason)

    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=DEFAULT_TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser):
    """A fresh browser context (no cookies, no storage) per test."""
    context = browser.new_context()
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    context.set_default_navigation_timeout(DEFAULT_TIMEOUT_MS)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def screenshot(request):
    """Save a full-page screenshot to SCREENSHOT_DIR (outside the repository) for review."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> Path:
        path = SCREENSHOT_DIR / f"{request.node.name}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
