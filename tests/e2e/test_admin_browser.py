"""The admin control room in a real browser: Debian's Chromium driven by Playwright, against a live
server started by this test. An operator logs in, starts an agent, runs it once, sees the run and its
outcome, pauses, resumes, re-times and stops it, and finds every step in the audit trail.

No qcluster runs here: where a worker would pick up the queued run, the test calls the very task the
worker calls (`runner.tasks.run_queued_cycle`), so the outcome on the page is a real cycle's.
"""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from runner import tasks
from runner.models import AuditEvent, CycleRun
from tests.factories import AgentFactory, AuditEventFactory, CycleRunFactory, UserFactory
from tests.support.browser import ARTIFACTS, login, needs_chromium

pytestmark = [pytest.mark.slow, needs_chromium]


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

    login(page, live_server, f"/admin/runner/agent/{agent.pk}/change/")
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
    expect(page).to_have_title(re.compile(rf"^Run {run.pk} of browser-demo \(succeeded\) \|"))
    expect(page.locator(".breadcrumbs")).to_contain_text(
        f"Run {run.pk} of browser-demo (succeeded)"
    )
    expect(page.locator("body")).to_contain_text("counting 42")
    expect(page.locator("body")).to_contain_text('"value": 42')
    page.screenshot(path=str(ARTIFACTS / "admin-run-detail.png"), full_page=True)

    # Pause, resume, set the interval (shown once in the panel: as its form), stop.
    page.goto(agent_url)
    click_control(page, "Pause", expect, "Agent browser-demo paused (now paused).")
    expect(page.locator("#runner-state")).to_contain_text("Paused")
    page.screenshot(path=str(ARTIFACTS / "admin-agent-paused.png"), full_page=True)
    click_control(page, "Resume", expect, "Agent browser-demo resumed (now running).")
    expect(page.locator("#runner-state")).to_contain_text("Running")
    expect(page.locator("#runner-control-room")).not_to_contain_text("every 60 min")
    page.fill("#runner-interval", "30")
    page.fill("#runner-reason", "slower at night")  # one reason box serves every control
    click_control(page, "Set interval", expect, "Interval of browser-demo set to 30 minutes.")
    expect(page.locator("#runner-interval")).to_have_value("30")
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
    expect(rows).to_have_count(6)
    texts = [rows.nth(i).inner_text() for i in range(6)]
    for text, action, transition in zip(
        texts,
        ["Stop", "Set interval", "Resume", "Pause", "Run once", "Start"],
        [
            "running → stopped",
            "running",
            "paused → running",
            "running → paused",
            "running",
            "stopped → running",
        ],
        strict=True,
    ):
        assert action in text and transition in text and "operator" in text and "Applied" in text
        assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", text)  # to the second
    assert "interval_minutes: 60 → 30" in texts[1] and "slower at night" in texts[1]
    assert "browser test start" in texts[-1]
    page.screenshot(path=str(ARTIFACTS / "admin-audit-list.png"), full_page=True)

    events = list(AuditEvent.objects.filter(agent=agent).order_by("id"))
    assert [(e.action, e.outcome, e.source) for e in events] == [
        ("start", "applied", "admin"),
        ("run_once", "applied", "admin"),
        ("pause", "applied", "admin"),
        ("resume", "applied", "admin"),
        ("set_interval", "applied", "admin"),
        ("stop", "applied", "admin"),
    ]


def right_edge(locator):
    box = locator.bounding_box()
    assert box is not None, "the element is not rendered"
    return box["x"] + box["width"]


def assert_every_column_visible(page, last_header):
    """The last column's header and a cell under it lie within the viewport (and within the
    table's own scrolling box), and neither the page nor the table scrolls sideways."""
    from playwright.sync_api import expect

    header = page.locator("#result_list thead th").last
    expect(header).to_contain_text(last_header)
    width = page.evaluate("document.documentElement.clientWidth")
    # The table scrolls inside its own box (.results), so on screen means within that box too.
    visible = min(width, right_edge(page.locator(".results")))
    cell = page.locator("#result_list tbody tr").first.locator("td").last
    assert right_edge(header) <= visible, f"the {last_header} header ends past the visible table"
    assert right_edge(cell) <= visible, f"a {last_header} cell ends past the visible table"
    overflow = page.evaluate(
        "() => [document.documentElement.scrollWidth - document.documentElement.clientWidth,"
        " ...[...document.querySelectorAll('.results')].map(e => e.scrollWidth - e.clientWidth)]"
    )
    assert all(extra <= 0 for extra in overflow), f"scrolls sideways by {overflow} px"


@pytest.mark.django_db(transaction=True)
def test_lists_show_every_column_at_1400_px(live_server, browser_page):
    """Realistic long values (a long agent name, a held next run, a JSON parameters change, a long
    reason, a refusal) still leave the last column on screen in a 1,400 px wide window."""
    from playwright.sync_api import expect

    page = browser_page
    ARTIFACTS.mkdir(exist_ok=True)
    assert page.viewport_size["width"] == 1400
    operator = UserFactory(username="operator", is_superuser=True)
    now = timezone.now()
    agent = AgentFactory(
        slug="polymarket-eu-politics",
        name="Polymarket forecaster: EU politics, long horizon",
        kind="forecaster",
        state="paused",
        paused_next_run=now + timedelta(minutes=59),
        interval_minutes=10080,
        last_run=now - timedelta(minutes=1),
    )
    AgentFactory(slug="sports-baseline", name="Sports baseline", state="running")
    for minutes in range(20, 1, -1):
        CycleRunFactory(agent=agent, queued_at=now - timedelta(minutes=minutes))
    CycleRunFactory(
        agent=agent,
        status="timed_out",
        queued_at=now - timedelta(minutes=1),
        error_type="CycleTimeout",
        error_message="the cycle passed its deadline of 300 s while analysing market 17 of 40",
    )
    AuditEventFactory(
        agent=agent,
        action="configure",
        source="admin",
        actor=operator,
        actor_username="operator",
        state_before="paused",
        state_after="paused",
        changes={
            "parameters": {
                "before": {"max_markets": 20, "min_edge": 0.05, "kelly_fraction": 0.25},
                "after": {"max_markets": 40, "min_edge": 0.03, "kelly_fraction": 0.2},
            },
            "interval_minutes": {"before": 60, "after": 10080},
        },
        reason="Weekly cadence while the EU election markets are thin; revisit after the "
        "debate on the 14th, see the research channel thread for the numbers behind this",
    )
    AuditEventFactory(
        agent=agent,
        action="pause",
        source="api",
        outcome="refused",
        refusal_reason="Agent is not running (state: paused); pause applies to a running agent",
        actor_username="scheduler-bot-eu",
        state_before="paused",
        state_after="paused",
        reason="nightly maintenance window for the market data snapshot refresh",
    )

    login(page, live_server, "/admin/runner/agent/")
    expect(page.locator("#result_list")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "admin-agent-list-1400.png"), full_page=True)
    assert_every_column_visible(page, "Trading mode")

    page.goto(f"{live_server.url}/admin/runner/auditevent/")
    page.screenshot(path=str(ARTIFACTS / "admin-audit-list-1400.png"), full_page=True)
    assert_every_column_visible(page, "Reason")

    page.goto(f"{live_server.url}/admin/runner/cyclerun/")
    page.screenshot(path=str(ARTIFACTS / "admin-run-list-1400.png"), full_page=True)
    assert_every_column_visible(page, "Error")
