"""The one reaper: expired leases and stale queued runs, settled by the claim and the periodic task."""

from datetime import timedelta

import pytest
from django.utils import timezone

from runner import monitoring, selectors, services
from runner.actors import Actor
from runner.models import CycleRun
from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db


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


def test_the_periodic_task_reaps_an_expired_lease(run_with_expired_lease):
    agent, dead = run_with_expired_lease
    result = monitoring.watchdog()  # the one periodic task (runner.periodic.WATCHDOG)
    assert result["reaped"] == 1
    assert CycleRun.objects.get(pk=dead.pk).status == "abandoned"
    agent.refresh_from_db()
    assert agent.error_count == 1 and selectors.agent_status(agent)["current_run"] is None


def test_a_claim_reaps_its_agents_expired_lease(run_with_expired_lease):
    agent, dead = run_with_expired_lease
    # run-once only reads: a run whose lease ran out no longer counts as in flight
    fresh = services.agent_run_once(agent=agent, actor=Actor.cli(), enqueue=False)
    assert CycleRun.objects.get(pk=dead.pk).status == "running"
    claim = services.cycle_claim_queued(run_id=fresh.pk, worker="w:1")
    assert CycleRun.objects.get(pk=dead.pk).status == "abandoned"
    assert claim.run.status == "running"


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
