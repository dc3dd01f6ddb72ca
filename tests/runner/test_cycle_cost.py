"""What one scheduled no-op cycle costs in SQL: the lean path of claim, start, finish, counters.

Pinned as an upper bound (issue 14: at most 10 statements, transaction control included), with
the slot's Schedule row already moved on by the dispatcher, as it is when the cluster runs it.
"""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_q.models import Schedule

from runner import execution, scheduling, services
from runner.actors import Actor
from runner.models import Agent, CycleRun
from tests.factories import AgentFactory

MAX_STATEMENTS = 10


def due_slot(agent, *, dispatcher_moved_the_row=True):
    """Make the agent's next slot due now, as the dispatcher does before it sends the slot."""
    now = timezone.now()
    slot = now  # after the previous run ended, so no "waited for the previous run" note
    Agent.objects.filter(pk=agent.pk).update(next_run=slot)
    agent.refresh_from_db()
    if dispatcher_moved_the_row:
        Schedule.objects.filter(name=scheduling.schedule_name(agent)).update(
            next_run=scheduling.following_fire(agent, slot, now)
        )
    return slot


@pytest.fixture
def running_agent():
    agent = AgentFactory(kind="test-ok", interval_minutes=1)
    services.agent_start(agent=agent, actor=Actor.system())
    agent.refresh_from_db()
    execution.run_scheduled(agent.pk, slot=agent.next_run)  # start's first slot
    return Agent.objects.get(pk=agent.pk)


@pytest.mark.django_db(transaction=True)
def test_a_scheduled_no_op_cycle_costs_at_most_ten_statements(running_agent, monkeypatch):
    from tests import agent_kinds

    # a no-op agent: no checkpoint() of its own (each one is a read of the run)
    monkeypatch.setattr(agent_kinds.SucceedingAgent, "run", lambda self, context: {})
    slot = due_slot(running_agent)
    with CaptureQueriesContext(connection) as captured:
        run = execution.run_scheduled(running_agent.pk, slot=slot)
    statements = [query["sql"] for query in captured.captured_queries]
    assert run.status == "succeeded" and run.slot == slot
    assert len(statements) <= MAX_STATEMENTS, "\n".join(statements)
    # what the lean path still writes: the run's result and the agent's counters
    agent = Agent.objects.get(pk=running_agent.pk)
    assert agent.run_count == 2 and agent.success_count == 2 and agent.consecutive_failures == 0
    assert agent.next_run > slot and agent.last_run == run.started_at
    assert agent.fencing_token == run.fencing_token


@pytest.mark.django_db(transaction=True)
def test_the_run_a_cycle_returns_is_what_was_written(running_agent):
    run = execution.run_scheduled(running_agent.pk, slot=due_slot(running_agent))
    stored = CycleRun.objects.get(pk=run.pk)
    for field in ("status", "finished_at", "duration_ms", "summary", "log_lines", "error_type"):
        assert getattr(run, field) == getattr(stored, field), field


@pytest.mark.django_db(transaction=True)
def test_a_schedule_row_not_yet_moved_is_put_on_the_next_slot(running_agent):
    slot = due_slot(running_agent, dispatcher_moved_the_row=False)
    stale_row = Schedule.objects.get(name=scheduling.schedule_name(running_agent))
    assert stale_row.next_run <= slot + timedelta(minutes=1)
    execution.run_scheduled(running_agent.pk, slot=slot)
    agent = Agent.objects.get(pk=running_agent.pk)
    row = Schedule.objects.get(name=scheduling.schedule_name(agent))
    assert row.next_run == scheduling.fire_time(agent, agent.next_run) > slot


@pytest.mark.django_db(transaction=True)
def test_a_failed_cycle_still_counts_towards_the_breaker(running_agent):
    Agent.objects.filter(pk=running_agent.pk).update(kind="test-fail", max_consecutive_failures=2)
    for expected in (1, 2):
        run = execution.run_scheduled(running_agent.pk, slot=due_slot(running_agent))
        assert run.status == "failed"
        agent = Agent.objects.get(pk=running_agent.pk)
        assert agent.consecutive_failures == expected and agent.error_count == expected
    assert agent.state == "error"  # tripped after the second failure in a row
