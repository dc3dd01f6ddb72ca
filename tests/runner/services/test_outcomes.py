"""Settling a run: counters, the circuit breaker and its reset."""

from datetime import timedelta

import pytest
from django.utils import timezone

from runner import services
from runner.models import Agent, AuditEvent, CycleRun
from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db


def test_successful_cycle_counts_and_sets_last_run(run_cycle):
    agent = AgentFactory(kind="test-ok", parameters={"value": 7})
    before = timezone.now()
    run = run_cycle(agent)
    assert run.status == "succeeded"
    assert run.trigger == "cli" and run.trading_mode == "dry_run"
    assert run.summary == {"value": 7, "mode": "dry_run"}
    assert run.duration_ms is not None and run.finished_at >= run.started_at
    assert run.config_snapshot["kind"] == "test-ok"
    assert any("counting 7" in line for line in run.log_lines)
    assert (agent.run_count, agent.success_count, agent.error_count) == (1, 1, 0)
    assert agent.last_run >= before and agent.last_success is not None


def test_failing_cycle_counts_an_error_and_the_runner_carries_on(run_scheduled, api_actor):
    agent = AgentFactory(kind="test-fail", max_consecutive_failures=5)
    services.agent_start(agent=agent, actor=api_actor)
    run = run_scheduled(agent)
    assert run.status == "failed"
    assert run.error_type == "BoomError"
    assert run.error_message == "the agent exploded on purpose"
    assert "Traceback" in run.traceback and "BoomError" in run.traceback
    assert agent.state == "running"
    assert (agent.run_count, agent.error_count, agent.consecutive_failures) == (1, 1, 1)
    assert agent.last_error == "BoomError: the agent exploded on purpose"
    # it carries on: the next slot runs too
    run2 = run_scheduled(agent, now=agent.next_run + timedelta(seconds=1))
    assert run2.status == "failed" and agent.error_count == 2 and agent.state == "running"


def test_breaker_trips_after_max_consecutive_failures_and_start_clears_it(run_scheduled, api_actor):
    agent = AgentFactory(kind="test-fail", max_consecutive_failures=3, interval_minutes=1)
    services.agent_start(agent=agent, actor=api_actor)
    for _ in range(3):
        run_scheduled(agent, now=max(agent.next_run, timezone.now()) + timedelta(seconds=1))
    assert agent.state == "error"
    assert agent.next_run is None and agent.consecutive_failures == 3
    trip = AuditEvent.objects.get(agent=agent, action="trip")
    assert (trip.source, trip.outcome, trip.state_before, trip.state_after) == (
        "system",
        "applied",
        "running",
        "error",
    )
    assert "3 consecutive failed cycles" in trip.reason
    # no further scheduled cycles: a late delivery is skipped and recorded
    assert services.cycle_claim_scheduled is not None
    with pytest.raises(services.ClaimRefused):
        services.cycle_claim_scheduled(agent_id=agent.pk, worker="t")
    assert CycleRun.objects.filter(agent=agent, status="skipped").count() == 1
    services.agent_start(agent=agent, actor=api_actor)
    agent.refresh_from_db()
    assert agent.state == "running" and agent.consecutive_failures == 0


def test_a_success_resets_consecutive_failures(run_cycle, api_actor):
    agent = AgentFactory(kind="test-fail", max_consecutive_failures=10)
    run_cycle(agent)
    run_cycle(agent)
    assert agent.consecutive_failures == 2
    Agent.objects.filter(pk=agent.pk).update(kind="test-ok")
    agent.refresh_from_db()
    run_cycle(agent)
    assert agent.consecutive_failures == 0 and agent.error_count == 2 and agent.success_count == 1
