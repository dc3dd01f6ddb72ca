"""Cycle lifecycle: claim, run, finish, counters, breaker, leases and fencing (DESIGN §3-§4)."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from runner import execution, monitoring, selectors, services
from runner.actors import Actor
from runner.errors import TransitionRefused
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


def test_run_once_works_from_stopped_and_keeps_state(run_cycle):
    agent = AgentFactory()
    run_cycle(agent)
    assert agent.state == "stopped"
    assert agent.next_run is None


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


def test_run_once_is_refused_while_a_cycle_is_in_flight(api_actor):
    agent = AgentFactory()
    queued = services.agent_run_once(agent=agent, actor=api_actor, enqueue=False)
    assert queued.status == "queued" and queued.control_event.action == "run_once"
    with pytest.raises(TransitionRefused, match="already in flight"):
        services.agent_run_once(agent=agent, actor=api_actor, enqueue=False)
    services.cycle_claim_queued(run_id=queued.pk, worker="w:1")
    with pytest.raises(TransitionRefused, match="already in flight"):
        services.agent_run_once(agent=agent, actor=api_actor, enqueue=False)
    outcomes = list(
        AuditEvent.objects.filter(agent=agent, action="run_once").values_list("outcome", flat=True)
    )
    assert sorted(outcomes) == ["applied", "refused", "refused"]


def test_a_queued_run_is_claimed_once():
    agent = AgentFactory()
    queued = services.agent_run_once(agent=agent, actor=Actor.cli(), enqueue=False)
    claim = services.cycle_claim_queued(run_id=queued.pk, worker="w:1")
    assert claim.run.status == "running" and claim.token == 1
    with pytest.raises(services.ClaimRefused):
        services.cycle_claim_queued(run_id=queued.pk, worker="w:2")  # redelivery
    assert CycleRun.objects.get(pk=queued.pk).worker == "w:1"


def test_finish_with_a_stale_fencing_token_changes_nothing():
    agent = AgentFactory()
    queued = services.agent_run_once(agent=agent, actor=Actor.cli(), enqueue=False)
    claim = services.cycle_claim_queued(run_id=queued.pk, worker="w:1")
    stale = services.Outcome(status="succeeded", summary={"zombie": True})
    assert not services.cycle_finish(run_id=claim.run.pk, token=claim.token + 1, outcome=stale)
    run = CycleRun.objects.get(pk=claim.run.pk)
    assert run.status == "running" and run.summary == {}
    agent.refresh_from_db()
    assert agent.run_count == 0
    assert services.cycle_finish(
        run_id=claim.run.pk, token=claim.token, outcome=services.Outcome(status="succeeded")
    )


def test_expired_lease_is_abandoned_by_the_next_claim_and_the_zombie_cannot_write(settings):
    agent = AgentFactory(kind="test-ok")
    first = services.agent_run_once(agent=agent, actor=Actor.cli(), enqueue=False)
    t0 = timezone.now()
    zombie = services.cycle_claim_queued(run_id=first.pk, worker="dead:1", now=t0)
    later = t0 + timedelta(seconds=settings.RUNNER_LEASE_SECONDS + 1)
    second = services.agent_run_once(agent=agent, actor=Actor.cli(), enqueue=False, now=later)
    fresh = services.cycle_claim_queued(run_id=second.pk, worker="live:2", now=later)
    abandoned = CycleRun.objects.get(pk=first.pk)
    assert abandoned.status == "abandoned"
    assert abandoned.error_type == "LeaseExpired" and "dead:1" in abandoned.error_message
    assert fresh.token > zombie.token
    # the zombie wakes up and tries to write its result: fenced off
    assert not services.cycle_finish(
        run_id=first.pk, token=zombie.token, outcome=services.Outcome(status="succeeded")
    )
    assert CycleRun.objects.get(pk=first.pk).status == "abandoned"
    assert services.cycle_heartbeat(run_id=first.pk, token=zombie.token) == (False, False)
    agent.refresh_from_db()
    assert agent.error_count == 1 and agent.run_count == 1


def _run_with_expired_lease(settings):
    """A run whose worker claimed it and vanished: its lease ran out five seconds ago."""
    agent = AgentFactory()
    queued = services.agent_run_once(agent=agent, actor=Actor.cli(), enqueue=False)
    past = timezone.now() - timedelta(seconds=settings.RUNNER_LEASE_SECONDS + 5)
    services.cycle_claim_queued(run_id=queued.pk, worker="gone:9", now=past)
    return agent, queued


def test_a_status_read_writes_nothing(settings):
    agent, dead = _run_with_expired_lease(settings)
    with CaptureQueriesContext(connection) as queries:
        status = selectors.agent_status(agent)
    writes = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
    ]
    assert writes == []
    assert status["current_run"] == dead.pk and status["error_count"] == 0
    assert CycleRun.objects.get(pk=dead.pk).status == "running"


def test_the_periodic_task_reaps_an_expired_lease(settings):
    agent, dead = _run_with_expired_lease(settings)
    result = monitoring.watchdog()  # the one periodic task (runner.periodic.WATCHDOG)
    assert result["reaped"] == 1
    assert CycleRun.objects.get(pk=dead.pk).status == "abandoned"
    agent.refresh_from_db()
    assert agent.error_count == 1 and selectors.agent_status(agent)["current_run"] is None


def test_a_claim_reaps_its_agents_expired_lease(settings):
    agent, dead = _run_with_expired_lease(settings)
    # run-once only reads: a run whose lease ran out no longer counts as in flight
    fresh = services.agent_run_once(agent=agent, actor=Actor.cli(), enqueue=False)
    assert CycleRun.objects.get(pk=dead.pk).status == "running"
    claim = services.cycle_claim_queued(run_id=fresh.pk, worker="w:1")
    assert CycleRun.objects.get(pk=dead.pk).status == "abandoned"
    assert claim.run.status == "running"


def test_heartbeat_renews_the_lease():
    agent = AgentFactory()
    queued = services.agent_run_once(agent=agent, actor=Actor.cli(), enqueue=False)
    t0 = timezone.now()
    claim = services.cycle_claim_queued(run_id=queued.pk, worker="w", now=t0)
    assert services.cycle_heartbeat(
        run_id=claim.run.pk, token=claim.token, now=t0 + timedelta(seconds=20)
    ) == (True, False)
    run = CycleRun.objects.get(pk=claim.run.pk)
    assert run.lease_expires_at == t0 + timedelta(seconds=20 + 30)


def test_scheduled_claim_folds_missed_slots_into_one_run(api_actor):
    agent = AgentFactory(interval_minutes=10)
    t0 = timezone.now()
    services.agent_start(agent=agent, actor=api_actor, now=t0)
    later = t0 + timedelta(minutes=95)  # the cluster was down for 9 intervals and a half
    claim = services.cycle_claim_scheduled(agent_id=agent.pk, worker="w", now=later)
    assert claim.run.slot == t0 and claim.run.missed_slots == 9
    agent.refresh_from_db()
    assert agent.next_run == t0 + timedelta(minutes=100)
    # a duplicate delivery right after finds nothing due
    assert services.cycle_claim_scheduled(agent_id=agent.pk, worker="w2", now=later) is None


def test_scheduled_delivery_for_a_paused_agent_records_a_skipped_run(api_actor):
    agent = AgentFactory()
    services.agent_start(agent=agent, actor=api_actor)
    services.agent_pause(agent=agent, actor=api_actor)
    with pytest.raises(services.ClaimRefused, match="paused"):
        services.cycle_claim_scheduled(agent_id=agent.pk, worker="w")
    skipped = CycleRun.objects.get(agent=agent)
    assert skipped.status == "skipped" and "paused" in skipped.error_message


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


def test_a_queued_run_nobody_started_stops_blocking_run_once(settings):
    agent = AgentFactory()
    t0 = timezone.now()
    stale = services.agent_run_once(agent=agent, actor=Actor.cli(), enqueue=False, now=t0)
    later = t0 + timedelta(seconds=settings.RUNNER_QUEUED_RUN_TTL_SECONDS + 1)
    fresh = services.agent_run_once(agent=agent, actor=Actor.cli(), enqueue=False, now=later)
    assert fresh.status == "queued"
    services.cycle_claim_queued(run_id=fresh.pk, worker="w:1", now=later)  # the claim reaps
    stale.refresh_from_db()
    assert stale.status == "skipped" and "is a qcluster running?" in stale.error_message
    agent.refresh_from_db()
    assert agent.run_count == 0 and agent.error_count == 0


def test_a_worker_that_hung_past_its_deadline_is_reaped_as_timed_out(settings):
    agent = AgentFactory(timeout_seconds=5)
    queued = services.agent_run_once(agent=agent, actor=Actor.cli(), enqueue=False)
    t0 = timezone.now()
    claim = services.cycle_claim_queued(run_id=queued.pk, worker="hung:1", now=t0)
    # it kept heartbeating past its deadline, then stopped (killed by django-q2's timeout)
    services.cycle_heartbeat(run_id=claim.run.pk, token=claim.token, now=t0 + timedelta(seconds=6))
    later = t0 + timedelta(seconds=6 + settings.RUNNER_LEASE_SECONDS + 1)
    services.runs_reap_expired(now=later)
    assert CycleRun.objects.get(pk=queued.pk).status == "timed_out"


def test_a_worker_killed_before_its_deadline_is_abandoned_even_if_reaped_later(settings):
    agent = AgentFactory(timeout_seconds=5)
    queued = services.agent_run_once(agent=agent, actor=Actor.cli(), enqueue=False)
    t0 = timezone.now()
    services.cycle_claim_queued(run_id=queued.pk, worker="killed:1", now=t0)
    services.runs_reap_expired(now=t0 + timedelta(seconds=settings.RUNNER_LEASE_SECONDS + 60))
    assert CycleRun.objects.get(pk=queued.pk).status == "abandoned"
