"""The budget gate (services.budgets): a spent budget pauses the agent once, until its day ends.

These use the runner's own budget (cycles per day) with the small test agents; the forecaster's
budgets (LLM tokens and cost, paper exposure and loss) are in tests/agents/test_budgets.py.
"""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from runner import alerts, execution, selectors, services
from runner.actors import Actor
from runner.admin.overview import overview_rows
from runner.budgets import budget_day
from runner.models import Agent, Alert, AuditEvent, BudgetBreach, CycleRun
from tests.factories import AgentFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("midday_zone")]


def manual_cycle(agent):
    """A manual cycle through the runner's own path (gate, claim, run), as the CLI runs it."""
    queued = services.agent_run_once(agent=agent, actor=Actor.cli(), trigger="cli", enqueue=False)
    return execution.run_queued(queued.pk)


def due_now(agent):
    """Let the agent's next scheduled slot come (time passing, without waiting for it)."""
    Agent.objects.filter(pk=agent.pk).update(next_run=timezone.now())
    agent.refresh_from_db()
    return agent.next_run


def spend_scheduled_budget(agent, cycles):
    services.agent_start(agent=agent, actor=Actor.cli())
    for _ in range(cycles):
        assert execution.run_scheduled(agent.pk).status == "succeeded"
        due_now(agent)


def test_a_spent_budget_pauses_a_running_agent_once_until_the_day_ends(client, midday_zone):
    agent = AgentFactory(slug="thrifty", budgets={"cycles_per_day": 2})
    spend_scheduled_budget(agent, 2)
    slot = agent.next_run
    before = timezone.now()

    with pytest.raises(services.BudgetExhausted) as refused:
        execution.run_scheduled(agent.pk, slot=slot)

    assert "cycles_per_day: limit 2 cycles, used 2 cycles" in refused.value.message
    agent.refresh_from_db()
    _start, day_end = budget_day(before, midday_zone)
    assert (agent.state, agent.paused_until) == ("paused", day_end)
    pause = AuditEvent.objects.get(agent=agent, action="pause")
    assert (pause.source, pause.outcome, pause.actor_username) == ("system", "applied", "")
    assert "Budget spent: cycles_per_day: limit 2 cycles, used 2 cycles" in pause.reason
    assert day_end.isoformat() in pause.reason
    assert pause.changes == {"paused_until": {"before": None, "after": day_end.isoformat()}}
    skipped = CycleRun.objects.get(agent=agent, slot=slot)
    assert skipped.status == "skipped"
    assert "budget spent: cycles_per_day: limit 2 cycles, used 2 cycles" in skipped.error_message
    breach = BudgetBreach.objects.get()
    assert (breach.budget, breach.limit, breach.used, breach.unit) == (
        "cycles_per_day",
        2,
        2,
        "cycles",
    )
    assert (breach.paused, breach.audit_event, breach.run, breach.day_ends_at) == (
        True,
        pause,
        skipped,
        day_end,
    )
    alert = Alert.objects.get()
    assert alert.kind == "budget_exceeded" and alert.closed_at is None
    assert alert.subject == "Agent thrifty: budget cycles_per_day spent"
    assert "limit 2 cycles, used 2 cycles" in alert.message

    # A second delivery of the same slot (or any later one) changes nothing more.
    assert execution.run_scheduled(agent.pk, slot=slot) is None
    assert AuditEvent.objects.filter(agent=agent, action="pause").count() == 1
    assert (BudgetBreach.objects.count(), Alert.objects.count()) == (1, 1)

    metrics = client.get("/metrics").content.decode()
    assert 'agent_runner_budget_breaches_total{agent="thrifty",budget="cycles_per_day"} 1.0' in (
        metrics
    )
    assert (
        'agent_runner_budget_limit{agent="thrifty",budget="cycles_per_day",unit="cycles"} 2.0'
        in metrics
    )


def test_the_day_rolling_over_resumes_the_agent_and_clears_the_alert():
    agent = AgentFactory(budgets={"cycles_per_day": 1})
    spend_scheduled_budget(agent, 1)
    with pytest.raises(services.BudgetExhausted):
        execution.run_scheduled(agent.pk)
    agent.refresh_from_db()
    day_end = agent.paused_until

    assert services.resume_expired_pauses(now=day_end - timedelta(seconds=1)) == 0
    assert services.resume_expired_pauses(now=day_end) == 1
    agent.refresh_from_db()
    assert agent.state == "running" and agent.next_run == day_end
    resume = AuditEvent.objects.get(agent=agent, action="resume")
    assert resume.source == "system" and "Budget spent: cycles_per_day" in resume.reason
    assert alerts.reconcile(now=day_end)["closed"] == 1
    assert Alert.objects.get().closed_at == day_end
    # The new day has its whole budget: the gate lets its first cycle through.
    services.budget_gate(agent_id=agent.pk, now=day_end + timedelta(seconds=1))


def test_an_operator_resume_lets_the_next_cycle_find_the_budget_spent_again():
    agent = AgentFactory(budgets={"cycles_per_day": 1})
    spend_scheduled_budget(agent, 1)
    with pytest.raises(services.BudgetExhausted):
        execution.run_scheduled(agent.pk)
    services.agent_resume(agent=agent, actor=Actor.cli(), reason="I know, one more")
    assert alerts.reconcile()["closed"] == 1  # it runs again: this crossing is over

    with pytest.raises(services.BudgetExhausted):
        execution.run_scheduled(agent.pk)
    agent.refresh_from_db()
    assert agent.state == "paused"
    pauses = AuditEvent.objects.filter(agent=agent, action="pause", source="system")
    assert pauses.count() == 2
    assert BudgetBreach.objects.filter(paused=True).count() == 2
    assert Alert.objects.count() == 2 and Alert.objects.filter(closed_at=None).count() == 1


def test_a_manual_cycle_on_a_spent_budget_is_skipped_without_a_pause(settings):
    agent = AgentFactory(slug="spent", budgets={"cycles_per_day": 1})
    assert manual_cycle(agent).status == "succeeded"
    queued = services.agent_run_once(agent=agent, actor=Actor.cli(), trigger="cli", enqueue=False)
    with pytest.raises(services.BudgetExhausted):
        execution.run_queued(queued.pk)
    queued.refresh_from_db()
    assert queued.status == "skipped" and "cycles_per_day" in queued.error_message
    agent.refresh_from_db()
    assert agent.state == "stopped"
    assert not AuditEvent.objects.filter(action="pause").exists()
    assert BudgetBreach.objects.get().paused is False

    with pytest.raises(CommandError) as refused:
        call_command("runagent", "--once", "--agent", "spent", stdout=StringIO())
    assert refused.value.returncode == 1
    assert "refused: Cycle not run: budget spent: cycles_per_day" in str(refused.value)
    assert Alert.objects.get().occurrences == 2  # the same crossing, counted once more


def broken_usage(agent, since, now, wanted):
    raise RuntimeError("usage store unreachable")


def test_a_usage_hook_that_fails_lets_the_cycle_run_and_shows_the_error(settings):
    settings.RUNNER_BUDGET_USAGE = ["tests.runner.services.test_budgets.broken_usage"]
    agent = AgentFactory(budgets={"llm_tokens_per_day": 10, "cycles_per_day": 5})
    assert manual_cycle(agent).status == "succeeded"
    lines = selectors.agent_status(agent)["budgets"]
    assert {line["budget"] for line in lines} == {"llm_tokens_per_day", "cycles_per_day"}
    assert all("usage store unreachable" in line["error"] for line in lines)


def test_a_cycles_budget_needs_no_usage_hook(settings):
    settings.RUNNER_BUDGET_USAGE = ["tests.runner.services.test_budgets.broken_usage"]
    agent = AgentFactory(budgets={"cycles_per_day": 1})
    assert manual_cycle(agent).status == "succeeded"
    [line] = selectors.agent_status(agent)["budgets"]
    assert (line["used"], line["left"], line["exhausted"]) == (1, 0, True)


def test_a_budget_paused_agent_comes_first_in_the_overview(admin_client):
    AgentFactory(slug="aaa-calm")
    agent = AgentFactory(slug="zzz-spender", budgets={"cycles_per_day": 1})
    spend_scheduled_budget(agent, 1)
    with pytest.raises(services.BudgetExhausted):
        execution.run_scheduled(agent.pk)
    rows = overview_rows()
    assert rows[0]["agent"].slug == "zzz-spender"
    assert [concern.code for concern in rows[0]["concerns"]] == ["budget"]
    assert "budget spent" in admin_client.get("/admin/runner/overview/").content.decode()
