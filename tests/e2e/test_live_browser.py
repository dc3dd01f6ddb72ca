"""The live admin in a real browser (Debian's Chromium, Playwright) against a live server, with a
real `manage.py qcluster` running the cycles: pages update themselves without a reload.

- The agent page, open while a run is started from the API, shows the run in flight with its
  elapsed time ticking and its log lines while it runs, then its outcome within about two seconds
  of the run finishing.
- The overview puts an agent that trips first, without a reload.
- The agents list keeps the rows an operator ticked for a bulk action while its cells update.
- A hidden tab stops polling; showing it again polls at once.
"""

from __future__ import annotations

import time
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token

from runner import execution, services
from runner.actors import Actor
from runner.models import CycleRun, RunStatus
from tests.factories import AgentFactory, AlertFactory, CycleRunFactory, UserFactory
from tests.support.browser import ARTIFACTS, login, needs_chromium
from tests.support.processes import LEASE_SECONDS, Processes, wait_for

pytestmark = [pytest.mark.slow, needs_chromium, pytest.mark.django_db(transaction=True)]

# "Within about 2 seconds": a page polls every RUNNER_LIVE_POLL_SECONDS (1 s) and a web process
# reuses a version up to RUNNER_LIVE_VERSION_CACHE_SECONDS (0.5 s), then fetches the page (~0.2 s).
# The bound leaves room for a loaded 2-core machine running the browser, the server and a cluster.
OUTCOME_SHOWN_WITHIN = 3.5


@pytest.fixture
def operator(db):
    return UserFactory(username="operator", is_superuser=True)


@pytest.fixture
def cluster(transactional_db, tmp_path, settings):
    settings.RUNNER_LEASE_SECONDS = LEASE_SECONDS
    processes = Processes(tmp_path, workers=1)
    processes.env["RUNNER_LOG_FLUSH_SECONDS"] = "0.5"
    processes.start_cluster()
    yield processes
    processes.stop_all()


def live_requests(page):
    """Every request the page makes to the live version URL, as they happen."""
    seen = []
    page.on("request", lambda request: "/admin/runner/live/" in request.url and seen.append(1))
    return seen


def test_the_agent_page_follows_a_run_started_from_the_api(
    live_server, browser_page, operator, cluster
):
    from playwright.sync_api import expect

    page = browser_page
    ARTIFACTS.mkdir(exist_ok=True)
    agent = AgentFactory(
        slug="live-demo",
        name="Live demo",
        kind="test-chatty",
        parameters={"steps": 8, "every": 0.6},
    )
    login(page, live_server, f"/admin/runner/agent/{agent.pk}/change/")
    expect(page.locator("#runner-live")).to_contain_text("Live")
    expect(page.locator("#runner-in-flight")).to_have_text("—")
    page.evaluate("window.__notReloaded = true")

    token = Token.objects.create(user=operator).key
    started = httpx.post(
        f"{live_server.url}/api/agents/live-demo/run-once/",
        headers={"Authorization": f"Token {token}"},
        json={"reason": "browser live test"},
        timeout=30,
    )
    assert started.status_code == 202, started.text
    run_id = started.json()["id"]

    # The run appears in flight, its elapsed time counting, its lines arriving while it runs.
    in_flight = page.locator("#runner-in-flight")
    expect(in_flight).to_contain_text(f"run #{run_id}", timeout=15_000)
    expect(in_flight.locator(".runner-tail")).to_contain_text("step 2 of 8", timeout=10_000)
    assert CycleRun.objects.get(pk=run_id).status == RunStatus.RUNNING  # still running
    first = in_flight.locator(".runner-elapsed").inner_text()
    page.wait_for_timeout(1_300)
    assert in_flight.locator(".runner-elapsed").inner_text() != first  # ticking
    page.screenshot(path=str(ARTIFACTS / "admin-agent-live-run.png"), full_page=True)

    # Its outcome, within about two seconds of the run finishing.
    finished = wait_for(
        lambda: CycleRun.objects.filter(pk=run_id, finished_at__isnull=False).first(),
        timeout=30,
        message="the run to finish",
    )
    since_finish = time.monotonic()
    row = page.locator("#runner-recent-runs tbody tr", has_text=f"#{run_id}")
    expect(row).to_contain_text("Succeeded", timeout=int(OUTCOME_SHOWN_WITHIN * 1000))
    shown_after = time.monotonic() - since_finish
    assert finished.status == RunStatus.SUCCEEDED
    assert shown_after < OUTCOME_SHOWN_WITHIN, f"outcome shown {shown_after:.2f} s after the finish"
    expect(page.locator("#runner-last-run")).to_contain_text("Succeeded")
    expect(in_flight).to_have_text("—")
    expect(page.locator("#runner-counters")).to_contain_text("Cycles run1")
    assert page.evaluate("window.__notReloaded") is True  # the same page all along
    print(f"outcome shown {shown_after:.2f} s after the run finished")


def test_the_overview_puts_an_agent_that_trips_first_without_a_reload(
    live_server, browser_page, operator
):
    from playwright.sync_api import expect

    page = browser_page
    now = timezone.now()
    for slug, statuses in (("a-forecaster", "ssssfsssss"), ("b-baseline", "sssssssssss")):
        agent = AgentFactory(
            slug=slug, state="running", next_run=now + timedelta(minutes=7), interval_minutes=10
        )
        for i, mark in enumerate(statuses):
            CycleRunFactory(
                agent=agent,
                status="succeeded" if mark == "s" else "failed",
                queued_at=now - timedelta(minutes=10 * (len(statuses) - i)),
            )
    flaky = AgentFactory(slug="z-flaky", kind="test-fail", max_consecutive_failures=1)
    services.agent_start(agent=flaky, actor=Actor.cli())
    login(page, live_server, "/admin/runner/overview/")
    rows = page.locator("#runner-overview-table tbody tr")
    expect(rows.first).to_contain_text("a-forecaster")
    page.evaluate("window.__notReloaded = true")

    # z-flaky's cycle fails once: its breaker trips it to error (and opens an alert).
    run = services.agent_run_once(agent=flaky, actor=Actor.cli(), enqueue=False)
    assert execution.run_queued(run.pk).status == "failed"

    expect(rows.first).to_contain_text("z-flaky", timeout=int(OUTCOME_SHOWN_WITHIN * 1000))
    expect(rows.first).to_contain_text("in error (tripped)")
    expect(page.locator("#runner-overview-summary")).to_contain_text("1 needs attention")
    assert page.evaluate("window.__notReloaded") is True


def test_overview_screenshot_for_the_readme(live_server, browser_page, operator, settings):
    """The README's picture of the overview (docs/admin-overview.png is a copy of the one this
    saves under test-artifacts/): a few agents in the states operators meet."""
    from playwright.sync_api import expect

    settings.RUNNER_OVERDUE_GRACE_SECONDS = 300
    page = browser_page
    ARTIFACTS.mkdir(exist_ok=True)
    now = timezone.now()
    scene = [
        ("eu-politics", "running", now + timedelta(minutes=12), "ssssssfsssssssssssss", 0),
        ("us-macro", "error", None, "ssssssssssssssfsffff", 3),
        ("sports-baseline", "running", now - timedelta(minutes=14), "ssssssssssssssssssss", 0),
        ("crypto-weekly", "paused", None, "sssssssss", 0),
        ("weather-llm", "running", now + timedelta(minutes=3), "sssfssssssssssssssfs", 1),
        ("elections-abandoned", "running", now + timedelta(minutes=41), "sssssssssa", 1),
    ]
    for slug, state, next_run, strip, failing in scene:
        agent = AgentFactory(
            slug=slug,
            name=slug.replace("-", " ").capitalize(),
            state=state,
            next_run=next_run,
            consecutive_failures=failing,
            max_consecutive_failures=4,
        )
        marks = {"s": "succeeded", "f": "failed", "a": "abandoned"}
        for i, mark in enumerate(strip):
            CycleRunFactory(
                agent=agent,
                status=marks[mark],
                queued_at=now - timedelta(minutes=30 * (len(strip) - i)),
            )
        if slug == "weather-llm":
            CycleRunFactory(agent=agent, status="running", finished_at=None, started_at=now)
        if slug == "elections-abandoned":
            AlertFactory(kind="run_abandoned", agent=agent)
    login(page, live_server, "/admin/runner/overview/")
    rows = page.locator("#runner-overview-table tbody tr")
    expect(rows).to_have_count(6)
    expect(rows.first).to_contain_text("us-macro")
    expect(rows.nth(1)).to_contain_text("sports-baseline")  # overdue
    expect(rows.nth(2)).to_contain_text("elections-abandoned")  # an open alert
    page.wait_for_timeout(1_200)  # one tick of the clocks
    page.screenshot(path=str(ARTIFACTS / "admin-overview.png"), full_page=True)  # docs/ has it


def test_the_agents_list_keeps_ticked_rows_while_it_updates(live_server, browser_page, operator):
    from playwright.sync_api import expect

    page = browser_page
    first = AgentFactory(slug="first", kind="test-ok")
    AgentFactory(slug="second", kind="test-ok")
    login(page, live_server, "/admin/runner/agent/")
    row = page.locator("#result_list tbody tr", has_text="first")
    row.locator("input.action-select").check()
    expect(page.locator(".action-counter")).to_contain_text("1 of")

    services.agent_start(agent=first, actor=Actor.cli())

    expect(row).to_contain_text("Running", timeout=int(OUTCOME_SHOWN_WITHIN * 1000))
    assert row.locator("input.action-select").is_checked()
    expect(page.locator(".action-counter")).to_contain_text("1 of")


def test_a_hidden_tab_stops_polling_and_polls_again_when_shown(live_server, browser_page, operator):
    from playwright.sync_api import expect

    page = browser_page
    login(page, live_server, "/admin/runner/cyclerun/")
    expect(page.locator("#runner-live")).to_contain_text("Live")
    polls = live_requests(page)
    page.wait_for_timeout(2_500)
    assert len(polls) >= 1

    def set_hidden(hidden):
        page.evaluate(
            """hidden => {
                Object.defineProperty(document, "hidden", {value: hidden, configurable: true});
                document.dispatchEvent(new Event("visibilitychange"));
            }""",
            hidden,
        )

    set_hidden(True)
    expect(page.locator("#runner-live")).to_contain_text("Paused while this tab is hidden")
    page.wait_for_timeout(300)
    polls.clear()
    page.wait_for_timeout(3_000)
    assert polls == []
    set_hidden(False)
    page.wait_for_timeout(500)
    assert len(polls) >= 1
