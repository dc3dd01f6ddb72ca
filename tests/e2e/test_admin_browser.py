"""The admin control room in a real browser: Debian's Chromium driven by Playwright, against a live
server started by this test. An operator logs in, starts an agent, runs it once, sees the run and its
outcome, pauses, resumes and stops it, and finds every step in the audit trail.

No qcluster runs here: where a worker would pick up the queued run, the test calls the very task the
worker calls (`runner.tasks.run_queued_cycle`), so the outcome on the page is a real cycle's.
"""

from pathlib import Path

import pytest

from runner import tasks
from runner.models import AuditEvent, CycleRun
from tests.factories import AgentFactory, UserFactory

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

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's Chromium at /usr/bin/chromium (apt-get install chromium; .ci/run does)",
    ),
]


@pytest.fixture
def browser_page(monkeypatch):
    # Playwright's sync API keeps an event loop in this thread; the test's own ORM calls between
    # page steps are ordinary synchronous calls, so Django's async-safety guard is relaxed here.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.set_default_timeout(20_000)
        try:
            yield page
        finally:
            browser.close()


def click_control(page, label, expect, message):
    page.get_by_role("button", name=label, exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text(message)


@pytest.mark.django_db(transaction=True)
def test_operator_controls_an_agent_from_the_admin(live_server, browser_page):
    from playwright.sync_api import expect

    page = browser_page
    ARTIFACTS.mkdir(exist_ok=True)
    UserFactory(username="operator", is_superuser=True)
    agent = AgentFactory(
        slug="browser-demo", name="Browser demo", kind="test-ok", parameters={"value": 42}
    )
    agent_url = f"{live_server.url}/admin/runner/agent/{agent.pk}/change/"

    # Log in.
    page.goto(f"{live_server.url}/admin/login/?next=/admin/runner/agent/{agent.pk}/change/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "secret-pass-123")
    page.click("input[type=submit]")
    expect(page.locator("#runner-state")).to_contain_text("Stopped")
    expect(page.get_by_role("button", name="Stop", exact=True)).to_have_count(0)

    # Start, with a reason.
    page.fill("#runner-reason", "browser test start")
    click_control(page, "Start", expect, "Agent browser-demo started (now running).")
    expect(page.locator("#runner-state")).to_contain_text("Running")
    expect(page.get_by_role("button", name="Start", exact=True)).to_have_count(0)

    # Run once: queued by the button, executed by the worker's own task.
    click_control(page, "Run once", expect, "queued for browser-demo")
    run = CycleRun.objects.get(agent=agent, trigger="manual")
    assert run.status == "queued"
    result = tasks.run_queued_cycle(run.pk)
    assert result == {"ran": True, "run_id": run.pk, "status": "succeeded"}
    page.goto(agent_url)
    recent = page.locator("#runner-recent-runs")
    expect(recent).to_contain_text(f"#{run.pk}")
    expect(recent).to_contain_text("Succeeded")
    expect(page.locator("#runner-last-run")).to_contain_text("Succeeded")
    expect(page.locator("#runner-counters")).to_contain_text("Cycles run")
    page.screenshot(path=str(ARTIFACTS / "admin-agent-after-run.png"), full_page=True)

    # The run's own page: summary and log lines from the real cycle.
    page.click(f"#runner-recent-runs a:text-is('#{run.pk}')")
    expect(page.locator("body")).to_contain_text("counting 42")
    expect(page.locator("body")).to_contain_text('"value": 42')
    page.screenshot(path=str(ARTIFACTS / "admin-run-detail.png"), full_page=True)

    # Pause, resume, stop.
    page.goto(agent_url)
    click_control(page, "Pause", expect, "Agent browser-demo paused (now paused).")
    expect(page.locator("#runner-state")).to_contain_text("Paused")
    page.screenshot(path=str(ARTIFACTS / "admin-agent-paused.png"), full_page=True)
    click_control(page, "Resume", expect, "Agent browser-demo resumed (now running).")
    expect(page.locator("#runner-state")).to_contain_text("Running")
    click_control(page, "Stop", expect, "Agent browser-demo stopped (now stopped).")
    expect(page.locator("#runner-state")).to_contain_text("Stopped")
    page.screenshot(path=str(ARTIFACTS / "admin-agent-stopped.png"), full_page=True)

    # The agents list: state badge, last outcome and success rate of the one finished run.
    page.goto(f"{live_server.url}/admin/runner/agent/")
    row = page.locator("#result_list tbody tr", has_text="browser-demo")
    expect(row).to_contain_text("Stopped")
    expect(row).to_contain_text("Succeeded")
    expect(row).to_contain_text("100% (1/1)")
    page.screenshot(path=str(ARTIFACTS / "admin-agent-list.png"), full_page=True)

    # Every step is in the audit list, applied, by this operator, from the admin.
    page.goto(f"{live_server.url}/admin/runner/auditevent/?agent__id__exact={agent.pk}")
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(5)
    texts = [rows.nth(i).inner_text() for i in range(5)]
    for text, action, transition in zip(
        texts,
        ["Stop", "Resume", "Pause", "Run once", "Start"],
        [
            "running → stopped",
            "paused → running",
            "running → paused",
            "running",
            "stopped → running",
        ],
        strict=True,
    ):
        assert action in text and transition in text and "operator" in text and "Applied" in text
    assert "browser test start" in texts[-1]
    page.screenshot(path=str(ARTIFACTS / "admin-audit-list.png"), full_page=True)

    events = list(AuditEvent.objects.filter(agent=agent).order_by("id"))
    assert [(e.action, e.outcome, e.source) for e in events] == [
        ("start", "applied", "admin"),
        ("run_once", "applied", "admin"),
        ("pause", "applied", "admin"),
        ("resume", "applied", "admin"),
        ("stop", "applied", "admin"),
    ]
