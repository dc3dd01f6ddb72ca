"""Running a claimed cycle: loading the agent, checkpoints, deadlines, the summary and the log."""

import threading
import time

import pytest
from django.db import connection

from runner import execution, services
from runner.models import Agent, AuditEvent
from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db


def test_unknown_agent_kind_fails_clearly_and_trips_a_running_agent(run_scheduled, api_actor):
    agent = AgentFactory(kind="test-ok", max_consecutive_failures=5)
    services.agent_start(agent=agent, actor=api_actor)
    Agent.objects.filter(pk=agent.pk).update(kind="vanished")
    agent.refresh_from_db()
    run = run_scheduled(agent)
    assert run.status == "failed" and run.error_type == "AgentLoadError"
    assert "Unknown agent kind 'vanished'" in run.error_message
    assert agent.state == "error"
    trip = AuditEvent.objects.get(agent=agent, action="trip")
    assert "could not be loaded" in trip.reason


def test_summary_that_is_not_json_fails_clearly(run_cycle, settings, monkeypatch):
    from tests import agent_kinds

    monkeypatch.setattr(agent_kinds.SucceedingAgent, "run", lambda self, ctx: {"x": object()})
    run = run_cycle(AgentFactory())
    assert run.status == "failed" and run.error_type == "TypeError"


def test_log_lines_are_capped(run_cycle, settings, monkeypatch):
    from tests import agent_kinds

    def chatty(self, ctx):
        for i in range(50):
            ctx.logger.info("line %s", i)
        return {}

    monkeypatch.setattr(agent_kinds.SucceedingAgent, "run", chatty)
    settings.RUNNER_RUN_LOG_LINES = 10
    run = run_cycle(AgentFactory())
    assert len(run.log_lines) == 11  # 10 kept + a note; "cycle started" is the first of 52 lines
    assert run.log_lines[-1] == "... 42 more lines not kept (cap 10)"


@pytest.mark.django_db(transaction=True)
def test_stop_during_a_slow_cycle_cancels_it_at_the_next_checkpoint(api_actor):
    agent = AgentFactory(kind="test-slow", parameters={"seconds": 20, "step": 0.05})
    services.agent_start(agent=agent, actor=api_actor)
    claim = services.cycle_claim_scheduled(agent_id=agent.pk, worker="w")
    result = {}

    def work():
        try:
            result["run"] = execution.execute_claim(claim)
        finally:
            connection.close()

    thread = threading.Thread(target=work)
    thread.start()
    time.sleep(0.5)
    stopped_at = time.monotonic()
    services.agent_stop(agent=agent, actor=api_actor)
    thread.join(timeout=10)
    assert not thread.is_alive()
    run = result["run"]
    assert run.status == "cancelled" and run.error_type == "CycleCancelled"
    assert time.monotonic() - stopped_at < 2
    agent.refresh_from_db()
    assert agent.state == "stopped" and agent.run_count == 1 and agent.error_count == 0


@pytest.mark.django_db(transaction=True)
def test_a_cycle_past_its_deadline_is_timed_out_and_counts_as_a_failure(api_actor):
    agent = AgentFactory(
        kind="test-slow", timeout_seconds=1, parameters={"seconds": 10, "step": 0.05}
    )
    started = time.monotonic()
    queued = services.agent_run_once(agent=agent, actor=api_actor, enqueue=False)
    claim = services.cycle_claim_queued(run_id=queued.pk, worker="w")
    run = execution.execute_claim(claim)
    assert run.status == "timed_out" and run.error_type == "CycleDeadlineExceeded"
    assert time.monotonic() - started < 3
    agent.refresh_from_db()
    assert agent.error_count == 1 and agent.consecutive_failures == 1
