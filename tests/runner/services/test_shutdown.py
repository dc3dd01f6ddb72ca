"""Recording the runs of a worker that a stopping qcluster had to kill (runner.services.shutdown)."""

import pytest

from runner import services
from runner.actors import Actor
from runner.models import CycleRun
from runner.services.shutdown import runs_cancel_of_killed_worker
from runner.types import Outcome
from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db


def claimed(worker, **agent_fields):
    agent = AgentFactory(kind="test-ok", **agent_fields)
    run = services.agent_run_once(agent=agent, actor=Actor.cli(), enqueue=False)
    return services.cycle_claim_queued(run_id=run.pk, worker=worker)


def test_only_the_killed_workers_running_runs_are_cancelled_and_counted_as_no_failure():
    killed = claimed("host:101", max_consecutive_failures=1)
    other = claimed("host:202")
    assert runs_cancel_of_killed_worker(worker="host:101", message="killed at shutdown") == 1
    run = CycleRun.objects.get(pk=killed.run.pk)
    assert run.status == "cancelled" and run.error_type == "WorkerShutdown"
    assert run.error_message == "killed at shutdown" and run.finished_at is not None
    assert run.agent.run_count == 1 and run.agent.consecutive_failures == 0
    assert run.agent.state == "stopped"  # a cancelled cycle never trips the breaker
    assert CycleRun.objects.get(pk=other.run.pk).status == "running"


def test_a_run_the_worker_finished_first_is_left_as_it_finished():
    claim = claimed("host:303")
    services.cycle_finish(
        run_id=claim.run.pk, token=claim.token, outcome=Outcome(status="succeeded", summary={})
    )
    assert runs_cancel_of_killed_worker(worker="host:303", message="late") == 0
    assert CycleRun.objects.get(pk=claim.run.pk).status == "succeeded"
