"""The cycle lifecycle: claim, heartbeat, checkpoint and finish, fenced by the token (DESIGN §4)."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from runner import services
from runner.actors import Actor
from runner.models import Agent, AgentState, CycleRun, RunStatus
from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db


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


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_claim_that_waited_for_the_lock_starts_after_the_previous_finish():
    agent = AgentFactory(state=AgentState.RUNNING, next_run=timezone.now() - timedelta(seconds=1))
    first = services.cycle_claim_scheduled(agent_id=agent.pk, worker="first:1")
    # A run queued behind it (run-once itself refuses while a cycle is in flight).
    queued = CycleRun.objects.create(
        agent=agent, trigger="cli", status=RunStatus.QUEUED, queued_at=timezone.now()
    )
    lock_held = threading.Event()

    def finish_while_holding_the_lock():
        try:
            with transaction.atomic():
                Agent.objects.select_for_update().get(pk=agent.pk)
                lock_held.set()
                time.sleep(0.5)
                services.cycle_finish(
                    run_id=first.run.pk,
                    token=first.token,
                    outcome=services.Outcome(status=RunStatus.SUCCEEDED),
                )
        finally:
            connection.close()

    holder = threading.Thread(target=finish_while_holding_the_lock)
    holder.start()
    lock_held.wait(5)
    second = services.cycle_claim_queued(run_id=queued.pk, worker="second:1")
    holder.join()

    previous = CycleRun.objects.get(pk=first.run.pk)
    assert previous.status == RunStatus.SUCCEEDED
    assert second.run.started_at >= previous.finished_at
