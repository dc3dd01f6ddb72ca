"""Configuration versions in a real browser (Debian's Chromium, Playwright, a live server): an
operator edits an agent's configuration and budgets in the admin form, compares the versions,
and presses "Restore this version"; the agent page shows the budgets against today's usage."""

import pytest

from runner import services
from runner.actors import Actor
from runner.models import Agent, AuditEvent
from tests.factories import UserFactory
from tests.support.browser import ARTIFACTS, login, needs_chromium

pytestmark = [pytest.mark.slow, needs_chromium]


@pytest.mark.django_db(transaction=True)
def test_operator_compares_and_restores_a_configuration_version(live_server, browser_page):
    from playwright.sync_api import expect

    page = browser_page
    ARTIFACTS.mkdir(exist_ok=True)
    UserFactory(username="operator", is_superuser=True)
    agent = services.agent_create(
        values={"slug": "versions-demo", "kind": "test-ok", "interval_minutes": 60},
        actor=Actor.cli(),
    )
    change_path = f"/admin/runner/agent/{agent.pk}/change/"
    login(page, live_server, change_path)

    # A configuration edit in the form: a faster interval and a daily budget, with a reason.
    page.fill("#id_interval_minutes", "15")
    page.fill("#id_budgets", '{"cycles_per_day": 96}')
    page.fill("#id_audit_reason", "faster, within a budget")
    page.click("input[name=_continue]")
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    expect(page.locator("#runner-budgets")).to_contain_text("cycles_per_day")
    expect(page.locator("#runner-budgets")).to_contain_text("96 cycles")

    page.get_by_role("link", name="Versions", exact=True).click()
    expect(page.locator("#version-2")).to_contain_text("faster, within a budget")
    page.select_option("select[name=a]", "1")
    page.select_option("select[name=b]", "2")
    page.get_by_role("button", name="Show the diff").click()
    diff = page.locator("#versions-diff")
    expect(diff).to_contain_text("interval_minutes")
    expect(diff).to_contain_text("budgets.cycles_per_day")
    page.screenshot(path=str(ARTIFACTS / "admin-versions-diff.png"), full_page=True)

    row = page.locator("#version-1")
    row.locator("input[name=reason]").fill("back to hourly")
    row.get_by_role("button", name="Restore this version").click()
    expect(page.locator(".messagelist")).to_contain_text(
        "Version 1 of versions-demo restored; it is now version 3."
    )
    expect(page.locator("#version-3")).to_contain_text("of version 1")

    agent = Agent.objects.get(pk=agent.pk)
    assert (agent.interval_minutes, agent.budgets) == (60, {})
    event = AuditEvent.objects.order_by("-id").first()
    assert (event.action, event.source, event.actor_username, event.reason) == (
        "restore_version",
        "admin",
        "operator",
        "back to hourly",
    )
