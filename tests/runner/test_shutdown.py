"""What a cluster's processes do once SIGTERM has set the shutdown flag (runner.shutdown)."""

import os
import signal

import pytest

from runner import execution, services, shutdown, tasks
from runner.actors import Actor
from runner.models import CycleRun
from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def sigterm_noted():
    """This process handles SIGTERM as a cluster's processes do, and has just received one."""
    previous = signal.getsignal(signal.SIGTERM)
    shutdown.install()
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        assert shutdown.requested()
        yield
    finally:
        shutdown.reset()
        signal.signal(signal.SIGTERM, previous)


def test_a_cycle_that_reaches_a_checkpoint_after_sigterm_ends_cancelled(sigterm_noted):
    agent = AgentFactory(kind="test-slow", parameters={"seconds": 30})
    run = services.agent_run_once(agent=agent, actor=Actor.cli(), enqueue=False)
    claim = services.cycle_claim_queued(run_id=run.pk, worker="test:1")
    finished = execution.execute_claim(claim)
    assert finished.status == "cancelled"
    assert finished.error_message == shutdown.CANCELLED_MESSAGE
    assert finished.duration_ms < 5_000


def test_a_worker_told_to_stop_claims_nothing_and_leaves_the_run_queued(sigterm_noted):
    agent = AgentFactory(kind="test-ok")
    run = services.agent_run_once(agent=agent, actor=Actor.cli(), enqueue=False)
    assert tasks.run_queued_cycle(run.pk) == {"ran": False, "reason": shutdown.LEFT_FOR_LATER}
    assert tasks.run_scheduled_cycle(agent.pk) == {"ran": False, "reason": shutdown.LEFT_FOR_LATER}
    assert CycleRun.objects.get(pk=run.pk).status == "queued"
    assert CycleRun.objects.filter(agent=agent).count() == 1
