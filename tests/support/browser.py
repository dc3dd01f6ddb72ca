"""Debian's Chromium driven by Playwright, for the admin's browser tests (tests/e2e/).

`browser_page` is a fixture (tests/e2e/conftest.py makes it available to every e2e test): a
1,400 x 1,100 page of a headless Chromium launched from /usr/bin/chromium. Tests that use it
carry `needs_chromium`, which skips them, with the reason, where that browser is missing.
"""

from pathlib import Path

import pytest
from django.db import connections

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Debian's Chromium at /usr/bin/chromium (apt-get install chromium; .ci/run does)",
)


@pytest.fixture
def browser_page(monkeypatch):
    # Playwright's sync API keeps an event loop in this thread; the test's own ORM calls between
    # page steps are ordinary synchronous calls, so Django's async-safety guard is relaxed here.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # Django keeps a connection per context; Playwright's gives the test a context of its
        # own, whose connection outlives the test unless closed. A later test (one that kills
        # the database's other backends) would leave the next browser test a dead one.
        connections.close_all()
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.set_default_timeout(20_000)
        try:
            yield page
        finally:
            browser.close()
            connections.close_all()


def login(page, live_server, next_path):
    """Log in as the "operator" user (UserFactory's password), then land on next_path."""
    page.goto(f"{live_server.url}/admin/login/?next={next_path}")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "secret-pass-123")
    page.click("input[type=submit]")
