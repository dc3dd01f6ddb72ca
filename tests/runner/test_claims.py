"""Claims against concurrent holders of the agent lock (PostgreSQL: real row locks)."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from runner import services
from runner.models import Agent, AgentState, CycleRun, RunStatus
from tests.factories import AgentFactory


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
