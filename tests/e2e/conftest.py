"""Fixtures of the real-browser tests: a headless Debian Chromium driven by Playwright."""

import pytest
from django.db import connections

from tests.support.browser import CHROMIUM, CHROMIUM_ARGS


@pytest.fixture
def browser_page(monkeypatch):
    # Playwright's sync API keeps an event loop in this thread; the test's own ORM calls between
    # page steps are ordinary synchronous calls, so Django's async-safety guard is relaxed here.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # Django keys its connections by context, and Playwright's event loop makes a context of
        # its own: a connection an earlier browser test left there may since have been killed
        # (tests/e2e/test_cluster_scheduling.py kills every other connection to the database).
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
